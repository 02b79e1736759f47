package access

import (
	"bytes"
	"net/netip"
)

// Headers is what ClientIP reads of a request: every value of a header, in
// order (*fasthttp.RequestHeader has this method). The slice returned may be
// reused by the next call.
type Headers interface {
	PeekAll(name string) [][]byte
}

// ForwardingError is ClientIP's refusal of a request a trusted proxy
// forwarded: an entry that matters (one the walk from the right reaches)
// cannot be parsed, e.g. "unknown" or an obfuscated identifier, or the two
// headers name different clients. The request must be refused (400): falling
// back to the proxy's own address would let a denied client through.
type ForwardingError struct {
	// Header is "X-Forwarded-For", "Forwarded", or both joined by " and ".
	Header string
	// Problem says what is wrong, without the header's value.
	Problem string
}

// Error returns "<Header>: <Problem>".
func (e *ForwardingError) Error() string { return e.Header + ": " + e.Problem }

var (
	errXFFUnparsable = &ForwardingError{Header: "X-Forwarded-For", Problem: "an entry from a trusted proxy is not an IP address"}
	errFwdUnparsable = &ForwardingError{Header: "Forwarded", Problem: `an element from a trusted proxy has no IP address in "for"`}
	errConflict      = &ForwardingError{Header: "X-Forwarded-For and Forwarded", Problem: "name different clients"}
)

// ClientIP returns the address to treat as the client's, without IPv6 zone
// and with IPv4-mapped addresses unmapped.
//
// It is the TCP peer, unless the peer is a trusted proxy: then the
// forwarding headers are walked from the right (the entries appended last,
// by the proxies nearest to the gateway) and the first address that is not
// a trusted proxy is the client. Entries appended by trusted proxies are
// believed; anything left of the first untrusted one could be forged by the
// client and is ignored, unparsable or not. When every entry is a trusted
// proxy, the left-most is the client; when there is no entry, the peer.
//
// Both X-Forwarded-For and RFC 7239 Forwarded (its "for" parameters) are
// read, each from all its header lines, as proxies send them: entries may
// carry a port ("1.2.3.4:5555", "[2001:db8::1]:443"), brackets, quotes and
// white space. A Forwarded header in which no element has "for" (only
// "proto=https", say) is ignored. If an entry the walk reaches cannot be
// parsed ("unknown", "_hidden", garbage, a Forwarded element without
// "for"), or if both headers are present and name different clients,
// ClientIP returns a *ForwardingError and the zero Addr.
//
// The walk is one pass over the header bytes, left to right, in time linear
// in their length.
func ClientIP(peer netip.Addr, h Headers, trusted *IPSet) (netip.Addr, error) {
	peer = peer.Unmap().WithZone("")
	if trusted.Len() == 0 || !trusted.Contains(peer) {
		return peer, nil
	}
	// PeekAll may reuse its result: finish one header before the next.
	var x walk
	x.trusted = trusted
	for _, v := range h.PeekAll("X-Forwarded-For") {
		x.xffValue(v)
	}
	var f walk
	f.trusted = trusted
	for _, v := range h.PeekAll("Forwarded") {
		f.forwardedValue(v)
	}
	xc, xok, err := x.result(errXFFUnparsable)
	if err != nil {
		return netip.Addr{}, err
	}
	if !f.anyFor {
		// No "for" at all: the header says nothing about the client.
		f = walk{}
	}
	fc, fok, err := f.result(errFwdUnparsable)
	if err != nil {
		return netip.Addr{}, err
	}
	switch {
	case xok && fok && xc != fc:
		return netip.Addr{}, errConflict
	case xok:
		return xc, nil
	case fok:
		return fc, nil
	}
	return peer, nil
}

// walk computes, in one left-to-right pass, what a right-to-left walk of
// the entries finds: the right-most entry that is unparsable or not a
// trusted proxy (it stops the walk), else the left-most entry.
type walk struct {
	trusted *IPSet
	any     bool       // an entry was seen
	first   netip.Addr // the left-most entry
	stop    bool       // an entry stops the walk
	stopAt  netip.Addr // the right-most such entry (zero: unparsable)
	anyFor  bool       // Forwarded only: an element had "for"
}

// entry records one entry, left to right; ok is false for an unparsable one.
func (w *walk) entry(a netip.Addr, ok bool) {
	if !w.any {
		w.any, w.first = true, a
	}
	if !ok {
		w.stop, w.stopAt = true, netip.Addr{}
		return
	}
	if !w.trusted.Contains(a) {
		w.stop, w.stopAt = true, a
	}
}

// result returns the client the walk found and whether there was an entry
// at all, or bad when the entry that matters is unparsable.
func (w *walk) result(bad error) (netip.Addr, bool, error) {
	switch {
	case !w.any:
		return netip.Addr{}, false, nil
	case w.stop && !w.stopAt.IsValid():
		return netip.Addr{}, true, bad
	case w.stop:
		return w.stopAt, true, nil
	}
	return w.first, true, nil
}

