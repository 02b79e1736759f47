package access

import (
	"bytes"
	"net/netip"
)

// ClientIP returns the address to treat as the client's. It is the TCP peer,
// unless the peer is a trusted proxy: then X-Forwarded-For is read right to
// left (xff holds every X-Forwarded-For header value, in order) and the
// first address that is not a trusted proxy is the client. Addresses
// appended by trusted proxies are believed; anything left of the first
// untrusted one could be forged by the client and is ignored. An
// unparsable entry stops the walk at the last address known good.
func ClientIP(peer netip.Addr, xff [][]byte, trusted *IPSet) netip.Addr {
	peer = peer.Unmap()
	if trusted.Len() == 0 || !trusted.Contains(peer) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for len(v) > 0 {
			var item []byte
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				item, v = v[j+1:], v[:j]
			} else {
				item, v = v, nil
			}
			item = bytes.TrimSpace(item)
			if len(item) == 0 {
				continue
			}
			a, err := netip.ParseAddr(string(item))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !trusted.Contains(client) {
				return client
			}
		}
	}
	return client
}
