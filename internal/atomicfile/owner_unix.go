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

// modeWritable reports whether the mode of the file fi describes lets this
// process write it: the write bit of the class (user, group, others) the
// process falls in, or, for root, whom permission bits do not stop, any
// write bit at all. The file's mode is honoured even where replacing the
// file by rename would be allowed.
func modeWritable(fi fs.FileInfo) bool {
	perm := fi.Mode().Perm()
	euid := os.Geteuid()
	uid, gid, ok := fileOwner(fi)
	switch {
	case euid == 0 || !ok:
		return perm&0o222 != 0
	case uid == euid:
		return perm&0o200 != 0
	case inGroup(gid):
		return perm&0o020 != 0
	}
	return perm&0o002 != 0
}

// inGroup reports whether the process belongs to group gid.
func inGroup(gid int) bool {
	if os.Getegid() == gid {
		return true
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}
