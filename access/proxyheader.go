package access

// proxyHeaders are the request headers, lower case, by which a proxy says
// it forwarded a request, besides every X-Forwarded-* header.
var proxyHeaders = [...]string{
	"forwarded",
	"via",
	"x-real-ip",
	"x-client-ip",
	"x-cluster-client-ip",
	"true-client-ip",
	"cf-connecting-ip",
	"fastly-client-ip",
	"x-original-forwarded-for",
}

// IsProxyHeader reports whether a request header name (in any case) is one
// a proxy adds to say it forwarded the request: Forwarded, Via, any
// X-Forwarded-* (X-Forwarded-For, -Host, -Proto, ...), X-Real-IP, and the
// client-address headers of common CDNs and load balancers (X-Client-IP,
// X-Cluster-Client-IP, True-Client-IP, CF-Connecting-IP, Fastly-Client-IP,
// X-Original-Forwarded-For). Its presence, with any value or none,
// disqualifies a loopback peer as a direct local client.
func IsProxyHeader(name []byte) bool {
	const xf = "x-forwarded"
	if len(name) >= len(xf) && equalFoldLower(name[:len(xf)], xf) {
		return true
	}
	for _, h := range proxyHeaders {
		if len(name) == len(h) && equalFoldLower(name, h) {
			return true
		}
	}
	return false
}

// equalFoldLower reports whether b equals the lower-case ASCII lower,
// ignoring the case of b's letters.
func equalFoldLower(b []byte, lower string) bool {
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
