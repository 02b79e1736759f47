package limiter_test

import (
	"net/netip"
	"testing"

	"github.com/ollamagw/ollama-gateway/limiter"
)

func TestAddrKey(t *testing.T) {
	key := func(s string) limiter.ClientKey { return limiter.AddrKey(netip.MustParseAddr(s)) }
	tests := []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"::ffff:192.0.2.1", "192.0.2.1", true}, // IPv4-mapped is IPv4
		{"2001:db8::1", "2001:db8::2", true},    // same /64
		{"2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff", true},
		{"2001:db8::1", "2001:db8:0:1::1", false}, // next /64
		{"fe80::1%eth0", "fe80::2%eth1", true},    // zone ignored
		{"::c000:201", "192.0.2.1", false},        // IPv4-compatible is IPv6
		{"::ffff:0:0", "0.0.0.0", true},
		{"0.0.0.0", "::", false},
	}
	for _, tt := range tests {
		if got := key(tt.a) == key(tt.b); got != tt.same {
			t.Errorf("AddrKey(%s) == AddrKey(%s) is %v; want %v", tt.a, tt.b, got, tt.same)
		}
	}
	if limiter.AddrKey(netip.Addr{}) == (limiter.ClientKey{}) {
		t.Error("AddrKey(invalid) is the zero ClientKey; want a key of its own")
	}
}

func TestKeyKindsAndScopes(t *testing.T) {
	var id [16]byte
	copy(id[:], []byte{192, 0, 2, 1})
	addr := limiter.AddrKey(netip.MustParseAddr("192.0.2.1"))
	if limiter.IDKey(id) == addr {
		t.Error("IDKey equals AddrKey with the same bytes")
	}
	if limiter.IDKey([16]byte{}) == (limiter.ClientKey{}) {
		t.Error("IDKey(zero) is the zero ClientKey")
	}
	if addr.WithScope(1) == addr {
		t.Error("WithScope(1) did not change the key")
	}
	if addr.WithScope(1) == addr.WithScope(2) {
		t.Error("scopes 1 and 2 are equal")
	}
	if addr.WithScope(1).WithScope(0) != addr {
		t.Error("WithScope(0) is not the default namespace")
	}
}

func TestKeyString(t *testing.T) {
	id := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	tests := []struct {
		key  limiter.ClientKey
		want string
	}{
		{limiter.AddrKey(netip.MustParseAddr("192.0.2.1")), "192.0.2.1"},
		{limiter.AddrKey(netip.MustParseAddr("::ffff:192.0.2.1")), "192.0.2.1"},
		{limiter.AddrKey(netip.MustParseAddr("2001:db8::1")), "2001:db8::/64"},
		{limiter.AddrKey(netip.Addr{}), "invalid-addr"},
		{limiter.IDKey(id), "id:deadbeef01020304"},
		{limiter.IDKey(id).WithScope(7), "id:deadbeef01020304@7"},
		{limiter.ClientKey{}, "zero-key"},
	}
	for _, tt := range tests {
		if got := tt.key.String(); got != tt.want {
			t.Errorf("String() = %q; want %q", got, tt.want)
		}
	}
}
