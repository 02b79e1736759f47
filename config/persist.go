package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// WriteFileAtomic replaces the file at path with data so that a crash at
// any point leaves the old content or the new one, never a mix that
// [Load] cannot read.
//
// It writes data to a temporary file in the same directory, gives it the
// mode (and, on Unix, the owner) of the existing file, or mode 0600 for a
// new one, fsyncs it, renames it over path and fsyncs the directory. A
// symbolic link at path is followed: the file it points to is replaced.
//
// Where an existing path cannot be replaced that way, the file is
// rewritten in place instead (keeping its inode, mode and owner): when the
// rename fails with EBUSY, EXDEV or EPERM (as for a single-file Docker
// bind mount such as -v /host/config.json:/config.json), when the owner of
// the existing file cannot be given to the new one, or when the directory
// may not be written (EACCES, EPERM, EROFS: the image's non-root user and
// the container's "/"). Data is first written durably to a recovery copy,
// by rename as above, mode 0600: path+".new" if the directory may be
// written, else ollama-gateway-<h>.json.new in [os.TempDir], where <h> is
// the first 16 hex digits of the SHA-256 of the absolute name of the file
// written (path with symbolic links resolved). Being renamed into place,
// the copy replaces a symbolic link planted at that name rather than
// following it. Then path is truncated, written and fsynced, and the copy
// is removed. A crash during the rewrite leaves the copy, from which Load
// recovers. A copy in the temporary directory survives a crash of the
// process, and one of the machine only if that directory is on disk.
//
// On error the file holds its old content, except in two cases that the
// error names: the rename succeeded but syncing the directory failed (the
// new content is in place, not yet durable), or the in-place rewrite
// failed midway (the recovery copy holds the new content and Load
// restores it). Nothing is written to path if it cannot be replaced by
// rename and is not writable itself, or if neither its directory nor the
// temporary directory takes the recovery copy.
//
// WriteFileAtomic is not safe for concurrent use on the same path: callers
// serialize writes.
func WriteFileAtomic(path string, data []byte) error {
	return writeFileAtomic(osFS{}, path, data)
}

// fileOps is the file system as WriteFileAtomic and Load use it. osFS is
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

// errNoRename marks a failure to replace a file by renaming over it that
// the in-place rewrite can get around.
var errNoRename = errors.New("cannot replace by rename")

// dirRefused reports whether err says that a directory may not be
// written: no permission (EACCES, EPERM) or a read-only file system.
func dirRefused(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}

// renameRefused reports whether a rename failed because the target cannot
// be renamed over: a mount point (EBUSY), another file system (EXDEV) or a
// file system that forbids it (EPERM).
func renameRefused(err error) bool {
	return errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM)
}

func writeFileAtomic(fsys fileOps, path string, data []byte) error {
	target := path
	switch p, err := fsys.EvalSymlinks(path); {
	case err == nil:
		target = p
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("config: writing %s: %w", path, err)
	}
	fi, err := fsys.Stat(target)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("config: writing %s: not a regular file", path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("config: writing %s: %w", path, err)
	case err != nil:
		fi = nil // a new file
	}
	err = replaceFile(fsys, target, data, fi)
	if fi != nil && errors.Is(err, errNoRename) {
		return rewriteInPlace(fsys, target, data)
	}
	return err
}

