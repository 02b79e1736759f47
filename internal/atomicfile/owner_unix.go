//go:build unix

package atomicfile

import (
	"io/fs"
	"os"
	"syscall"
)

// fileOwner returns the user and group that own the file fi describes.
func fileOwner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// openNoFollow are the flags that open a file in a directory others may
// write to (the temporary one) without following a symbolic link there,
// and without blocking on a FIFO.
const openNoFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// ownPrivateFile reports whether fi is a regular file that belongs to this
// process's effective user and that group and others have no access to:
// what writeCopy leaves in the temporary directory.
func ownPrivateFile(fi fs.FileInfo) bool {
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return false
	}
	uid, _, ok := fileOwner(fi)
	return ok && uid == os.Geteuid()
}
