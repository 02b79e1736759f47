package atomicfile

import (
	"errors"
	"io/fs"
	"os"
)

// Locked is an exclusive advisory lock on a file, taken by [Lock]. It
// must be unlocked once, by the goroutine that holds it or another.
type Locked struct {
	f *os.File // nil where the system offers no lock
}

// Lock takes an exclusive advisory lock (flock(2)) on the file at path,
// waiting for whoever holds it, and returns it held. Every process and
// goroutine that edits the file through Lock (or [Edit]) is serialized
// with the others; a writer that does not lock (an editor) is not stopped.
//
// The lock is on the file itself, not on a lock file beside it, so that it
// works where the directory may not be written (a read-only directory, or
// Docker's single-file bind mount). Because [WriteFile] may replace the
// file by rename, a lock taken on the old file would lock nothing: after
// locking, Lock checks that path still names the file it locked, and
// starts again on the new file if not. A symbolic link at path is followed.
//
// The file must exist and be readable. Where the system or file system
// has no flock (Windows, and file systems that answer ENOLCK or
// EOPNOTSUPP), Lock returns a lock that excludes nothing. Errors are
// *[fs.PathError]s with Op "lock".
func Lock(path string) (*Locked, error) {
	for {
		f, err := os.Open(path)
		if err != nil {
			return nil, pathError("lock", path, err)
		}
		switch err := flock(f); {
		case errors.Is(err, errNoLocks):
			f.Close()
			return &Locked{}, nil
		case err != nil:
			f.Close()
			return nil, pathError("lock", path, err)
		}
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, pathError("lock", path, err)
		}
		now, err := os.Stat(path)
		if err == nil && os.SameFile(held, now) {
			return &Locked{f: f}, nil
		}
		f.Close() // replaced while we waited: lock the new file
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, pathError("lock", path, err)
		}
	}
}

// Unlock releases the lock.
func (l *Locked) Unlock() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close() // closing the descriptor releases its flock
}

// Edit replaces the content of the file at path with what edit makes of
// it, under the file's [Lock]: concurrent Edits of one file, in this
// process or others, never lose each other's changes.
//
// It locks the file, reads it as [ReadFile] does (recovering an
// interrupted rewrite; valid says what content is good), passes the
// content to edit and, unless edit returns an error or nil, writes the
// result with [WriteFile] before unlocking. edit's error is returned as it
// is; other errors are *[fs.PathError]s naming path.
func Edit(path string, valid func([]byte) bool, edit func(data []byte) ([]byte, error)) error {
	l, err := Lock(path)
	if err != nil {
		return err
	}
	defer l.Unlock()
	data, err := readRecovering(osFS{}, path, valid)
	if err != nil {
		return err // the read's *fs.PathError
	}
	out, err := edit(data)
	if err != nil || out == nil {
		return err
	}
	return writeFile(osFS{}, path, out)
}
