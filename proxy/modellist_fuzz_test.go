package proxy

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// FuzzBlobRefs feeds the parsers of backend lists and blob references:
// ParseModelEntries never panics and keeps only bounded object entries
// with a name, one per key; blobKey accepts only its canonical digest
// spellings; blobsOf of a create body never panics.
func FuzzBlobRefs(f *testing.F) {
	f.Add([]byte(`{"name":"llama3.2:latest","modified_at":"2025-11-24T10:00:00Z"}`), "sha256:"+string(bytes.Repeat([]byte("a"), 64)))
	f.Add([]byte(`{"files":{"m.gguf":"sha256-`+string(bytes.Repeat([]byte("F"), 64))+`"},"adapters":{"a":"x"}}`), "sha256-")
	f.Add([]byte(`[1,{"name":""},{"name":"\u0041"}]`), "")
	f.Fuzz(func(t *testing.T, raw []byte, digest string) {
		entries := ParseModelEntries([]json.RawMessage{raw, raw}, "modified_at")
		if len(entries) > 1 {
			t.Fatalf("one entry given twice kept %d times", len(entries))
		}
		for _, e := range entries {
			if e.Name == "" || len(e.Raw) > MaxModelEntryBytes || e.Raw[0] != '{' || e.Key != ModelKey(e.Name) {
				t.Fatalf("kept a bad entry %+v", e)
			}
		}
		if key, ok := blobKey([]byte(digest)); ok {
			if k2, ok2 := blobKey(key); !ok2 || !bytes.Equal(k2, key) || len(key) != 71 {
				t.Fatalf("blobKey(%q) = %q, not canonical", digest, key)
			}
		}
		blobsOf(ollamaapi.Lookup([]byte("POST"), []byte("/api/create")), nil, raw, func(string) bool { return true })
	})
}
