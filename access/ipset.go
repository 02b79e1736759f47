package access

import (
	"fmt"
	"net/netip"
	"slices"
)

// IPSet is an immutable set of IP addresses and CIDR prefixes, IPv4 and
// IPv6. IPv4-mapped IPv6 addresses match their IPv4 form. It is safe for
// concurrent use.
//
// Prefixes are grouped by length; a lookup masks the address once per
// distinct length and probes a map, so its cost grows with the number of
// distinct prefix lengths (a handful in practice), not of entries.
type IPSet struct {
	v4, v6 []prefixGroup
	n      int
}

type prefixGroup struct {
	bits int
	set  map[netip.Prefix]struct{}
}

// NewIPSet parses entries ("10.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32").
func NewIPSet(entries []string) (*IPSet, error) {
	s := &IPSet{}
	for i, e := range entries {
		p, err := parseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %q is not an IP address or CIDR", i, e)
		}
		groups := &s.v6
		if p.Addr().Is4() {
			groups = &s.v4
		}
		j := slices.IndexFunc(*groups, func(g prefixGroup) bool { return g.bits == p.Bits() })
		if j < 0 {
			*groups = append(*groups, prefixGroup{bits: p.Bits(), set: map[netip.Prefix]struct{}{}})
			j = len(*groups) - 1
		}
		(*groups)[j].set[p] = struct{}{}
		s.n++
	}
	return s, nil
}

// parseEntry returns the masked prefix of an address or CIDR entry, with
// IPv4-mapped IPv6 turned into IPv4.
func parseEntry(e string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(e); err == nil {
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(e)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			bits = 0
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return p.Masked(), nil
}

// Contains reports whether a (unmapped first) is in the set.
func (s *IPSet) Contains(a netip.Addr) bool {
	if s == nil || s.n == 0 || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	groups := s.v6
	if a.Is4() {
		groups = s.v4
	}
	for _, g := range groups {
		p, err := a.Prefix(g.bits)
		if err != nil {
			continue
		}
		if _, ok := g.set[p]; ok {
			return true
		}
	}
	return false
}

// Len returns the number of entries.
func (s *IPSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}
