package access

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
)

func TestParseAuthorization(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sk-abc", "sk-abc"},
		{"Bearer sk-abc", "sk-abc"},
		{"bearer sk-abc", "sk-abc"},
		{"BEARER   sk-abc  ", "sk-abc"},
		{"  sk-abc ", "sk-abc"},
		{"Bearer", "Bearer"}, // no key after the scheme: taken as a raw key, which will not match
		{"Bearer ", "Bearer"},
		{"Basic dXNlcg==", "Basic dXNlcg=="},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(ParseAuthorization([]byte(tt.in))); got != tt.want {
			t.Errorf("ParseAuthorization(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestKeySet(t *testing.T) {
	digest := sha256.Sum256([]byte("by-digest"))
	s := NewKeySet(
		config.Keys("plain-key", "sha256:"+hex.EncodeToString(digest[:]), "shared"),
		config.Keys("admin-key", "shared"),
	)
	tests := []struct {
		presented string
		found     bool
		admin     bool
	}{
		{"plain-key", true, false},
		{"by-digest", true, false},
		{"admin-key", true, true},
		{"shared", true, true}, // listed in both: admin wins
		{"plain-ke", false, false},
		{"plain-key2", false, false},
		{"sha256:" + hex.EncodeToString(digest[:]), false, false}, // the digest is not a key
		{"", false, false},
	}
	for _, tt := range tests {
		k := s.Lookup([]byte(tt.presented))
		if (k != nil) != tt.found || (k != nil && k.Admin != tt.admin) {
			t.Errorf("Lookup(%q) = %+v; want found %v admin %v", tt.presented, k, tt.found, tt.admin)
		}
	}
	if k := s.Lookup([]byte("plain-key")); k.Name != hex.EncodeToString(sha256Of("plain-key")[:8]) {
		t.Errorf("key name %q is not the digest prefix", k.Name)
	}
	if s.Len() != 4 || !s.HasAdminKeys() {
		t.Errorf("Len %d HasAdminKeys %v; want 4 true", s.Len(), s.HasAdminKeys())
	}
	if NewKeySet(config.Keys("a"), nil).HasAdminKeys() {
		t.Error("HasAdminKeys true without admin keys")
	}
}

func sha256Of(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func TestIPSet(t *testing.T) {
	s, err := NewIPSet([]string{"10.0.0.0/8", "192.168.1.7", "::1", "2001:db8::/32", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"192.168.1.7", true},
		{"192.168.1.8", false},
		{"::ffff:10.9.9.9", true}, // IPv4-mapped matches its IPv4 form
		{"::1", true},
		{"::2", false},
		{"2001:db8:1::5", true},
		{"2001:db9::5", false},
		{"172.16.3.4", true}, // mapped CIDR entry matches plain IPv4
		{"172.32.0.1", false},
	}
	for _, tt := range tests {
		if got := s.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Contains(%s) = %v; want %v", tt.ip, got, tt.want)
		}
	}
	var empty *IPSet
	if empty.Contains(netip.MustParseAddr("10.0.0.1")) || empty.Len() != 0 {
		t.Error("nil set contains something")
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "", "1.2.3"} {
		if _, err := NewIPSet([]string{bad}); err == nil {
			t.Errorf("NewIPSet(%q) succeeded", bad)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "abc", "bearer  x ", "", "Bearer"} {
		f.Add(s)
	}
	s := NewKeySet(config.Keys("abc"), nil)
	f.Fuzz(func(t *testing.T, v string) {
		k := ParseAuthorization([]byte(v))
		if len(k) > len(v) {
			t.Fatalf("key longer than the header")
		}
		_ = s.Lookup(k)
	})
}

func FuzzIPSet(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "::ffff:1.2.3.4/120", "fe80::1%eth0", "1.2.3.4/0"} {
		f.Add(s, "10.1.2.3")
	}
	f.Fuzz(func(t *testing.T, entry, probe string) {
		s, err := NewIPSet([]string{entry})
		if err != nil {
			return
		}
		a, err := netip.ParseAddr(probe)
		if err != nil {
			return
		}
		p, _ := parseEntry(entry)
		// Contains must agree with the prefix's own Contains on the
		// unmapped address.
		if got, want := s.Contains(a), p.Contains(a.Unmap().WithZone("")); got != want {
			t.Fatalf("Contains(%s) in {%s} = %v; prefix %s says %v", a, entry, got, p, want)
		}
	})
}

func BenchmarkIPSetContains1000CIDRs(b *testing.B) {
	entries := make([]string, 0, 1000)
	for i := range 1000 {
		bits := []int{8, 16, 24, 32}[i%4]
		entries = append(entries, fmt.Sprintf("%d.%d.%d.0/%d", 1+i%200, i%256, (i*7)%256, bits))
	}
	s, err := NewIPSet(entries)
	if err != nil {
		b.Fatal(err)
	}
	probe := netip.MustParseAddr("203.0.113.77")
	b.ReportAllocs()
	for b.Loop() {
		if s.Contains(probe) {
			b.Fatal("unexpected match")
		}
	}
}

func BenchmarkKeyLookup(b *testing.B) {
	s := NewKeySet(config.Keys("ahP7DieD7rNpTUa6No--iJpOaXY3TDK8dIjKg0cp-hI"), nil)
	hdr := []byte("Bearer ahP7DieD7rNpTUa6No--iJpOaXY3TDK8dIjKg0cp-hI")
	b.ReportAllocs()
	for b.Loop() {
		if s.Lookup(ParseAuthorization(hdr)) == nil {
			b.Fatal("key not found")
		}
	}
}
