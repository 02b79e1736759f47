package limiter

import (
	"encoding/hex"
	"hash/maphash"
	"net/netip"
	"strconv"
)

// Kinds of ClientKey. The zero ClientKey (kindNone) is distinct from every key built by
// AddrKey or IDKey.
const (
	kindNone        uint8 = iota // the zero ClientKey
	kindAddr4                    // b[:4] is an IPv4 address, b[4:] is zero
	kindAddr6                    // b[:8] is an IPv6 /64 prefix, b[8:] is zero
	kindAddrInvalid              // the invalid netip.Addr; b is zero
	kindID                       // b is an opaque client ID
)

// ClientKey identifies a client to a Limiter or Concurrency: an IP address (or
// IPv6 /64) or an authenticated client's ID, in a scope.
//
// A ClientKey is a comparable value of fixed size (18 bytes), so building one and
// looking it up never allocates. The zero ClientKey is a valid key distinct from
// every key AddrKey and IDKey return.
type ClientKey struct {
	kind  uint8 // kindAddr4, kindAddr6, kindAddrInvalid or kindID
	scope uint8 // namespace; 0 is the default
	b     [16]byte
}

// AddrKey returns the key of a client IP address. An IPv4 address, or an
// IPv4-mapped IPv6 address (unmapped first), is keyed by its full address.
// An IPv6 address is keyed by its /64 prefix, ignoring the zone: one user
// usually owns a whole /64, so keying by full address would let them
// multiply their rate by 2^64. The invalid (zero) netip.Addr gets a key of
// its own, shared by every caller that passes it.
func AddrKey(a netip.Addr) ClientKey {
	a = a.Unmap()
	switch {
	case a.Is4():
		k := ClientKey{kind: kindAddr4}
		v4 := a.As4()
		copy(k.b[:], v4[:])
		return k
	case a.Is6():
		k := ClientKey{kind: kindAddr6}
		v6 := a.As16()
		copy(k.b[:8], v6[:8])
		return k
	}
	return ClientKey{kind: kindAddrInvalid}
}

// IDKey returns the key of an authenticated client by an opaque ID, such as
// the first 16 bytes of the SHA-256 digest of its API key. ID keys never
// equal address keys.
func IDKey(id [16]byte) ClientKey {
	return ClientKey{kind: kindID, b: id}
}

// WithScope returns k in the namespace identified by scope, so that one
// limiter can hold unrelated buckets for the same client: for example
// failed-authentication buckets keyed by IP beside request buckets keyed by
// IP. Scope 0 is the default namespace, the one AddrKey and IDKey return;
// WithScope replaces any scope k already had.
func (k ClientKey) WithScope(scope uint8) ClientKey {
	k.scope = scope
	return k
}

// String returns a short printable form of k for logs and debugging: an IPv4
// address ("192.0.2.1"), an IPv6 prefix ("2001:db8::/64"), or "id:" and the
// first 8 bytes of an ID in hex (for an ID taken from a SHA-256 digest, the
// same 16 digits as config.KeyID). A non-zero scope is appended as "@scope".
// String allocates.
func (k ClientKey) String() string {
	var s string
	switch k.kind {
	case kindAddr4:
		s = netip.AddrFrom4([4]byte(k.b[:4])).String()
	case kindAddr6:
		s = netip.PrefixFrom(netip.AddrFrom16(k.b), 64).String()
	case kindAddrInvalid:
		s = "invalid-addr"
	case kindID:
		s = "id:" + hex.EncodeToString(k.b[:8])
	default:
		s = "zero-key"
	}
	if k.scope != 0 {
		s += "@" + strconv.Itoa(int(k.scope))
	}
	return s
}

// hash returns a hash of k under seed, used to choose a shard. It takes a
// pointer: copying an 18-byte Key (two overlapping 16-byte moves) and
// reading it back at once stalls store forwarding, which cost ~10ns per
// Allow.
func (k *ClientKey) hash(seed maphash.Seed) uint64 {
	h := maphash.Bytes(seed, k.b[:])
	// Fold kind and scope in so that one client's keys in different scopes
	// (and an ID equal to an address's bytes) spread over shards too.
	return h ^ (uint64(k.kind)<<8|uint64(k.scope)+1)*0x9e3779b97f4a7c15
}
