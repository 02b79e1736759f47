package proxy

import (
	"strings"
	"testing"
	"time"
)

func TestBlobKey(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		in   string
		want string // "" when not a digest
	}{
		{"sha256:" + hex, "sha256:" + hex},
		{"sha256-" + hex, "sha256:" + hex},
		{"SHA256:" + strings.ToUpper(hex), "sha256:" + hex},
		{"sha256:" + hex[:63], ""},
		{"sha256:" + hex + "0", ""},
		{"sha256:" + hex[:63] + "g", ""},
		{"sha512:" + hex, ""},
		{"", ""},
	} {
		got, ok := blobKey([]byte(tt.in))
		if string(got) != tt.want || ok != (tt.want != "") {
			t.Errorf("blobKey(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestAffinityBoundsAndTTL(t *testing.T) {
	b1, _ := NewBackend("http://127.0.0.1:1", BackendOptions{})
	b2, _ := NewBackend("http://127.0.0.1:2", BackendOptions{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAffinity(2, time.Minute)
	a.now = func() time.Time { return now }
	d := func(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

	a.Remember(d('1'), b1)
	a.Remember("sha256-"+strings.Repeat("1", 64), b2) // the same digest: updated
	a.Remember(d('2'), b1)
	a.Remember("not a digest", b1)
	if got := a.Lookup(d('1')); got != b2 {
		t.Errorf("Lookup(1) = %v; want b2", got)
	}
	// 1 was used last: adding 3 pushes 2 out.
	a.Remember(d('3'), b1)
	if a.Len() != 2 || a.Lookup(d('2')) != nil || a.Lookup(d('3')) != b1 {
		t.Errorf("after a third digest: Len %d, 2 kept %v; want 2, false", a.Len(), a.Lookup(d('2')) != nil)
	}
	// A use renews the TTL; past it the digest is forgotten.
	now = now.Add(50 * time.Second)
	if a.Lookup(d('1')) != b2 {
		t.Error("digest forgotten within its TTL")
	}
	now = now.Add(55 * time.Second)
	if a.Lookup(d('1')) != b2 || a.Lookup(d('3')) != nil {
		t.Error("want 1 kept (renewed 55 s ago), 3 expired (105 s)")
	}
}
