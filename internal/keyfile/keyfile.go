package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/atomicfile"
)

// ErrNoSuchKey is wrapped by the error of [RemoveKey] when no key has the
// given id.
var ErrNoSuchKey = errors.New("no such key")

// ErrLastAdminKey is wrapped by the error of [RemoveKey] when the removal
// would leave adminKeys empty and [RemoveOptions].KeepLastAdminKey asks to
// refuse that.
var ErrLastAdminKey = errors.New("it is the last admin key")

// AddKey appends entry (a key, or the "sha256:<64 hex digits>" form of
// one, see [config.DigestEntry]) to the top-level "apiKeys" array of the
// config file at path and returns the config the file now holds.
//
// It holds the file's lock ([atomicfile.Edit]) while it reads, edits and
// writes it, so concurrent AddKey and RemoveKey calls, in this process or
// others, never lose each other's changes, and edits made since the
// gateway loaded the file are kept. It edits the file as text: only the
// array changes (or, if the file has no "apiKeys", a member "apiKeys":
// [entry] is added first in the object); member order, formatting and
// every other value stay byte for byte. The edited file must pass
// [config.Parse], else AddKey returns the error and writes nothing; it is
// written with [atomicfile.WriteFile], which also refuses a file whose
// mode makes it read-only. A file that config.Load would recover from an
// interrupted rewrite is recovered first.
//
// Errors are *[fs.PathError]s naming path.
func AddKey(path, entry string) (*config.Config, error) {
	return AddEntry(path, config.KeyEntry{Key: entry})
}

// AddEntry is [AddKey] for a key entry of any form: one with nothing but
// Key is added as a string, any other as its object on one line
// ({"key":"…","name":"team-a",…}).
func AddEntry(path string, e config.KeyEntry) (*config.Config, error) {
	c, _, err := editFile(path, "add a key to", func(data []byte) ([]byte, int, error) {
		out, err := insertEntry(data, e)
		return out, 1, err
	})
	return c, err
}

// AddFirstKey adds entry as [AddKey] does, but only if the file, as read
// under its lock, holds no key at all (apiKeys and adminKeys empty): of
// gateways starting at once on a file without keys, one mints the first
// key. It returns the config the file now holds and whether entry was
// added.
func AddFirstKey(path, entry string) (*config.Config, bool, error) {
	c, n, err := editFile(path, "add a key to", func(data []byte) ([]byte, int, error) {
		if c, err := config.Parse(data); err == nil && c.HasKeys() {
			return nil, 0, nil
		}
		out, err := insertAPIKey(data, entry)
		return out, 1, err
	})
	return c, n == 1, err
}

// RemoveOptions refine [RemoveKey]. The zero value removes whatever
// matches.
type RemoveOptions struct {
	// KeepLastAdminKey refuses, with an error wrapping [ErrLastAdminKey],
	// a removal that would leave adminKeys empty when it was not.
	KeepLastAdminKey bool
}

// RemoveKey removes every entry of "apiKeys" and "adminKeys" whose key id
// ([config.KeyID] of [config.KeyDigest], or of [config.PublicKey.Fingerprint]
// for a publicKey entry; 16 hex digits, letter case does not matter) is keyID from the config file at path, and returns the
// config the file now holds and how many entries it removed. Entries of
// rateLimit.perKey that named only the removed key are removed with it
// (they would no longer validate); they are not counted.
//
// The file is edited as AddKey edits it: under its lock, as text, only the
// arrays change, and nothing is written if the result would not pass
// [config.Parse] or opts refuses it. If no entry has the id (or keyID is
// not 16 hex digits), RemoveKey returns an error wrapping [ErrNoSuchKey]
// and writes nothing.
func RemoveKey(path, keyID string, opts RemoveOptions) (*config.Config, int, error) {
	id := strings.ToLower(keyID)
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, 0, &fs.PathError{Op: "remove a key from", Path: path,
			Err: fmt.Errorf("%w: %q is not a key id (16 hex digits)", ErrNoSuchKey, keyID)}
	}
	var before *config.Config
	c, n, err := editFile(path, "remove a key from", func(data []byte) ([]byte, int, error) {
		before, _ = config.Parse(data)
		out, n, err := removeKeyID(data, id)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: none has id %s", ErrNoSuchKey, id)
		}
		return out, n, err
	}, func(after *config.Config) error {
		if opts.KeepLastAdminKey && before != nil && adminCount(before) > 0 && adminCount(after) == 0 {
			return fmt.Errorf("not changed: key %s: %w", id, ErrLastAdminKey)
		}
		return nil
	})
	return c, n, err
}

// adminCount returns how many admin entries, secret or public key, c has.
func adminCount(c *config.Config) int { return len(c.AdminKeys) + len(c.AdminPublicKeys) }

// editFile applies edit to the bytes of the config file at path under the
// file's lock and, if the result parses and every check accepts its
// config, writes it. An edit that returns nil bytes changes nothing: the
// file's own config is returned. It returns the new config and the count edit
// returned. op names the edit in errors.
func editFile(path, op string, edit func([]byte) ([]byte, int, error), checks ...func(*config.Config) error) (*config.Config, int, error) {
	var c *config.Config
	n := 0
	parses := func(b []byte) bool { _, err := config.Parse(b); return err == nil }
	err := atomicfile.Edit(path, parses, func(data []byte) ([]byte, error) {
		_, loadErr := config.Parse(data)
		// A file that does not parse is still edited: the edit may be what
		// it needs, and the result is checked below.
		out, k, err := edit(data)
		if err != nil {
			if loadErr != nil && !errors.Is(err, ErrNoSuchKey) {
				return nil, loadErr // says what is wrong with the file
			}
			return nil, err
		}
		if out == nil { // nothing to change
			if loadErr != nil {
				return nil, loadErr
			}
			c, _ = config.Parse(data)
			return nil, nil
		}
		pc, err := config.Parse(out)
		switch {
		case err != nil && loadErr != nil:
			return nil, loadErr // the file was broken before the edit
		case err != nil:
			return nil, fmt.Errorf("not changed, the result would not load: %w", err)
		}
		for _, check := range checks {
			if err := check(pc); err != nil {
				return nil, err
			}
		}
		c, n = pc, k
		return out, nil
	})
	if err != nil {
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != path {
			err = &fs.PathError{Op: op, Path: path, Err: err}
		}
		return nil, 0, err
	}
	return c, n, nil
}
