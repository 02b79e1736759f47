package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ReadFile returns the content of the file at path, recovering it from an
// interrupted in-place rewrite by [WriteFile] when valid says the file's
// own content is broken.
//
// valid reports whether content is a good version of the file (for a
// config: whether it parses). When the file's content is valid, ReadFile
// returns it and writes nothing. Otherwise it takes the file's [Lock],
// reads it again (a concurrent writer may have finished meanwhile) and
// looks for a recovery copy that an interrupted rewrite leaves:
// path+".new", or, when path's directory may not be written,
// ollama-gateway-<h>.json.new in [os.TempDir] (see WriteFile). A copy is
// used only if valid accepts it and the file holds what an interrupted
// rewrite to that copy leaves (a prefix of it, possibly with zeroed
// blocks), so that a stale copy never overrides an operator's own edit; if
// both copies qualify, the one modified last wins. A copy in the temporary
// directory, where others may create files, is used only if it is a
// regular file (not a symbolic link) of the process's user that group and
// others have no access to. ReadFile then restores the copy over path with
// WriteFile, removes the copy and returns its content. Restoring is best
// effort: if it fails, the copy stays and the next read recovers again.
// When no copy qualifies, ReadFile returns the file's (invalid) content and
// no error: the caller reports what is wrong with it.
//
// An error means the file could not be read; it is the *[fs.PathError] of
// the read.
func ReadFile(path string, valid func([]byte) bool) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil || valid(data) {
		return data, err
	}
	l, err := Lock(path)
	if err != nil {
		return data, nil // recovery writes, and must not race a writer
	}
	defer l.Unlock()
	if recovered, err := readRecovering(osFS{}, path, valid); err == nil {
		return recovered, nil
	}
	return data, nil
}

// readRecovering reads the file at path and, if valid rejects its content,
// recovers it from a recovery copy as ReadFile documents. It returns the
// file's content (invalid if no copy qualified) or the copy's; data is nil
// only if the file could not be read. The caller holds the file's lock.
func readRecovering(fsys fileOps, path string, valid func([]byte) bool) ([]byte, error) {
	data, err := fsys.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if valid(data) {
		return data, nil
	}
	target := path
	if p, err := fsys.EvalSymlinks(path); err == nil {
		target = p
	}
	pending, name := recoveryCopy(fsys, target, data, valid)
	if pending == nil {
		return data, nil
	}
	// Finish the rewrite. If this fails the copy stays, and the next read
	// recovers from it again.
	if writeFile(fsys, path, pending) == nil {
		fsys.Remove(name)
	}
	return pending, nil
}

// recoveryCopy looks for the recovery copy of an interrupted in-place
// rewrite of target, whose content is data, next to target and in the
// temporary directory (see writeCopy). It returns the copy's content and
// its name, or nil if no copy is valid and fits data (interruptedRewrite).
// If both do, the one modified last wins: the other is older than the
// rewrite that broke target.
func recoveryCopy(fsys fileOps, target string, data []byte, valid func([]byte) bool) (pending []byte, name string) {
	var newest time.Time
	for _, cp := range []struct {
		name   string
		shared bool
	}{{target + ".new", false}, {tempCopy(fsys, target), true}} {
		b, mod, err := readCopy(fsys, cp.name, cp.shared)
		if err != nil || !interruptedRewrite(data, b) || (pending != nil && !mod.After(newest)) {
			continue
		}
		if valid(b) {
			pending, name, newest = b, cp.name, mod
		}
	}
	return pending, name
}

// errNotOurs marks a file in the temporary directory that WriteFile
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
