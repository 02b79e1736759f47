package ollamaapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestAppendStreamUsage(t *testing.T) {
	tests := []struct {
		name, body, want string // want "": unchanged
	}{
		{"no stream_options", `{"model":"m","stream":true}`, `{"stream_options":{"include_usage":true},"model":"m","stream":true}`},
		{"spaces kept", ` { "stream" : true }`, ` {"stream_options":{"include_usage":true}, "stream" : true }`},
		{"null", `{"stream":true,"stream_options":null}`, `{"stream":true,"stream_options":{"include_usage":true}}`},
		{"empty object", `{"stream":true,"stream_options":{ }}`, `{"stream":true,"stream_options":{"include_usage":true }}`},
		{"other option", `{"stream":true,"stream_options":{"x":1}}`, `{"stream":true,"stream_options":{"include_usage":true,"x":1}}`},
		{"include_usage false", `{"stream":true,"stream_options":{"include_usage": false,"x":1}}`, `{"stream":true,"stream_options":{"include_usage": true,"x":1}}`},
		{"include_usage null", `{"stream":true,"stream_options":{"include_usage":null}}`, `{"stream":true,"stream_options":{"include_usage":true}}`},
		{"asks already", `{"stream":true,"stream_options":{"include_usage":true}}`, ""},
		{"not streamed", `{"model":"m","stream":false}`, ""},
		{"stream unset", `{"model":"m"}`, ""},
		{"stream not a bool", `{"stream":"true"}`, ""},
		{"options not an object", `{"stream":true,"stream_options":[]}`, ""},
		{"not JSON", `{"stream":true,`, ""},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		dst := []byte("x")
		got, ok := AppendStreamUsage(dst, []byte(tt.body))
		switch {
		case tt.want == "" && (ok || string(got) != "x"):
			t.Errorf("%s: AppendStreamUsage(%s) = %s, %v; want it unchanged", tt.name, tt.body, got, ok)
		case tt.want != "" && (!ok || string(got) != "x"+tt.want):
			t.Errorf("%s: AppendStreamUsage(%s) = %s, %v; want x%s", tt.name, tt.body, got, ok, tt.want)
		}
	}
	body := []byte(`{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf, _ = AppendStreamUsage(buf[:0], body) }); n != 0 {
		t.Errorf("allocs = %v; want 0", n)
	}
}

// FuzzAppendStreamUsage: a body changed is valid JSON when the input was,
// asks for the usage, and has every other member as it was.
func FuzzAppendStreamUsage(f *testing.F) {
	f.Add([]byte(`{"model":"m","stream":true,"stream_options":{"x":[1,{}]}}`))
	f.Add([]byte(`{"stream":true,"stream_options":null,"stream_options":{}}`))
	f.Add([]byte(`{"stream":true,"stream_options":{"include_usage":false,"include_usage":null}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, ok := AppendStreamUsage(nil, in)
		if !ok {
			if out != nil {
				t.Fatalf("unchanged but %q appended", out)
			}
			return
		}
		var before, after map[string]any
		if json.Unmarshal(in, &before) != nil {
			return // encoding/json is stricter than a first value
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("AppendStreamUsage(%q) = %q: %v", in, out, err)
		}
		// As the backend (Go) decodes it: names matched without case.
		var req struct {
			Stream        bool `json:"stream"`
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if json.Unmarshal(out, &req) != nil || !req.Stream || req.StreamOptions == nil || !req.StreamOptions.IncludeUsage {
			t.Fatalf("AppendStreamUsage(%q) = %q: does not ask for the usage", in, out)
		}
		for _, m := range []map[string]any{before, after} {
			for k := range m {
				if strings.EqualFold(k, "stream_options") {
					delete(m, k)
				}
			}
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("AppendStreamUsage(%q) = %q: other members changed", in, out)
		}
	})
}
