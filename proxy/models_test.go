package proxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/types/model"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

func TestAppendModelKey(t *testing.T) {
	tests := []struct{ name, want string }{
		{"llama3", "llama3:latest"},
		{"llama3:latest", "llama3:latest"},
		{"Llama3:8B", "llama3:8b"},
		{"llama3.2:3b-instruct-q4_K_M", "llama3.2:3b-instruct-q4_k_m"},
		{"library/llama3", "llama3:latest"},
		{"registry.ollama.ai/library/llama3:latest", "llama3:latest"},
		{"REGISTRY.OLLAMA.AI/Library/llama3", "llama3:latest"},
		{"https://registry.ollama.ai/library/llama3", "llama3:latest"},
		{"registry.ollama.ai/jmorgan/model", "jmorgan/model:latest"},
		{"jmorgan/model:q8", "jmorgan/model:q8"},
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "hf.co/bartowski/llama-3.2-1b-instruct-gguf:q4_k_m"},
		{"hf.co/bartowski/x", "hf.co/bartowski/x:latest"},
		{"hf.co/library/x", "hf.co/library/x:latest"},
		{"localhost:5000/ns/model", "localhost:5000/ns/model:latest"},
		{"localhost:5000/ns/model:v1", "localhost:5000/ns/model:v1"},
		{"gpt-oss:120b-cloud", "gpt-oss:120b-cloud"},
		{"llama3:", "llama3:latest"}, // invalid for Ollama; any key will do
	}
	for _, tt := range tests {
		if got := string(ollamaapi.AppendModelName(nil, []byte(tt.name))); got != tt.want {
			t.Errorf("AppendModelName(%q) = %q; want %q", tt.name, got, tt.want)
		}
	}
}

// TestAppendModelKeyMatchesOllama checks the key against Ollama's own
// parser: for every valid name, the key is the name as Ollama lists it
// (DisplayShortest), in lower case.
func TestAppendModelKeyMatchesOllama(t *testing.T) {
	hosts := []string{"", "registry.ollama.ai/", "Registry.Ollama.AI/", "hf.co/", "localhost:5000/", "https://example.com/", "http://registry.ollama.ai/"}
	namespaces := []string{"", "library/", "LIBRARY/", "jmorgan/", "my_ns/"}
	models := []string{"llama3", "Llama3.2", "qwen2.5-coder", "_x"}
	tags := []string{"", ":latest", ":LATEST", ":8b", ":q4_K_M", ":v1.2"}
	n := 0
	for _, h := range hosts {
		for _, ns := range namespaces {
			if h != "" && ns == "" {
				continue // host/model means namespace/model
			}
			for _, m := range models {
				for _, tag := range tags {
					name := h + ns + m + tag
					parsed := model.ParseName(name)
					if !parsed.IsValid() {
						continue
					}
					n++
					want := strings.ToLower(parsed.DisplayShortest())
					if got := string(ollamaapi.AppendModelName(nil, []byte(name))); got != want {
						t.Errorf("AppendModelName(%q) = %q; Ollama lists it as %q", name, got, want)
					}
				}
			}
		}
	}
	if n < 300 {
		t.Fatalf("only %d valid names checked", n)
	}
}

func TestModels(t *testing.T) {
	m := newModels([]string{"llama3.2:latest", "qwen2.5:7b", "hf.co/user/Model:Q4", "", strings.Repeat("x", MaxModelNameLen+1)})
	if m.Len() != 3 {
		t.Errorf("Len = %d; want 3 (empty and too long names skipped)", m.Len())
	}
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"llama3.2", true},
		{"llama3.2:latest", true},
		{"LLAMA3.2", true},
		{"library/llama3.2", true},
		{"registry.ollama.ai/library/llama3.2:latest", true},
		{"llama3.2:1b", false},
		{"qwen2.5", false}, // only :7b is there
		{"qwen2.5:7b", true},
		{"hf.co/user/model:q4", true},
		{"user/model:q4", false},
		{"", false},
		{strings.Repeat("x", MaxModelNameLen+1), false},
	} {
		if got := m.Has(tt.name); got != tt.want {
			t.Errorf("Has(%.40q) = %v; want %v", tt.name, got, tt.want)
		}
	}

	many := make([]string, MaxModels+500)
	for i := range many {
		many[i] = fmt.Sprintf("model%d", i)
	}
	m = newModels(many)
	if m.Len() != MaxModels || !m.Has("model0") || m.Has(fmt.Sprintf("model%d", MaxModels)) {
		t.Errorf("%d names: Len = %d, first kept %v, past the cap kept %v; want %d, true, false",
			len(many), m.Len(), m.Has("model0"), m.Has(fmt.Sprintf("model%d", MaxModels)), MaxModels)
	}
}

