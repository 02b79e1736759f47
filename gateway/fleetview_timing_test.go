package gateway

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// BenchmarkMergeListings merges three backends' lists of 1,000 models
// each, half of them shared, as a merged /api/tags of a large fleet does.
func BenchmarkMergeListings(b *testing.B) {
	lists := make([][]proxy.ModelEntry, 3)
	for i := range lists {
		raw := make([]json.RawMessage, 1000)
		for j := range raw {
			n := j
			if j%2 == 1 {
				n = i*1000 + j // this backend's own
			}
			raw[j] = json.RawMessage(fmt.Sprintf(`{"name":"model%d:latest","model":"model%d:latest","modified_at":"2025-11-%02dT10:00:00Z","size":2019393189,"digest":"%064d","details":{"format":"gguf","family":"llama"}}`, n, n, 1+n%28, n))
		}
		lists[i] = proxy.ParseModelEntries(raw, "modified_at")
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := mergeListings(lists, nil); len(got) != 2000 {
			b.Fatalf("%d entries; want 2000", len(got))
		}
	}
}
