package proxy

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers of RFC 7230 section 6.1 (plus the
// non-standard Proxy-Connection): they describe one connection and must not
// be forwarded. Headers named in a Connection header are dropped too.
var hopHeaders = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// isHopHeader reports whether key is a hop-by-hop header, in any case.
func isHopHeader(key []byte) bool {
	for _, h := range hopHeaders {
		if len(h) == len(key) && equalFoldASCII(key, h) {
			return true
		}
	}
	return false
}

// listedInConnection reports whether key is one of the comma-separated
// tokens of a Connection header value.
func listedInConnection(conn, key []byte) bool {
	for len(conn) > 0 {
		var tok []byte
		if i := bytes.IndexByte(conn, ','); i >= 0 {
			tok, conn = conn[:i], conn[i+1:]
		} else {
			tok, conn = conn, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) == len(key) && equalFoldASCII(tok, key) {
			return true
		}
	}
	return false
}

// equalFoldASCII reports whether a and b are equal under ASCII case folding.
func equalFoldASCII[A, B ~string | ~[]byte](a A, b B) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// stripRequestHopHeaders removes hop-by-hop headers, and those the client
// named in Connection, from h. scratch is reused to hold the Connection
// value while headers are deleted; the grown buffer is returned.
func stripRequestHopHeaders(h *fasthttp.RequestHeader, scratch []byte) []byte {
	if conn := h.Peek(fasthttp.HeaderConnection); len(conn) > 0 {
		scratch = append(scratch[:0], conn...)
		for tok := range bytes.SplitSeq(scratch, []byte(",")) {
			if tok = bytes.TrimSpace(tok); len(tok) > 0 {
				h.DelBytes(tok)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	// The flag fasthttp keeps for "Connection: close" is hop-by-hop too:
	// the backend connection is ours to keep alive.
	h.ResetConnectionClose()
	return scratch
}

// copyResponseHeaders copies the backend's status and end-to-end headers to
// dst. Header names are matched case-insensitively, since the backend
// response is parsed without normalization.
func copyResponseHeaders(dst *fasthttp.ResponseHeader, src *fasthttp.ResponseHeader) {
	dst.SetStatusCode(src.StatusCode())
	var conn []byte
	for k, v := range src.All() {
		if equalFoldASCII(k, fasthttp.HeaderConnection) {
			conn = v
			break
		}
	}
	for k, v := range src.All() {
		if isHopHeader(k) || (len(conn) > 0 && listedInConnection(conn, k)) {
			continue
		}
		// Content-Length is set with the body stream.
		if equalFoldASCII(k, fasthttp.HeaderContentLength) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
}

// appendClientIP appends the textual peer IP of ctx to dst, IPv4-mapped IPv6
// addresses in their IPv4 form.
func appendClientIP(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	addr := clientAddr(ctx)
	if !addr.IsValid() {
		return dst
	}
	return addr.AppendTo(dst)
}

// clientAddr returns the TCP peer address of ctx, unmapped.
func clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}

// setForwardedHeaders sets X-Forwarded-For (the client's list plus the
// peer), X-Forwarded-Proto and X-Forwarded-Host on the upstream request,
// using scratch as working memory; the grown buffer is returned.
func setForwardedHeaders(up *fasthttp.RequestHeader, ctx *fasthttp.RequestCtx, scratch []byte) []byte {
	scratch = scratch[:0]
	for _, prior := range ctx.Request.Header.PeekAll("X-Forwarded-For") {
		scratch = append(scratch, prior...)
		scratch = append(scratch, ", "...)
	}
	scratch = appendClientIP(scratch, ctx)
	// Del first: Set replaces only the first of repeated headers.
	up.Del("X-Forwarded-For")
	up.Del("X-Forwarded-Proto")
	up.Del("X-Forwarded-Host")
	up.SetBytesV("X-Forwarded-For", scratch)
	if ctx.IsTLS() {
		up.Set("X-Forwarded-Proto", "https")
	} else {
		up.Set("X-Forwarded-Proto", "http")
	}
	if host := ctx.Request.Header.Host(); len(host) > 0 {
		up.SetBytesV("X-Forwarded-Host", host)
	}
	return scratch
}
