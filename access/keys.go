package access

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"
	"time"

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

	// The key's policy, from its config entry (config.KeyEntry); the zero
	// value of each field imposes nothing.

	// Label is the entry's name ("" when it has none), for logs, usage
	// and metrics.
	Label string
	// Models is the key's model allowlist; nil allows every model.
	Models *ModelSet
	// RateLimit and RateWindow are the key's own request rate; 0: none.
	RateLimit  int
	RateWindow time.Duration
	// TokenMax and TokenWindow are the key's token budget; 0: none.
	TokenMax    int64
	TokenWindow time.Duration
	// Expires is when the key stops being accepted; zero: never.
	Expires time.Time
	// Policy is the config entry the policy came from, its key fields
	// cleared: for showing the policy (GET /config/keys).
	Policy config.KeyEntry
}

// DisplayName returns Label, or the key id when the entry has no name.
func (k *Key) DisplayName() string {
	if k.Label != "" {
		return k.Label
	}
	return k.Name
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.Expires.IsZero() && !now.Before(k.Expires)
}

// ModelFilter returns the keep-filter of the key's model listings
// (/api/tags, /api/ps, /v1/models): a predicate on a model name, or nil
// when the key may see every model.
func (k *Key) ModelFilter() func(name string) bool {
	if k == nil || k.Models == nil {
		return nil
	}
	return k.Models.AllowsName
}

// setPolicy copies policy p onto k.
func (k *Key) setPolicy(p config.KeyPolicy) {
	k.Policy = config.KeyEntry{KeyPolicy: p}
	k.Label = p.Name
	k.Models = NewModelSet(p.Models)
	if r := p.RateLimit; r != nil {
		k.RateLimit, k.RateWindow = r.MaxRequests, r.Window()
	}
	if t := p.Tokens; t != nil {
		k.TokenMax, k.TokenWindow = t.Max, t.Window()
	}
	k.Expires, _ = p.Expiry()
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

// NewKeySet builds the set of apiKeys and adminKeys (entries as config
// validates them). An admin key is also an API key. A key listed more than
// once has the policy of the one entry that gives it one. Entries without
// a secret key (publicKey) are left out.
func NewKeySet(apiKeys, adminKeys []config.KeyEntry) *KeySet {
	s := &KeySet{keys: make(map[[32]byte]*Key, len(apiKeys)+len(adminKeys))}
	add := func(e config.KeyEntry, admin bool) {
		if e.Credential() == "" {
			return
		}
		addKey(s.keys, e.Digest(), admin, e.KeyPolicy)
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

// addKey records one entry of apiKeys (admin false) or adminKeys (true)
// under id, its digest or public-key fingerprint: the first entry of an id
// makes its Key, a later one can only add the admin scope, and the entry
// that carries a policy gives it.
func addKey(keys map[[32]byte]*Key, id [32]byte, admin bool, p config.KeyPolicy) {
	k, ok := keys[id]
	if !ok {
		k = &Key{Name: config.KeyID(id)}
		copy(k.ID[:], id[:16])
		keys[id] = k
	}
	k.Admin = k.Admin || admin
	if p.HasPolicy() {
		k.setPolicy(p)
	}
}

// Lookup returns the key matching a presented key, or nil.
func (s *KeySet) Lookup(presented []byte) *Key {
	if len(presented) == 0 {
		return nil
	}
	return s.keys[sha256.Sum256(presented)]
}

// All returns every key of the set, ordered by id.
func (s *KeySet) All() []*Key { return sortedKeys(s.keys) }

// sortedKeys returns the keys of m ordered by id.
func sortedKeys(m map[[32]byte]*Key) []*Key {
	out := make([]*Key, 0, len(m))
	for _, k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *Key) int { return strings.Compare(a.Name, b.Name) })
	return out
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
