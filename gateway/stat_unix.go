//go:build unix

package gateway

import (
	"os"
	"syscall"
)

// inode returns the file's inode number: a rename over the file changes it
// even when size and modification time do not.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) //nolint:unconvert // int64 on some platforms
	}
	return 0
}
