package ollamaapi

import "testing"

// BenchmarkLookup is the lookup of a chat request, of a prefix route and of
// an unknown path.
func BenchmarkLookup(b *testing.B) {
	for _, bc := range []struct{ name, method, path string }{
		{"chat", "POST", "/api/chat"},
		{"model", "GET", "/v1/models/llama3.2"},
		{"unknown", "GET", "/no/such/route"},
	} {
		m, p := []byte(bc.method), []byte(bc.path)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Lookup(m, p) == nil {
					b.Fatal("nil route")
				}
			}
		})
	}
}