// replaceFile writes data to a temporary file next to target and renames
// it over target. old describes the existing file (nil if there is none):
// its mode and owner are kept. If target exists, it returns an error
// wrapping errNoRename if target's directory may not be written, target
// cannot be renamed over or its owner cannot be kept; target is then
// untouched.
func replaceFile(fsys fileOps, target string, data []byte, old fs.FileInfo) (err error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, err := fsys.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		if old != nil && dirRefused(err) {
			return fmt.Errorf("config: writing %s: %w: %w", target, errNoRename, err)
		}
		return fmt.Errorf("config: writing %s: %w", target, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			fsys.Remove(tmp) // best effort; a leftover temporary file is harmless
		}
	}()
	mode := fs.FileMode(0o600)
	if old != nil {
		mode = old.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if err := keepOwner(f, old); err != nil {
			return fmt.Errorf("config: writing %s: %w", target, err)
		}
	}
	// Chmod after chown, which may clear the set-id bits.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("config: writing %s: %w", target, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("config: writing %s: %w", target, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("config: writing %s: %w", target, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("config: writing %s: %w", target, err)
	}
	if err := fsys.Rename(tmp, target); err != nil {
		if renameRefused(err) {
			return fmt.Errorf("config: writing %s: %w: %w", target, errNoRename, err)
		}
		return fmt.Errorf("config: writing %s: %w", target, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		// The temporary file is gone: it is target now.
		return fmt.Errorf("config: %s was replaced, but syncing its directory failed, so the change may not survive a crash: %w", target, err)
	}
	return nil
}

// keepOwner gives f, a new file, the owner of the file old describes,
// where the system has owners and they differ. It returns an error
// wrapping errNoRename if this is not permitted.
func keepOwner(f file, old fs.FileInfo) error {
	uid, gid, ok := fileOwner(old)
	if !ok {
		return nil
	}
	cur, err := f.Stat()
	if err != nil {
		return err
	}
	if cuid, cgid, ok := fileOwner(cur); ok && cuid == uid && cgid == gid {
		return nil
	}
	if err := f.Chown(uid, gid); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%w: cannot keep the owner: %w", errNoRename, err)
		}
		return err
	}
	return nil
}

