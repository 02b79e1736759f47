package proxy

import "crypto/x509"

// TrustRootsForTest makes b's TLS connections trust roots (a test
// server's certificate) instead of the system's.
func TrustRootsForTest(b *Backend, roots *x509.CertPool) { b.client.TLSConfig.RootCAs = roots }

// Next returns the next available backend in round-robin order. When every
// backend is marked down it still returns one, in round-robin order: a
// health check may be wrong or late, and trying beats refusing (the proxy
// answers 502 if the attempt fails).
func (p *Pool) Next() *Backend {
	b, _ := p.pick(p.next.Add(1) - 1)
	return b
}