func TestBackendSetModels(t *testing.T) {
	b, err := NewBackend("http://127.0.0.1:11434", BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Models() != nil {
		t.Fatal("a new backend's models are known")
	}
	if !b.SetModels([]string{"llama3.2:latest", "qwen2.5:7b"}) {
		t.Error("first SetModels reported no change")
	}
	first := b.Models()
	// The same set, listed otherwise: no change, the same pointer.
	if b.SetModels([]string{"qwen2.5:7b", "llama3.2"}) || b.Models() != first {
		t.Error("SetModels of the same set replaced it")
	}
	if !b.SetModels([]string{"llama3.2"}) || b.Models().Has("qwen2.5:7b") {
		t.Error("SetModels of a smaller set did not replace it")
	}
	// An empty list is known: the backend has no model.
	if !b.SetModels(nil) || b.Models() == nil || b.Models().Len() != 0 {
		t.Error("SetModels(nil) did not record an empty list")
	}
	if !b.ForgetModels() || b.Models() != nil || b.ForgetModels() {
		t.Error("ForgetModels did not make the models unknown once")
	}
}

func TestBackendSetModelListEntries(t *testing.T) {
	b, err := NewBackend("http://127.0.0.1:11434", BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw := func(s ...string) []json.RawMessage {
		out := make([]json.RawMessage, len(s))
		for i := range s {
			out[i] = json.RawMessage(s[i])
		}
		return out
	}
	list := raw(
		`{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-11-24T10:00:00.123456789Z","size":1}`,
		`{"name":"Llama3.2","size":2}`, // the same model again: the first is kept
		`[1,2]`,                        // not an object
		`{"model":"x"}`,                // no name
		`{"name":"big","pad":"`+strings.Repeat("x", MaxModelEntryBytes)+`"}`,
		`{"name":"qwen2.5:7b"}`,
	)
	if !b.SetModelList([]string{"llama3.2:latest", "qwen2.5:7b"}, list) {
		t.Fatal("first SetModelList reported no change")
	}
	got := b.Models().Entries()
	want := []struct{ name, key, raw string }{
		{"llama3.2:latest", "llama3.2:latest", string(list[0])},
		{"qwen2.5:7b", "qwen2.5:7b", string(list[5])},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries; want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Name != w.name || got[i].Key != w.key || string(got[i].Raw) != w.raw {
			t.Errorf("entry %d: got %q %q %s; want %q %q %s", i, got[i].Name, got[i].Key, got[i].Raw, w.name, w.key, w.raw)
		}
	}
	if at := got[0].Time; !at.Equal(time.Date(2025, 11, 24, 10, 0, 0, 123456789, time.UTC)) {
		t.Errorf("Time %v; want 2025-11-24T10:00:00.123456789Z", at)
	}
	first := b.Models()
	if b.SetModelList([]string{"llama3.2:latest", "qwen2.5:7b"}, raw(string(list[0]), string(list[5]))) || b.Models() != first {
		t.Error("the same list replaced it")
	}
	// Same names, an entry changed (a model re-pulled): a new list.
	if !b.SetModelList([]string{"llama3.2:latest", "qwen2.5:7b"}, raw(string(list[0]), `{"name":"qwen2.5:7b","size":3}`)) {
		t.Error("a changed entry did not replace the list")
	}
}
