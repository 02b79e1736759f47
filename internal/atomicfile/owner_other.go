//go:build !unix

package atomicfile

import "io/fs"

// fileOwner reports that files have no Unix owner here.
func fileOwner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// openNoFollow adds nothing here: there are no FIFOs, and the temporary
// directory belongs to the user.
const openNoFollow = 0

// ownPrivateFile reports whether fi is a regular file. Here the temporary
// directory belongs to the user, and files have no Unix owner or mode to
// check.
func ownPrivateFile(fi fs.FileInfo) bool { return fi.Mode().IsRegular() }

// modeWritable reports whether the file fi describes is not read-only.
func modeWritable(fi fs.FileInfo) bool { return fi.Mode().Perm()&0o222 != 0 }
