package proxy

import "crypto/x509"

// TrustRootsForTest makes b's TLS connections trust roots (a test
// server's certificate) instead of the system's.
func TrustRootsForTest(b *Backend, roots *x509.CertPool) { b.client.TLSConfig.RootCAs = roots }
