package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrNoSuchKey is returned (wrapped) by [RemoveKey] when no key has the
// given id.
var ErrNoSuchKey = errors.New("config: no such key")

// GenerateKey returns a new API key: 32 bytes from crypto/rand encoded as
// base64url without padding, 43 characters of [A-Za-z0-9_-]. It is safe
// for concurrent use.
func GenerateKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("config: generating a key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// AddKey appends key to the top-level "apiKeys" array of the config file at
// path and returns the config the file now holds.
//
// It edits the file as it is on disk now, so edits made since the gateway
// loaded it are kept, and as text: only the array changes (or, if the file
// has no "apiKeys", a member "apiKeys": [key] is added first in the
// object); member order, formatting and every other value stay byte for
// byte. The edited file must pass [Parse], else AddKey returns the error
// and writes nothing; it is written with [WriteFileAtomic]. A file that
// Load would recover from an interrupted rewrite is recovered first.
//
// AddKey keeps no state, but it reads, edits and writes the file without a
// lock: callers serialize calls (and other writers of the file).
func AddKey(path, key string) (*Config, error) {
	c, _, err := editFile(osFS{}, path, func(data []byte) ([]byte, int, error) {
		out, err := insertAPIKey(data, key)
		return out, 1, err
	})
	return c, err
}

// RemoveKey removes every entry of "apiKeys" and "adminKeys" whose key id
// ([KeyID] of [KeyDigest], 16 hex digits; letter case does not matter) is
// keyID from the config file at path, and returns the config the file now
// holds and how many entries it removed. Entries of rateLimit.perKey that
// named only the removed key are removed with it (they would no longer
// validate); they are not counted.
//
// The file is edited as AddKey edits it: as text, only the arrays change,
// and nothing is written if the result would not pass [Parse]. If no entry
// has the id (or keyID is not 16 hex digits), RemoveKey returns an error
// wrapping [ErrNoSuchKey] and writes nothing. Callers serialize calls.
func RemoveKey(path, keyID string) (*Config, int, error) {
	id := strings.ToLower(keyID)
	if len(id) != 16 || !isHex(id) {
		return nil, 0, fmt.Errorf("%w: %q is not a key id (16 hex digits)", ErrNoSuchKey, keyID)
	}
	return editFile(osFS{}, path, func(data []byte) ([]byte, int, error) {
		out, n, err := removeKeyID(data, id)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: no key in %s has id %s", ErrNoSuchKey, path, id)
		}
		return out, n, err
	})
}

// editFile applies edit to the bytes of the config file at path and, if
// the result parses, writes it atomically. It returns the new config and
// the count edit returned.
func editFile(fsys fileOps, path string, edit func([]byte) ([]byte, int, error)) (*Config, int, error) {
	data, _, loadErr := load(fsys, path)
	if data == nil {
		return nil, 0, loadErr // unreadable
	}
	// A file that does not parse is still edited: the edit may be what it
	// needs, and the result is checked below.
	out, n, err := edit(data)
	if err != nil {
		if loadErr != nil && !errors.Is(err, ErrNoSuchKey) {
			return nil, 0, loadErr // says what is wrong with the file
		}
		return nil, 0, err
	}
	c, err := Parse(out)
	switch {
	case err != nil && loadErr != nil:
		return nil, 0, loadErr // the file was broken before the edit
	case err != nil:
		return nil, 0, &fileError{path: path, err: fmt.Errorf("not changed, the result would not load: %w", err)}
	}
	if err := writeFileAtomic(fsys, path, out); err != nil {
		return nil, 0, err
	}
	return c, n, nil
}
