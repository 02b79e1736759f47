package jsonfield

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// reference is what Ollama sees: an encoding/json Decoder (gin's
// ShouldBindJSON) decoding body into a struct with a string field named
// key. ok is true when the decoding succeeds and a member with a string
// value matched.
func reference(body []byte, key string) (val string, ok bool) {
	// The field name must come from a struct tag: build the two structs
	// for the keys the tests use.
	switch key {
	case "model":
		var v struct {
			Model string `json:"model"`
		}
		var seen struct {
			Model seenString `json:"model"`
		}
		err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
		_ = json.NewDecoder(bytes.NewReader(body)).Decode(&seen)
		return v.Model, err == nil && seen.Model.seen
	case "kind":
		var v struct {
			Kind string `json:"kind"`
		}
		var seen struct {
			Kind seenString `json:"kind"`
		}
		err := json.NewDecoder(bytes.NewReader(body)).Decode(&v)
		_ = json.NewDecoder(bytes.NewReader(body)).Decode(&seen)
		return v.Kind, err == nil && seen.Kind.seen
	}
	panic("reference: no struct for key " + key)
}

// seenString records whether a string value was decoded into it.
type seenString struct{ seen bool }

func (s *seenString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		s.seen = true
	}
	return nil
}

func nested(depth int) string {
	// depth containers in all, the top-level object included.
	return `{"model":"m","x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

var fieldTests = []struct {
	name string
	body string
	key  string // "model" if empty
	want string
	ok   bool
}{
	{"first", `{"model":"llama3","messages":[]}`, "", "llama3", true},
	{"last", `{"messages":[{"role":"user","content":"hi"}],"stream":false,"model":"qwen2.5:7b"}`, "", "qwen2.5:7b", true},
	{"spaces", " \t\r\n{ \"model\" :\n \"llama3\" , \"a\" : 1 }", "", "llama3", true},
	{"empty string", `{"model":""}`, "", "", true},
	{"absent", `{"messages":[]}`, "", "", false},
	{"empty object", `{}`, "", "", false},

	// Names match like encoding/json field names.
	{"upper case", `{"MODEL":"a"}`, "", "a", true},
	{"mixed case", `{"mOdEl":"a"}`, "", "a", true},
	{"escaped name", `{"mod\u0065l":"a"}`, "", "a", true},
	{"escaped upper name", `{"\u004DODEL":"a"}`, "", "a", true},
	{"prefix only", `{"mode":"a"}`, "", "", false},
	{"longer name", `{"models":"a"}`, "", "", false},
	{"name with escape, other", `{"mo\"del":"a"}`, "", "", false},
	{"kelvin sign folds to k", `{"\u212Aind":"a"}`, "kind", "a", true},
	{"kelvin sign raw", "{\"\u212aIND\":\"a\"}", "kind", "a", true},
	{"invalid utf-8 name", "{\"mod\xffl\":\"a\"}", "", "", false},

	// The last match wins; null leaves the earlier value.
	{"duplicate", `{"model":"a","model":"b"}`, "", "b", true},
	{"duplicate other case", `{"model":"a","Model":"b"}`, "", "b", true},
	{"null after", `{"model":"a","model":null}`, "", "a", true},
	{"null only", `{"model":null}`, "", "", false},
	{"number", `{"model":1}`, "", "", false},
	{"string then bool", `{"model":"a","model":true}`, "", "", false},
	{"object", `{"model":{"name":"a"}}`, "", "", false},
	{"array", `{"model":["a"]}`, "", "", false},

	// Only the top level counts.
	{"nested ignored", `{"options":{"model":"x"},"model":"y"}`, "", "y", true},
	{"nested only", `{"messages":[{"model":"x"}]}`, "", "", false},
	{"name in content", `{"messages":[{"content":"{\"model\":\"x\"}"}],"model":"y"}`, "", "y", true},

	// Values are decoded as encoding/json decodes them.
	{"escaped quote", `{"model":"a\"b"}`, "", `a"b`, true},
	{"escaped backslash", `{"model":"a\\"}`, "", `a\`, true},
	{"all escapes", `{"model":"\"\\\/\b\f\n\r\t"}`, "", "\"\\/\b\f\n\r\t", true},
	{"unicode escape", `{"model":"caf\u00e9"}`, "", "café", true},
	{"surrogate pair", `{"model":"\ud83d\ude00"}`, "", "😀", true},
	{"lone high surrogate", `{"model":"\ud83d"}`, "", "\uFFFD", true},
	{"lone low surrogate", `{"model":"\ude00x"}`, "", "\uFFFDx", true},
	{"high then non-low", `{"model":"\ud83d\u0041"}`, "", "\uFFFDA", true},
	{"invalid utf-8", "{\"model\":\"a\xffb\"}", "", "a\uFFFDb", true},
	{"utf-8", `{"model":"模型:latest"}`, "", "模型:latest", true},
	{"encoded surrogate", "{\"model\":\"\xed\xa0\x80\"}", "", "\uFFFD\uFFFD\uFFFD", true},

	// A Decoder reads the first value only.
	{"trailing data", `{"model":"a"} garbage`, "", "a", true},
	{"second object", `{"model":"a"}{"model":"b"}`, "", "a", true},

	// Malformed: nothing.
	{"empty body", ``, "", "", false},
	{"white space", " \n", "", "", false},
	{"truncated", `{"model":"a"`, "", "", false},
	{"truncated string", `{"model":"a`, "", "", false},
	{"truncated later", `{"model":"a","messages":[{"role":"user"`, "", "", false},
	{"missing colon", `{"model" "a"}`, "", "", false},
	{"missing comma", `{"model":"a" "b":1}`, "", "", false},
	{"trailing comma", `{"model":"a",}`, "", "", false},
	{"trailing comma nested", `{"model":"a","x":[1,]}`, "", "", false},
	{"unquoted name", `{model:"a"}`, "", "", false},
	{"single quotes", `{'model':'a'}`, "", "", false},
	{"control byte", "{\"model\":\"a\nb\"}", "", "", false},
	{"control byte elsewhere", "{\"model\":\"a\",\"c\":\"x\ty\"}", "", "", false},
	{"bad escape", `{"model":"a","c":"\x"}`, "", "", false},
	{"bad unicode escape", `{"model":"a","c":"\u12g4"}`, "", "", false},
	{"single quote escape", `{"model":"a","c":"\'"}`, "", "", false},
	{"leading zero", `{"model":"a","n":01}`, "", "", false},
	{"bare minus", `{"model":"a","n":-}`, "", "", false},
	{"no fraction digits", `{"model":"a","n":1.}`, "", "", false},
	{"no exponent digits", `{"model":"a","n":1e+}`, "", "", false},
	{"numbers", `{"model":"a","n":[0,-0,1.5,-2e10,3E-2,4e+1,123456789]}`, "", "a", true},
	{"literals", `{"model":"a","l":[true,false,null]}`, "", "a", true},
	{"bad literal", `{"model":"a","l":tru}`, "", "", false},
	{"literal suffix", `{"model":"a","l":truex}`, "", "", false},
	{"mismatched brackets", `{"model":"a","x":[}`, "", "", false},
	{"mismatched brackets 2", `{"model":"a","x":{]}`, "", "", false},
	{"array top level", `[{"model":"a"}]`, "", "", false},
	{"string top level", `"model"`, "", "", false},
	{"null top level", `null`, "", "", false},
	{"byte order mark", "\xef\xbb\xbf{\"model\":\"a\"}", "", "", false},
	{"max depth", nested(10000), "", "m", true},
	{"too deep", nested(10001), "", "", false},
}

func TestAppendString(t *testing.T) {
	for _, tt := range fieldTests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = "model"
			}
			prefix := []byte("prefix:")
			got, ok := AppendString(prefix, []byte(tt.body), key)
			want := "prefix:"
			if tt.ok {
				want += tt.want
			}
			if ok != tt.ok || string(got) != want {
				t.Errorf("AppendString(%.60q) = %q, %v; want %q, %v", tt.body, got, ok, want, tt.ok)
			}
			// The table agrees with encoding/json.
			if want, ok := reference([]byte(tt.body), key); ok != tt.ok || ok && want != tt.want {
				t.Errorf("encoding/json: %q, %v; the table says %q, %v", want, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAppendStringNoAllocs(t *testing.T) {
	body := chatBody(100<<10, false)
	escaped := []byte(`{"messages":[],"model":"caf\u00e9\ud83d\ude00"}`)
	dst := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := AppendString(dst[:0], body, "model"); !ok {
			t.Fatal("model not found")
		}
		if _, ok := AppendString(dst[:0], escaped, "model"); !ok {
			t.Fatal("escaped model not found")
		}
	})
	if allocs != 0 {
		t.Errorf("AppendString allocates %v times per call; want 0", allocs)
	}
}

func TestBackslashes(t *testing.T) {
	// The lowest flagged byte of a word is the first backslash, whatever
	// the bytes above it are.
	for pos := range 8 {
		for _, fill := range []byte{'a', '"', 0, 0x1f, 0x20, 0x5b, 0x5d, 0x7f, 0x80, 0xdc, 0xff} {
			w := bytes.Repeat([]byte{fill}, 8)
			w[pos] = '\\'
			for k := pos + 1; k < 8; k++ {
				w[k] = []byte{'\\', 0x5d, 0x5b, fill}[k%4]
			}
			if got := lowestFlag(backslashes(word(w))); got != pos {
				t.Errorf("backslashes(% x) flags byte %d first; want %d", w, got, pos)
			}
		}
	}
	for _, w := range []string{"abcdefgh", "\" !#[]~\x7f", "\x80\xff\xdc\x9c\xa0\xe0\xc2\x00"} {
		if m := backslashes(word([]byte(w))); m != 0 {
			t.Errorf("backslashes(%q) = %#x; want 0", w, m)
		}
	}
}

func TestHasControl(t *testing.T) {
	// Every length and position, around every byte value that matters.
	for n := range 70 {
		for pos := -1; pos < n; pos++ {
			for _, c := range []byte{0, 0x1f, 0x20, 0x21, '"', 0x7f, 0x80, 0x9f, 0xa0, 0xff} {
				s := bytes.Repeat([]byte{'a'}, n)
				if pos >= 0 {
					s[pos] = c
				}
				want := pos >= 0 && c < 0x20
				if got := hasControl(s); got != want {
					t.Fatalf("hasControl(%q) = %v; want %v", s, got, want)
				}
			}
		}
	}
}

// word loads 8 bytes as scanString does.
func word(w []byte) uint64 {
	var x uint64
	for k := 7; k >= 0; k-- {
		x = x<<8 | uint64(w[k])
	}
	return x
}

func lowestFlag(m uint64) int {
	for i := range 8 {
		if m&(0xff<<(8*i)) != 0 {
			return i
		}
	}
	return 8
}

// TestScanStringPositions puts a control byte, a backslash escape and the
// closing quote at every position of strings around the 8- and 16-byte
// steps.
func TestScanStringPositions(t *testing.T) {
	for n := range 40 {
		for pos := range n {
			s := []byte(strings.Repeat("a", n) + `"` + "tail")
			s[pos] = 0x1f
			if end, _ := scanString(s, 0); end != -1 {
				t.Errorf("scanString(%q) = %d; want -1 (control byte)", s, end)
			}
			s[pos] = 'a'
			if end, esc := scanString(s, 0); end != n+1 || esc {
				t.Errorf("scanString(%q) = %d, %v; want %d, false", s, end, esc, n+1)
			}
			if pos+1 < n {
				s[pos], s[pos+1] = '\\', '"' // an escaped quote
				if end, esc := scanString(s, 0); end != n+1 || !esc {
					t.Errorf("scanString(%q) = %d, %v; want %d, true", s, end, esc, n+1)
				}
				s[pos+1] = 'x'
				if end, _ := scanString(s, 0); end != -1 {
					t.Errorf("scanString(%q) = %d; want -1 (bad escape)", s, end)
				}
			}
		}
	}
}
