package access

import (
	"bytes"
	"errors"
	"net/netip"
	"net/textproto"
	"testing"
)

// headers is a Headers of fixed values, keyed by canonical name.
type headers map[string][]string

func (h headers) PeekAll(name string) [][]byte {
	var out [][]byte
	for _, v := range h[textproto.CanonicalMIMEHeaderKey(name)] {
		out = append(out, []byte(v))
	}
	return out
}

func xff(v ...string) headers { return headers{"X-Forwarded-For": v} }
func fwd(v ...string) headers { return headers{"Forwarded": v} }

// TestClientIP covers the forms proxies really send (issue 10, item 7: a
// port, brackets, quotes or "unknown" made the proxy the client, so a
// denied IP got through).
func TestClientIP(t *testing.T) {
	trusted, _ := NewIPSet([]string{"10.0.0.0/8", "::1"})
	tests := []struct {
		name string
		peer string
		h    headers
		want string // "" for a *ForwardingError
	}{
		{"untrusted peer ignores XFF", "203.0.113.9", xff("1.2.3.4"), "203.0.113.9"},
		{"untrusted peer ignores garbage", "203.0.113.9", xff("unknown"), "203.0.113.9"},
		{"trusted peer, one hop", "10.0.0.2", xff("198.51.100.7"), "198.51.100.7"},
		{"forged left part ignored", "10.0.0.2", xff("6.6.6.6, 198.51.100.7"), "198.51.100.7"},
		{"garbage left of the client ignored", "10.0.0.2", xff("unknown, \"x, 198.51.100.7"), "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.2", xff("198.51.100.7, 10.0.0.3", "10.0.0.4"), "198.51.100.7"},
		{"several headers", "10.0.0.2", xff("6.6.6.6", "198.51.100.7"), "198.51.100.7"},
		{"all trusted", "10.0.0.2", xff("10.0.0.3"), "10.0.0.3"},
		{"no XFF", "10.0.0.2", nil, "10.0.0.2"},
		{"empty XFF", "10.0.0.2", xff(""), "10.0.0.2"},
		{"empty elements", "10.0.0.2", xff(" , 198.51.100.7 ,, "), "198.51.100.7"},
		{"IPv6 trusted peer", "::1", xff("2001:db8::7"), "2001:db8::7"},
		{"mapped peer", "::ffff:10.0.0.2", xff("198.51.100.7"), "198.51.100.7"},
		{"mapped client", "10.0.0.2", xff("::ffff:198.51.100.7"), "198.51.100.7"},

		{"IPv4 with port", "10.0.0.2", xff("1.2.3.4:5555"), "1.2.3.4"},
		{"bracketed IPv6 with port", "10.0.0.2", xff("[2001:db8::1]:443"), "2001:db8::1"},
		{"bracketed IPv6", "10.0.0.2", xff("[2001:db8::1]"), "2001:db8::1"},
		{"IPv6 zone stripped", "10.0.0.2", xff("fe80::1%eth0"), "fe80::1"},
		{"bracketed zone with port", "10.0.0.2", xff("[fe80::1%25eth0]:80"), "fe80::1"},
		{"quoted", "10.0.0.2", xff(`"1.2.3.4"`), "1.2.3.4"},
		{"quoted with port", "10.0.0.2", xff(`"[2001:db8::1]:443"`), "2001:db8::1"},
		{"tabs and spaces", "10.0.0.2", xff("\t 1.2.3.4 \t"), "1.2.3.4"},
		{"trusted proxy with port", "10.0.0.2", xff("1.2.3.4, 10.0.0.3:80"), "1.2.3.4"},

		{"unknown refused", "10.0.0.2", xff("unknown"), ""},
		{"garbage right of the client refused", "10.0.0.2", xff("198.51.100.7, junk"), ""},
		{"obfuscated refused", "10.0.0.2", xff("_hidden"), ""},
		{"bad port", "10.0.0.2", xff("1.2.3.4:65536"), ""},
		{"empty port", "10.0.0.2", xff("1.2.3.4:"), ""},
		{"unclosed bracket", "10.0.0.2", xff("[2001:db8::1:443"), ""},
		{"junk after bracket", "10.0.0.2", xff("[2001:db8::1]x"), ""},
		{"leading zero", "10.0.0.2", xff("01.2.3.4"), ""},
		{"quoted list", "10.0.0.2", xff(`"1.2.3.4, 5.6.7.8"`), ""},
		{"unbalanced quote cannot swallow the proxy's entry", "10.0.0.2", xff(`"6.6.6.6, 198.51.100.7`), "198.51.100.7"},

		{"Forwarded", "10.0.0.2", fwd("for=198.51.100.7"), "198.51.100.7"},
		{"Forwarded case and params", "10.0.0.2", fwd("proto=https;FOR=198.51.100.7;by=10.0.0.2"), "198.51.100.7"},
		{"Forwarded quoted IPv6 with port", "10.0.0.2", fwd(`for="[2001:db8:cafe::17]:4711"`), "2001:db8:cafe::17"},
		{"Forwarded IPv4 with port", "10.0.0.2", fwd(`for="192.0.2.43:47011"`), "192.0.2.43"},
		{"Forwarded obfuscated port", "10.0.0.2", fwd(`for="192.0.2.43:_p1"`), "192.0.2.43"},
		{"Forwarded chain", "10.0.0.2", fwd("for=6.6.6.6, for=198.51.100.7", "for=10.0.0.3"), "198.51.100.7"},
		{"Forwarded quoted comma", "10.0.0.2", fwd(`for=6.6.6.6;x="a,b", for=198.51.100.7`), "198.51.100.7"},
		{"Forwarded quoted-pair", "10.0.0.2", fwd(`for="198.51.100\.7"`), "198.51.100.7"},
		{"Forwarded without for ignored", "10.0.0.2", fwd("proto=https;host=example.com"), "10.0.0.2"},
		{"Forwarded without for, XFF used", "10.0.0.2", headers{"Forwarded": {"proto=https"}, "X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"Forwarded unknown refused", "10.0.0.2", fwd("for=unknown"), ""},
		{"Forwarded obfuscated refused", "10.0.0.2", fwd("for=_gazonk"), ""},
		{"Forwarded element without for refused", "10.0.0.2", fwd("for=198.51.100.7, proto=https"), ""},
		{"Forwarded two for refused", "10.0.0.2", fwd("for=198.51.100.7;for=10.0.0.3"), ""},
		{"Forwarded unclosed quote refused", "10.0.0.2", fwd(`for="198.51.100.7`), ""},
		{"Forwarded unknown left of client ignored", "10.0.0.2", fwd("for=unknown, for=198.51.100.7"), "198.51.100.7"},

		{"both agree", "10.0.0.2", headers{"Forwarded": {"for=198.51.100.7"}, "X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"both disagree refused", "10.0.0.2", headers{"Forwarded": {"for=1.1.1.1"}, "X-Forwarded-For": {"198.51.100.7"}}, ""},
		{"either unparsable refused", "10.0.0.2", headers{"Forwarded": {"for=198.51.100.7"}, "X-Forwarded-For": {"unknown"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ClientIP(netip.MustParseAddr(tt.peer), tt.h, trusted)
			if tt.want == "" {
				var fe *ForwardingError
				if !errors.As(err, &fe) || got.IsValid() {
					t.Fatalf("ClientIP(%s, %v) = %v, %v; want a *ForwardingError", tt.peer, tt.h, got, err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Errorf("ClientIP(%s, %v) = %v, %v; want %s", tt.peer, tt.h, got, err, tt.want)
			}
		})
	}
	if got, err := ClientIP(netip.MustParseAddr("10.0.0.2"), xff("1.1.1.1"), nil); err != nil || got != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("no trusted proxies: ClientIP = %v, %v; want the peer", got, err)
	}
}

// TestClientIPNoAllocsIPv4: the common case (IPv4 entries) allocates
// nothing.
func TestClientIPNoAllocsIPv4(t *testing.T) {
	trusted, _ := NewIPSet([]string{"10.0.0.0/8"})
	h := &oneHeader{xff: [][]byte{[]byte("6.6.6.6, 198.51.100.7:5555, 10.0.0.3")}, fwd: [][]byte{[]byte(`for="198.51.100.7:1"`)}}
	peer := netip.MustParseAddr("10.0.0.2")
	if n := testing.AllocsPerRun(100, func() {
		if a, err := ClientIP(peer, h, trusted); err != nil || a != netip.MustParseAddr("198.51.100.7") {
			t.Fatalf("ClientIP = %v, %v", a, err)
		}
	}); n != 0 {
		t.Errorf("ClientIP allocates %v times per call; want 0", n)
	}
}

type oneHeader struct{ xff, fwd [][]byte }

func (h *oneHeader) PeekAll(name string) [][]byte {
	if name == "Forwarded" {
		return h.fwd
	}
	return h.xff
}

// FuzzClientIP checks ClientIP against a plain right-to-left walk of the
// entries (split first, then walked), never panics, and returns addresses
// without zone and unmapped.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{
		"1.2.3.4", "1.2.3.4:5555, 10.0.0.3", "[2001:db8::1]:443", "unknown, 1.2.3.4", "\"1.2.3.4\"",
		"fe80::1%eth0", "for=\"[2001:db8::1]:443\";proto=https, for=10.0.0.3", "for=unknown", "proto=https",
		"for=\"a\\\"b\", for=1.2.3.4", "\"", ",,,", "::ffff:10.0.0.9",
	} {
		f.Add(s, s)
		f.Add(s, "")
		f.Add("", s)
	}
	trusted, _ := NewIPSet([]string{"10.0.0.0/8", "fe80::/10"})
	peer := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, x, fw string) {
		h := &oneHeader{xff: splitLines(x), fwd: splitLines(fw)}
		got, err := ClientIP(peer, h, trusted)
		if err != nil {
			var fe *ForwardingError
			if !errors.As(err, &fe) || got.IsValid() {
				t.Fatalf("error %v (%T) with address %v", err, err, got)
			}
		} else if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientIP = %v: want a valid, unmapped address without zone", got)
		}
		wantAddr, wantErr := referenceWalk(peer, h, trusted)
		if (err != nil) != wantErr || (!wantErr && got != wantAddr) {
			t.Fatalf("ClientIP(xff %q, forwarded %q) = %v, %v; reference walk gives %v, error %v", x, fw, got, err, wantAddr, wantErr)
		}
	})
}

// splitLines makes one header value per line of s.
func splitLines(s string) [][]byte {
	if s == "" {
		return nil
	}
	return bytes.Split([]byte(s), []byte("\n"))
}

// referenceWalk is the definition ClientIP implements in one pass: collect
// each header's entries, walk them from the right.
func referenceWalk(peer netip.Addr, h *oneHeader, trusted *IPSet) (netip.Addr, bool) {
	type ent struct {
		a  netip.Addr
		ok bool
	}
	walkBack := func(es []ent) (netip.Addr, bool, bool) { // client, present, bad
		if len(es) == 0 {
			return netip.Addr{}, false, false
		}
		for i := len(es) - 1; i >= 0; i-- {
			if !es[i].ok {
				return netip.Addr{}, true, true
			}
			if !trusted.Contains(es[i].a) {
				return es[i].a, true, false
			}
		}
		return es[0].a, true, false
	}
	var xs, fs []ent
	for _, v := range h.xff {
		w := walk{trusted: &IPSet{}}
		for _, item := range bytes.Split(v, []byte(",")) {
			w = walk{trusted: &IPSet{}}
			w.xffValue(item)
			if w.any {
				xs = append(xs, ent{w.first, w.stop == false || w.stopAt.IsValid()})
			}
		}
	}
	anyFor := false
	for _, v := range h.fwd {
		for len(v) > 0 {
			var elem []byte
			elem, v = nextElement(v, ',')
			w := walk{trusted: &IPSet{}}
			w.forwardedValue(elem)
			anyFor = anyFor || w.anyFor
			if w.any {
				fs = append(fs, ent{w.first, w.stop == false || w.stopAt.IsValid()})
			}
		}
	}
	if !anyFor {
		fs = nil
	}
	xc, xok, xbad := walkBack(xs)
	fc, fok, fbad := walkBack(fs)
	switch {
	case xbad || fbad:
		return netip.Addr{}, true
	case xok && fok && xc != fc:
		return netip.Addr{}, true
	case xok:
		return xc, false
	case fok:
		return fc, false
	}
	return peer, false
}

func BenchmarkClientIP(b *testing.B) {
	trusted, _ := NewIPSet([]string{"10.0.0.0/8", "fd00::/8"})
	peer := netip.MustParseAddr("10.0.0.2")
	for _, bc := range []struct {
		name string
		h    *oneHeader
	}{
		{"XFF IPv4 three hops", &oneHeader{xff: [][]byte{[]byte("198.51.100.7:5555, 10.0.0.3, 10.0.0.4")}}},
		{"Forwarded IPv6", &oneHeader{fwd: [][]byte{[]byte(`for="[2001:db8::1]:443";proto=https, for=10.0.0.3`)}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ClientIP(peer, bc.h, trusted); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