// rewriteInPlace rewrites target, an existing file, in place: it keeps
// target's inode, mode and owner. data first goes durably to a recovery
// copy (see writeCopy), so that a crash while target is rewritten loses
// nothing: load restores target from there.
func rewriteInPlace(fsys fileOps, target string, data []byte) error {
	// Opened first, so that a file that may not be written fails before a
	// copy of data, which holds every key, is left anywhere.
	f, err := fsys.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("config: rewriting %s in place: %w", target, err)
	}
	pending, err := writeCopy(fsys, target, data)
	if err != nil {
		f.Close()
		return fmt.Errorf("config: %s cannot be replaced by rename, and its in-place rewrite could not start: %w", target, err)
	}
	// From here on target may be broken until the rewrite completes.
	failed := func(err error) error {
		return fmt.Errorf("config: rewriting %s in place failed; %s holds the new content and Load restores it: %w",
			target, pending, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return failed(err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return failed(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return failed(err)
	}
	if err := f.Close(); err != nil {
		return failed(err)
	}
	// Best effort: a leftover copy equal to target is ignored by load,
	// which only reads it when target does not parse.
	fsys.Remove(pending)
	return nil
}

// writeCopy writes data durably to the recovery copy for the in-place
// rewrite of target and returns its name: target+".new" or, if target's
// directory may not be written, tempCopy(target).
//
// The copy is written atomically (replaceFile), so that a copy left by an
// earlier crash, which may be the only good one when load restores from
// it, is never half overwritten; for the same reason it is not removed on
// failure. In the temporary directory, which others may write to, this
// also means the copy is created under a new random name with O_EXCL and
// mode 0600, then renamed over the fixed name, which replaces whatever is
// there (a planted symbolic link included) rather than following it; a
// file planted there by another user makes the rename fail (sticky
// directory), so the write fails instead of going astray.
func writeCopy(fsys fileOps, target string, data []byte) (string, error) {
	next := target + ".new"
	err := replaceFile(fsys, next, data, nil)
	if err == nil || !dirRefused(err) {
		return next, err
	}
	tmp := tempCopy(fsys, target)
	if terr := replaceFile(fsys, tmp, data, nil); terr != nil {
		return "", fmt.Errorf("%w; and in the temporary directory: %w", err, terr)
	}
	return tmp, nil
}

// tempCopy is the name of the recovery copy of target's in-place rewrite
// when it cannot go next to target: in the temporary directory, named
// after target's absolute path, so that gateways with different files do
// not share one.
func tempCopy(fsys fileOps, target string) string {
	if abs, err := filepath.Abs(target); err == nil {
		target = abs
	}
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(fsys.TempDir(), "ollama-gateway-"+hex.EncodeToString(sum[:8])+".json.new")
}

// load reads and parses the file at path, as Load documents, and returns
// the bytes it parsed. On a parse error it still returns the file's bytes
// (data is nil only if the file could not be read).
func load(fsys fileOps, path string) (data []byte, c *Config, err error) {
	data, err = fsys.ReadFile(path)
	if err != nil {
		return nil, nil, &fileError{path: path, err: err}
	}
	c, perr := Parse(data)
	if perr == nil {
		return data, c, nil
	}
	broken := &fileError{path: path, err: perr}
	target := path
	if p, err := fsys.EvalSymlinks(path); err == nil {
		target = p
	}
	pending, c, name := recoveryCopy(fsys, target, data)
	if c == nil {
		return data, nil, broken
	}
	// Finish the rewrite. If this fails the copy stays, and the next load
	// recovers from it again.
	if writeFileAtomic(fsys, path, pending) == nil {
		fsys.Remove(name)
	}
	return pending, c, nil
}

// recoveryCopy looks for the recovery copy of an interrupted in-place
// rewrite of target, whose content is data, next to target and in the
// temporary directory (see writeCopy). It returns the copy's content, its
// config and its name, or a nil config if neither copy parses and fits
// data (interruptedRewrite). If both do, the one modified last wins: the
// other is older than the rewrite that broke target.
func recoveryCopy(fsys fileOps, target string, data []byte) (pending []byte, c *Config, name string) {
	var newest time.Time
	for _, cp := range []struct {
		name   string
		shared bool
	}{{target + ".new", false}, {tempCopy(fsys, target), true}} {
		b, mod, err := readCopy(fsys, cp.name, cp.shared)
		if err != nil || !interruptedRewrite(data, b) || (c != nil && !mod.After(newest)) {
			continue
		}
		if pc, err := Parse(b); err == nil {
			pending, c, name, newest = b, pc, cp.name, mod
		}
	}
	return pending, c, name
}

// errNotOurs marks a file in the temporary directory that WriteFileAtomic
// did not leave there.
var errNotOurs = errors.New("not a recovery copy written by this user")

// readCopy reads the recovery copy name and returns it with its
// modification time. A copy in a shared directory (the temporary one) is
// read only if it is what writeCopy leaves there: a regular file, not a
// symbolic link, of this process's user, that group and others may not
// read or write. Anything else may have been planted by another user to be
// restored as the config, and is not read (nor waited on, were it a FIFO).
func readCopy(fsys fileOps, name string, shared bool) ([]byte, time.Time, error) {
	flag := os.O_RDONLY
	if shared {
		flag |= openNoFollow
	}
	f, err := fsys.OpenFile(name, flag, 0)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if shared && !ownPrivateFile(fi) {
		return nil, time.Time{}, fmt.Errorf("%s: %w", name, errNotOurs)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, time.Time{}, err
	}
	return b, fi.ModTime(), nil
}

// interruptedRewrite reports whether data, a file's content, can be what
// an in-place rewrite of it to pending left behind when interrupted: the
// rewrite truncates, then writes pending from the start, so every byte is
// pending's byte at the same offset, or 0 in a block a crash left
// unwritten. An operator's own edit of the file does not fit this, so a
// stale pending file never overrides it.
func interruptedRewrite(data, pending []byte) bool {
	if len(data) > len(pending) {
		return false
	}
	for i, b := range data {
		if b != pending[i] && b != 0 {
			return false
		}
	}
	return true
}