// xffValue walks one X-Forwarded-For header value: comma-separated nodes,
// each possibly quoted and with a port. Empty elements are skipped. Quotes
// are not syntax here: every comma splits, so a client's unbalanced quote
// cannot swallow the entry a proxy appends to the same line.
func (w *walk) xffValue(v []byte) {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		item = trimOWS(item)
		if len(item) == 0 {
			continue
		}
		if len(item) >= 2 && item[0] == '"' && item[len(item)-1] == '"' {
			item = trimOWS(item[1 : len(item)-1])
		}
		w.entry(parseNode(item))
	}
}

// forwardedValue walks one Forwarded header value (RFC 7239):
// comma-separated elements of semicolon-separated name=value pairs, values
// tokens or quoted strings. Each non-empty element is one entry: its "for"
// node, unparsable if it has none, several, or one that is not an IP.
func (w *walk) forwardedValue(v []byte) {
	for len(v) > 0 {
		var elem []byte
		elem, v = nextElement(v, ',')
		if len(trimOWS(elem)) == 0 {
			continue
		}
		var node []byte
		fors := 0
		for len(elem) > 0 {
			var pair []byte
			pair, elem = nextElement(elem, ';')
			pair = trimOWS(pair)
			if len(pair) < 4 || pair[3] != '=' || pair[0]|0x20 != 'f' || pair[1]|0x20 != 'o' || pair[2]|0x20 != 'r' {
				continue
			}
			fors++
			node = trimOWS(pair[4:])
		}
		if fors == 0 {
			w.entry(netip.Addr{}, false)
			continue
		}
		w.anyFor = true
		if fors > 1 {
			w.entry(netip.Addr{}, false)
			continue
		}
		if len(node) >= 2 && node[0] == '"' && node[len(node)-1] == '"' {
			var buf [64]byte
			n, ok := unquote(buf[:0], node[1:len(node)-1])
			if !ok {
				w.entry(netip.Addr{}, false)
				continue
			}
			node = n
		}
		w.entry(parseNode(node))
	}
}

// nextElement splits v at the first sep outside a quoted string, and
// returns the part before it and the rest after it.
func nextElement(v []byte, sep byte) (elem, rest []byte) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++ // quoted-pair: skip the escaped byte
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return v[:i], v[i+1:]
		}
	}
	return v, nil
}

// unquote appends the content of a quoted string (without its quotes) to
// dst, resolving quoted-pairs. It fails on a bare quote or a trailing
// backslash, or when the result would outgrow dst's capacity (no address is
// that long).
func unquote(dst, q []byte) ([]byte, bool) {
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch c {
		case '"':
			return nil, false
		case '\\':
			if i++; i == len(q) {
				return nil, false
			}
			c = q[i]
		}
		if len(dst) == cap(dst) {
			return nil, false
		}
		dst = append(dst, c)
	}
	return dst, true
}

// trimOWS trims spaces and tabs (HTTP's optional white space).
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseNode parses a node as proxies write it: "1.2.3.4", "1.2.3.4:5555",
// "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443", an IPv6 zone
// included or not. The port may be a number or an RFC 7239 obfuscated port
// ("_abc"). The address is returned unmapped and without zone; "unknown" and
// obfuscated identifiers are not addresses (ok false).
func parseNode(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		end := -1
		for i := 1; i < len(b); i++ {
			if b[i] == ']' {
				end = i
				break
			}
		}
		if end < 0 || (end+1 < len(b) && (b[end+1] != ':' || !isPort(b[end+2:]))) {
			return netip.Addr{}, false
		}
		return parseAddr(b[1:end])
	}
	colons, last := 0, -1
	for i, c := range b {
		if c == ':' {
			colons++
			last = i
		}
	}
	if colons == 1 {
		// IPv4 with a port; an IPv6 address has at least two colons.
		if !isPort(b[last+1:]) {
			return netip.Addr{}, false
		}
		a, ok := parseAddr(b[:last])
		if !ok || !a.Is4() {
			return netip.Addr{}, false
		}
		return a, true
	}
	return parseAddr(b)
}

// parseAddr parses an IPv4 or IPv6 address, unmapped and without zone.
func parseAddr(b []byte) (netip.Addr, bool) {
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	if len(b) < 2 || len(b) > 64 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// parseIPv4 parses a dotted-quad IPv4 address as netip.ParseAddr does (no
// leading zeros), without allocating.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	field, digits, val := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || field > 3 {
				return netip.Addr{}, false
			}
			ip[field] = byte(val)
			field++
			digits, val = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits == 1 && val == 0) {
			return netip.Addr{}, false
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return netip.Addr{}, false
		}
	}
	if field != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// isPort reports whether b is a port: 1 to 5 digits up to 65535, or an RFC
// 7239 obfuscated port ("_" and letters, digits, ".", "_", "-").
func isPort(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if b[0] == '_' {
		if len(b) == 1 {
			return false
		}
		for _, c := range b[1:] {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return true
	}
	if len(b) > 5 {
		return false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
