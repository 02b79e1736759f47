package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// FuzzBackendLine: a backend's progress line that is a JSON object stays
// one, with "backend" first; namespaceOf never panics and never answers
// a name with a "/" in it.
func FuzzBackendLine(f *testing.F) {
	f.Add(`{"status":"pulling manifest"}`, "hf.co/bartowski/x:q4")
	f.Add(`{}`, "llama3.2")
	f.Add(` { "error" : "x" } `, "/m")
	b, err := proxy.NewBackend("http://127.0.0.1:11434/", proxy.BackendOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line, name string) {
		if ns := namespaceOf(name); ns == "" || strings.Contains(ns, "/") {
			t.Fatalf("namespaceOf(%q) = %q", name, ns)
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(line), &obj) != nil {
			return
		}
		out := backendLine(b, []byte(line))
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("backendLine(%q) = %q: %v", line, out, err)
		}
		if string(got["backend"]) != `"http://127.0.0.1:11434/"` && obj["backend"] == nil {
			t.Fatalf("backendLine(%q) = %q: no backend member", line, out)
		}
	})
}
