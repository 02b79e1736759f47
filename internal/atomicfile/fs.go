package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// fileOps is the file system as WriteFile and ReadFile use it. osFS is
// the real one; tests substitute one that fails at a chosen step.
type fileOps interface {
	ReadFile(name string) ([]byte, error)
	Stat(name string) (fs.FileInfo, error)
	EvalSymlinks(path string) (string, error)
	CreateTemp(dir, pattern string) (file, error)
	OpenFile(name string, flag int, perm fs.FileMode) (file, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// TempDir is where the recovery copy of an in-place rewrite goes when
	// it cannot go next to the file.
	TempDir() string
	// SyncDir fsyncs a directory, making the renames and creations of
	// files in it durable.
	SyncDir(dir string) error
}

// file is the part of *os.File that fileOps callers use.
type file interface {
	Name() string
	Stat() (fs.FileInfo, error)
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	Truncate(size int64) error
	Sync() error
	Chmod(mode fs.FileMode) error
	Chown(uid, gid int) error
	Close() error
}

// osFS is the operating system's file system.
type osFS struct{}

var _ fileOps = osFS{}

func (osFS) ReadFile(name string) ([]byte, error)     { return os.ReadFile(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)    { return os.Stat(name) }
func (osFS) EvalSymlinks(path string) (string, error) { return filepath.EvalSymlinks(path) }
func (osFS) Rename(oldpath, newpath string) error     { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                 { return os.Remove(name) }
func (osFS) TempDir() string                          { return os.TempDir() }

func (osFS) CreateTemp(dir, pattern string) (file, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there; renames are durable
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
