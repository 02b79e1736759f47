package access

import (
	"bytes"
	"crypto/sha256"

	"github.com/ollamagw/ollama-gateway/config"
)

// Key is an authenticated client's key, as the request path sees it: never
// the secret itself.
type Key struct {
	// ID is the first 16 bytes of the key's SHA-256 digest: the client's
	// identity for rate limiting.
	ID [16]byte
	// Name is the public id of the key (config.KeyID: 16 hex digits), for
	// logs.
	Name string
	// Admin reports whether the key may use the admin endpoints.
	Admin bool
}

// KeySet is an immutable set of API keys, looked up by SHA-256 digest. It
// is safe for concurrent use.
//
// A presented key is hashed and the digest looked up in a map. The time
// this takes depends on the digest, not on how many leading characters of
// the key were right, so it leaks nothing useful about a configured key
// (finding a key from digest prefixes is a preimage attack on SHA-256).
type KeySet struct {
	keys  map[[32]byte]*Key
	admin bool
}

// NewKeySet builds the set of apiKeys and adminKeys (raw keys or
// "sha256:<64 hex digits>", as config validates them). An admin key is also
// an API key.
func NewKeySet(apiKeys, adminKeys []string) *KeySet {
	s := &KeySet{keys: make(map[[32]byte]*Key, len(apiKeys)+len(adminKeys))}
	add := func(entry string, admin bool) {
		d := config.KeyDigest(entry)
		if k, ok := s.keys[d]; ok {
			k.Admin = k.Admin || admin
			return
		}
		k := &Key{Name: config.KeyID(d), Admin: admin}
		copy(k.ID[:], d[:16])
		s.keys[d] = k
	}
	for _, e := range apiKeys {
		add(e, false)
	}
	for _, e := range adminKeys {
		add(e, true)
		s.admin = true
	}
	return s
}

// Lookup returns the key matching a presented key, or nil.
func (s *KeySet) Lookup(presented []byte) *Key {
	if len(presented) == 0 {
		return nil
	}
	return s.keys[sha256.Sum256(presented)]
}

// Len returns the number of distinct keys, admin keys included.
func (s *KeySet) Len() int { return len(s.keys) }

// HasAdminKeys reports whether admin keys are configured. Without them the
// admin endpoints accept an API key from a loopback client that sent no
// proxy header ([IsProxyHeader]) only.
func (s *KeySet) HasAdminKeys() bool { return s.admin }

// ParseAuthorization extracts the key from an authentication header value:
// "Bearer <key>" (scheme in any case) or the raw key, surrounding spaces
// trimmed. Keys hold no spaces, so the two forms cannot be confused.
func ParseAuthorization(v []byte) []byte {
	v = bytes.TrimSpace(v)
	if len(v) > 7 && v[6] == ' ' && equalFoldBearer(v[:6]) {
		v = bytes.TrimLeft(v[7:], " ")
	}
	return v
}

func equalFoldBearer(b []byte) bool {
	const s = "bearer"
	for i := range 6 {
		if b[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}
