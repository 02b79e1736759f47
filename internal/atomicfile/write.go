package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces the file at path with data so that a crash at any
// point leaves the old content or the new one, never a mix.
//
// It writes data to a temporary file in the same directory, gives it the
// mode (and, on Unix, the owner) of the existing file, or mode 0600 for a
// new one, fsyncs it, renames it over path and fsyncs the directory. A
// symbolic link at path is followed: the file it points to is replaced.
//
// An existing file that its mode makes read-only for this process (no
// write permission bit for its user, group or others as applies; for
// root, none at all, as for mode 0444) is not replaced: WriteFile returns
// an error wrapping [fs.ErrPermission] and writes nothing, although
// renaming over it would be allowed.
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
// is removed. A crash during the rewrite leaves the copy, from which
// [ReadFile] recovers. A copy in the temporary directory survives a crash
// of the process, and one of the machine only if that directory is on
// disk.
//
// Every error is an *[fs.PathError] naming path (Op "write", or "rewrite
// in place" once the in-place rewrite has begun). On error the file holds
// its old content, except in two cases: the rename succeeded but syncing
// the directory failed (the error wraps [ErrNotDurable]: the new content
// is in place, not yet durable), or the in-place rewrite failed midway
// (the error wraps [ErrInterrupted]: the recovery copy holds the new
// content and ReadFile restores it). Nothing is written to path if it
// cannot be replaced by rename and is not writable itself, or if neither
// its directory nor the temporary directory takes the recovery copy.
//
// WriteFile takes no lock: concurrent writers of one path serialize
// themselves, with [Lock] or [Edit] across processes.
func WriteFile(path string, data []byte) error {
	return writeFile(osFS{}, path, data)
}

// ErrNotDurable is wrapped by the error of [WriteFile] when the new content
// replaced the file but syncing its directory failed, so the change may
// not survive a crash of the machine.
var ErrNotDurable = errors.New("replaced, but syncing the directory failed: the change may not survive a crash")

// ErrInterrupted is wrapped by the error of [WriteFile] when an in-place
// rewrite failed midway: the file may be broken, its recovery copy holds
// the new content, and [ReadFile] restores it.
var ErrInterrupted = errors.New("interrupted midway")

// pathError wraps err once as an *fs.PathError for op on path. An err that
// is itself a *fs.PathError for the same path gives its Op and Err, so
// the path is not repeated.
func pathError(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path && pe == err {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
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

func writeFile(fsys fileOps, path string, data []byte) error {
	target := path
	switch p, err := fsys.EvalSymlinks(path); {
	case err == nil:
		target = p
	case !errors.Is(err, fs.ErrNotExist):
		return pathError("write", path, err)
	}
	fi, err := fsys.Stat(target)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return pathError("write", path, errors.New("not a regular file"))
	case err == nil && !modeWritable(fi):
		return pathError("write", path, fmt.Errorf("the file's mode %v does not let this process write it: %w",
			fi.Mode().Perm(), fs.ErrPermission))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return pathError("write", path, err)
	case err != nil:
		fi = nil // a new file
	}
	err = replaceFile(fsys, target, data, fi)
	if fi != nil && errors.Is(err, errNoRename) {
		return rewriteInPlace(fsys, target, data)
	}
	if err != nil {
		return pathError("write", path, err)
	}
	return nil
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
			return fmt.Errorf("%w: %w", errNoRename, err)
		}
		return err
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
			return err
		}
	}
	// Chmod after chown, which may clear the set-id bits.
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	closed = true
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, target); err != nil {
		if renameRefused(err) {
			return fmt.Errorf("%w: %w", errNoRename, err)
		}
		return err
	}
	if err := fsys.SyncDir(dir); err != nil {
		// The temporary file is gone: it is target now.
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
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
// nothing: ReadFile restores target from there.
func rewriteInPlace(fsys fileOps, target string, data []byte) error {
	// Opened first, so that a file that may not be written fails before a
	// copy of data, which holds every key, is left anywhere.
	f, err := fsys.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return pathError("rewrite in place", target, err)
	}
	pending, err := writeCopy(fsys, target, data)
	if err != nil {
		f.Close()
		return pathError("rewrite in place", target, fmt.Errorf("writing the recovery copy: %w", err))
	}
	// From here on target may be broken until the rewrite completes.
	failed := func(err error) error {
		return pathError("rewrite in place", target,
			fmt.Errorf("%w; %s holds the new content, which ReadFile restores: %w", ErrInterrupted, pending, err))
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
		return "", fmt.Errorf("%w; and in the temporary directory: %w", pathError("write", next, err), pathError("write", tmp, terr))
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
