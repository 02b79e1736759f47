package jsonfield

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	gojson "github.com/goccy/go-json"
)

// chatBody returns an /api/chat request body of about size bytes, as a
// client sends it after a long conversation: alternating user and assistant
// messages of prose, code and some non-ASCII text (so with \n, \" and
// \uXXXX escapes), "model" first or last.
func chatBody(size int, modelLast bool) []byte {
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	para := "The sky is blue because molecules in the air scatter short wavelengths " +
		"more than long ones (Rayleigh scattering). At sunset the light crosses " +
		"more atmosphere, so the <b>blues</b> are scattered away — l’été, 空は青い.\n\n" +
		"```go\nfunc main() {\n\tfmt.Println(\"hello, \\\"world\\\"\")\n}\n```\n"
	var msgs []message
	n := 0
	for i := 0; n < size-300; i++ {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		content := fmt.Sprintf("%d: %s", i, strings.Repeat(para, 1+i%5))
		msgs = append(msgs, message{role, content})
		enc, _ := json.Marshal(msgs[len(msgs)-1])
		n += len(enc) + 1
	}
	m, _ := json.Marshal(msgs)
	const model = `"model":"llama3.1:8b"`
	rest := `"messages":` + string(m) + `,"stream":true,"options":{"temperature":0.7,"num_ctx":8192,"stop":["<|eot_id|>"]}`
	if modelLast {
		return []byte("{" + rest + "," + model + "}")
	}
	return []byte("{" + model + "," + rest + "}")
}

// BenchmarkModelField extracts "model" from a 100 KB chat body with this
// package, and with encoding/json and goccy/go-json decoding into
// struct{Model string} as baselines.
func BenchmarkModelField(b *testing.B) {
	for _, pos := range []struct {
		name string
		last bool
	}{{"first", false}, {"last", true}} {
		body := chatBody(100<<10, pos.last)
		b.Run("jsonfield/"+pos.name, func(b *testing.B) {
			dst := make([]byte, 0, 64)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				v, ok := AppendString(dst[:0], body, "model")
				if !ok || string(v) != "llama3.1:8b" {
					b.Fatalf("got %q, %v", v, ok)
				}
			}
		})
		b.Run("encoding-json/"+pos.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var v struct {
					Model string `json:"model"`
				}
				if err := json.Unmarshal(body, &v); err != nil || v.Model != "llama3.1:8b" {
					b.Fatalf("got %q, %v", v.Model, err)
				}
			}
		})
		b.Run("go-json/"+pos.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var v struct {
					Model string `json:"model"`
				}
				if err := gojson.Unmarshal(body, &v); err != nil || v.Model != "llama3.1:8b" {
					b.Fatalf("got %q, %v", v.Model, err)
				}
			}
		})
	}
}

// BenchmarkScanString is the string skipping alone, over long contents
// with and without escapes.
func BenchmarkScanString(b *testing.B) {
	for _, tc := range []struct {
		name string
		s    string
	}{
		{"plain", strings.Repeat("abcdefghijklmnop", 1<<12)},
		{"escapes", strings.Repeat(`abc\ndefghij\"klmnop\u00e9`, 1<<11)},
	} {
		s := []byte(tc.s + `"`)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				if end, _ := scanString(s, 0); end != len(s) {
					b.Fatal(end)
				}
			}
		})
	}
}

func TestChatBody(t *testing.T) {
	for _, last := range []bool{false, true} {
		body := chatBody(100<<10, last)
		if len(body) < 95<<10 || len(body) > 110<<10 {
			t.Errorf("chatBody is %d bytes; want about 100 KiB", len(body))
		}
		if !json.Valid(body) || !bytes.Contains(body, []byte(`\n`)) || !bytes.Contains(body, []byte(`\"`)) {
			t.Error("chatBody is not valid JSON with escapes")
		}
		if v, ok := reference(body, "model"); !ok || v != "llama3.1:8b" {
			t.Errorf("chatBody model = %q, %v", v, ok)
		}
	}
}
