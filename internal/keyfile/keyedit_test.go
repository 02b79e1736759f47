package keyfile

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
)

const addr = `"ollamaAddresses": ["http://localhost:11434"]`

func TestInsertAPIKey(t *testing.T) {
	tests := []struct {
		name, in, key, want string
	}{
		{
			name: "multi-line, 2 spaces",
			in:   "{\n  " + addr + ",\n  \"apiKeys\": [\n    \"k1\",\n    \"k2\"\n  ],\n  \"logging\": true\n}\n",
			key:  "NEW",
			want: "{\n  " + addr + ",\n  \"apiKeys\": [\n    \"k1\",\n    \"k2\",\n    \"NEW\"\n  ],\n  \"logging\": true\n}\n",
		},
		{
			name: "multi-line, 4 spaces, one element",
			in:   "{\n    " + addr + ",\n    \"apiKeys\": [\n        \"k1\"\n    ]\n}\n",
			key:  "NEW",
			want: "{\n    " + addr + ",\n    \"apiKeys\": [\n        \"k1\",\n        \"NEW\"\n    ]\n}\n",
		},
		{
			name: "multi-line, tabs",
			in:   "{\n\t" + addr + ",\n\t\"apiKeys\": [\n\t\t\"k1\"\n\t]\n}",
			key:  "NEW",
			want: "{\n\t" + addr + ",\n\t\"apiKeys\": [\n\t\t\"k1\",\n\t\t\"NEW\"\n\t]\n}",
		},
		{
			name: "multi-line, no indentation (the seed's style)",
			in:   "{\n" + addr + ",\n\"apiKeys\": [\n\"k1\"\n]\n}\n",
			key:  "NEW",
			want: "{\n" + addr + ",\n\"apiKeys\": [\n\"k1\",\n\"NEW\"\n]\n}\n",
		},
		{
			name: "CRLF line breaks",
			in:   "{\r\n  " + addr + ",\r\n  \"apiKeys\": [\r\n    \"k1\"\r\n  ]\r\n}\r\n",
			key:  "NEW",
			want: "{\r\n  " + addr + ",\r\n  \"apiKeys\": [\r\n    \"k1\",\r\n    \"NEW\"\r\n  ]\r\n}\r\n",
		},
		{
			name: "comma-first separators are repeated",
			in:   "{" + addr + "\n, \"apiKeys\": [ \"k1\"\n           , \"k2\"\n           ]\n}",
			key:  "NEW",
			want: "{" + addr + "\n, \"apiKeys\": [ \"k1\"\n           , \"k2\"\n           , \"NEW\"\n           ]\n}",
		},
		{
			name: "one-line array",
			in:   `{` + addr + `, "apiKeys": ["a"], "logging": false}`,
			key:  "new",
			want: `{` + addr + `, "apiKeys": ["a", "new"], "logging": false}`,
		},
		{
			name: "compact one-line array of two",
			in:   `{"ollamaAddresses":["http://a"],"apiKeys":["a","b"]}`,
			key:  "new",
			want: `{"ollamaAddresses":["http://a"],"apiKeys":["a","b","new"]}`,
		},
		{
			name: "spaced one-line array",
			in:   `{` + addr + `, "apiKeys": [ "a" ]}`,
			key:  "new",
			want: `{` + addr + `, "apiKeys": [ "a", "new" ]}`,
		},
		{
			name: "empty array",
			in:   `{` + addr + `, "apiKeys": []}`,
			key:  "new",
			want: `{` + addr + `, "apiKeys": ["new"]}`,
		},
		{
			name: "empty array with a space",
			in:   `{` + addr + `, "apiKeys": [ ]}`,
			key:  "new",
			want: `{` + addr + `, "apiKeys": ["new"]}`,
		},
		{
			name: "multi-line empty array",
			in:   "{\n  " + addr + ",\n  \"apiKeys\": [\n  ],\n  \"logging\": true\n}\n",
			key:  "new",
			want: "{\n  " + addr + ",\n  \"apiKeys\": [\n    \"new\"\n  ],\n  \"logging\": true\n}\n",
		},
		{
			name: "null",
			in:   "{\n  " + addr + ",\n  \"apiKeys\": null\n}\n",
			key:  "new",
			want: "{\n  " + addr + ",\n  \"apiKeys\": [\"new\"]\n}\n",
		},
		{
			name: "missing, multi-line object",
			in:   "{\n  " + addr + ",\n  \"logging\": true\n}\n",
			key:  "new",
			want: "{\n  \"apiKeys\": [\"new\"],\n  " + addr + ",\n  \"logging\": true\n}\n",
		},
		{
			name: "missing, multi-line object of one member",
			in:   "{\n\t" + addr + "\n}\n",
			key:  "new",
			want: "{\n\t\"apiKeys\": [\"new\"],\n\t" + addr + "\n}\n",
		},
		{
			name: "missing, one-line object",
			in:   `{` + addr + `, "logging": true}`,
			key:  "new",
			want: `{"apiKeys": ["new"], ` + addr + `, "logging": true}`,
		},
		{
			name: "missing, compact object",
			in:   `{"ollamaAddresses":["http://a"]}`,
			key:  "new",
			want: `{"apiKeys":["new"],"ollamaAddresses":["http://a"]}`,
		},
		{
			name: "case variant keeps its name",
			in:   `{` + addr + `, "ApiKeys": ["a"]}`,
			key:  "new",
			want: `{` + addr + `, "ApiKeys": ["a", "new"]}`,
		},
		{
			name: "escaped member name",
			in:   `{` + addr + `, "api\u004beys": ["a"]}`,
			key:  "new",
			want: `{` + addr + `, "api\u004beys": ["a", "new"]}`,
		},
		{
			name: "the last of several members is edited: the decoder keeps it",
			in:   `{` + addr + `, "apiKeys": ["a"], "APIKEYS": ["b"]}`,
			key:  "new",
			want: `{` + addr + `, "apiKeys": ["a"], "APIKEYS": ["b", "new"]}`,
		},
		{
			name: "quote and backslash are escaped",
			in:   `{` + addr + `, "apiKeys": []}`,
			key:  `a"b\c`,
			want: `{` + addr + `, "apiKeys": ["a\"b\\c"]}`,
		},
		{
			name: "HTML characters are not escaped",
			in:   `{` + addr + `, "apiKeys": []}`,
			key:  `<&>`,
			want: `{` + addr + `, "apiKeys": ["<&>"]}`,
		},
		{
			name: "look-alikes inside strings and nested objects are not the member",
			in:   `{"gatewayAddress": "\"apiKeys\": [\"x\"]", "metrics": {"apiKeys": []}, ` + addr + `}`,
			key:  "new",
			want: `{"apiKeys": ["new"], "gatewayAddress": "\"apiKeys\": [\"x\"]", "metrics": {"apiKeys": []}, ` + addr + `}`,
		},
		{
			name: "byte order mark and trailing white space are kept",
			in:   "\xef\xbb\xbf{" + addr + `, "apiKeys": ["a"]}` + "\n\n",
			key:  "new",
			want: "\xef\xbb\xbf{" + addr + `, "apiKeys": ["a", "new"]}` + "\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := insertAPIKey([]byte(tt.in), tt.key)
			if err != nil {
				t.Fatalf("insertAPIKey error: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("insertAPIKey(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestInsertAPIKeyResultLoads(t *testing.T) {
	// The documents above that are configs load with the key appended.
	in := "{\n  " + addr + ",\n  \"apiKeys\": [\n    \"k1\"\n  ]\n}\n"
	out, err := insertAPIKey([]byte(in), `a"b\c`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(out)
	if err != nil {
		t.Fatalf("config.Parse(edited) error: %v\n%s", err, out)
	}
	if want := []string{"k1", `a"b\c`}; !slices.Equal(config.Credentials(c.APIKeys), want) {
		t.Errorf("APIKeys = %q; want %q", config.Credentials(c.APIKeys), want)
	}
}

func TestInsertAPIKeyErrors(t *testing.T) {
	for _, in := range []string{
		``,
		`[]`,
		`{`,
		`{"apiKeys": "a"}`,
		`{"apiKeys": {}}`,
		`{"apiKeys": ["a",]}`,
		`{"a": 1} {}`,
		`{"a": "unterminated}`,
		`{"a` + "\x01" + `": 1}`,
		`{"a": nul}`,
		`{"a": ` + strings.Repeat("[", maxEditDepth+1) + strings.Repeat("]", maxEditDepth+1) + `}`,
	} {
		if out, err := insertAPIKey([]byte(in), "k"); err == nil {
			t.Errorf("insertAPIKey(%.40q) = %q; want an error", in, out)
		}
	}
}

func TestRemoveKeyID(t *testing.T) {
	id := func(k string) string { return config.KeyID(config.KeyDigest(k)) }
	digest := config.DigestEntry("k2")
	tests := []struct {
		name, in, key, want string
		n                   int
	}{
		{
			name: "middle of a multi-line array",
			in:   "{\n  \"apiKeys\": [\n    \"k1\",\n    \"k2\",\n    \"k3\"\n  ]\n}\n",
			key:  "k2", n: 1,
			want: "{\n  \"apiKeys\": [\n    \"k1\",\n    \"k3\"\n  ]\n}\n",
		},
		{
			name: "first",
			in:   `{"apiKeys": ["k2", "k1", "k3"]}`,
			key:  "k2", n: 1,
			want: `{"apiKeys": ["k1", "k3"]}`,
		},
		{
			name: "last",
			in:   "{\n  \"apiKeys\": [\n    \"k1\",\n    \"k2\"\n  ]\n}",
			key:  "k2", n: 1,
			want: "{\n  \"apiKeys\": [\n    \"k1\"\n  ]\n}",
		},
		{
			name: "the only one",
			in:   "{\n  \"apiKeys\": [\n    \"k2\"\n  ],\n  \"x\": 1\n}",
			key:  "k2", n: 1,
			want: "{\n  \"apiKeys\": [],\n  \"x\": 1\n}",
		},
		{
			name: "every occurrence, digest form, both lists, every member",
			in:   `{"apiKeys": ["k2","k1","` + digest + `"], "adminKeys": ["k2"], "APIKEYS": ["k1", "k2"]}`,
			key:  "k2", n: 4,
			want: `{"apiKeys": ["k1"], "adminKeys": [], "APIKEYS": ["k1"]}`,
		},
		{
			name: "perKey entries naming only the removed key go too",
			in: `{"apiKeys": ["k1", "k2"], "rateLimit": {"perKey": {` +
				`"` + id("k2") + `": {"maxRequests": 1, "timeWindowSeconds": 1}, ` +
				`"` + id("k1") + `": {"maxRequests": 2, "timeWindowSeconds": 1}, ` +
				`"` + strings.ToUpper(digest) + `": {"maxRequests": 3, "timeWindowSeconds": 1}, ` +
				`"k2": {"maxRequests": 4, "timeWindowSeconds": 1}}}}`,
			key: "k2", n: 1,
			want: `{"apiKeys": ["k1"], "rateLimit": {"perKey": {` +
				`"` + id("k1") + `": {"maxRequests": 2, "timeWindowSeconds": 1}}}}`,
		},
		{
			name: "none",
			in:   `{"apiKeys": ["k1"]}`,
			key:  "k2", n: 0,
			want: `{"apiKeys": ["k1"]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := removeKeyID([]byte(tt.in), id(tt.key))
			if err != nil {
				t.Fatalf("removeKeyID error: %v", err)
			}
			if string(got) != tt.want || n != tt.n {
				t.Errorf("removeKeyID(%q)\n got %q, %d\nwant %q, %d", tt.in, got, n, tt.want, tt.n)
			}
		})
	}
}

// fuzzSeeds are config documents for the fuzz tests of the edits.
func fuzzSeeds(f *testing.F) [][]byte {
	seed, err := os.ReadFile("../../config/testdata/seed.json")
	if err != nil {
		f.Fatal(err)
	}
	docs := [][]byte{seed}
	for _, s := range []string{
		`{"ollamaAddresses":["http://a"]}`,
		"{\n  \"ollamaAddresses\": [\"http://a\"],\n  \"apiKeys\": [\n  ]\n}\n",
		`{"ollamaAddresses":["http://a"],"apiKeys":null}`,
		`{"ollamaAddresses":["http://a"],"apiKeys":["a"],"APIKEYS":["b"],"apiKeys":null}`,
		`{"ollamaAddresses":["http://a"],"apiKeys":["a"],"api\u212aeys":["b"], "adminKeys": ["c"]}`,
		"\xef\xbb\xbf{\"ollamaAddresses\":[\"http://a\"], \"apiKeys\": [\"a\" , \"b\"]}\r\n",
		`{"ollamaAddresses":["http://a"],"apiKeys":["a","b"],"rateLimit":{"perKey":{"a":{"maxRequests":1,"timeWindowSeconds":1}}}}`,
		`{"ollamaAddresses":["http://a"],"apiKeys":["` + config.DigestEntry("x") + `"],"rateLimit":{"perKey":{"` + config.KeyID(config.KeyDigest("x")) + `":{"maxRequests":1,"timeWindowSeconds":1}},"perkey":{}}}`,
		`{"ollamaAddresses":["http://a"],"apiKeys":["a",{"key":"b","name":"n","models":["m"]},{"sha256":"` +
			strings.Repeat("0", 64) + `"}],"adminKeys":[{"key":"a","tokens":{"max":1,"windowSeconds":1}}]}`,
	} {
		docs = append(docs, []byte(s))
	}
	return docs
}

// FuzzAddKey checks the edit of AddKey: on any document Parse accepts, it
// fails, or its result parses to the same config with the key appended to
// APIKeys (when that config is valid).
func FuzzAddKey(f *testing.F) {
	for _, d := range fuzzSeeds(f) {
		f.Add(d, "ahP7DieD7rNpTUa6No--iJpOaXY3TDK8dIjKg0cp-hI")
		f.Add(d, `a"b\c`)
	}
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		old, err := config.Parse(data)
		if err != nil {
			return
		}
		out, err := insertAPIKey(data, key)
		if err != nil {
			return
		}
		want := *old
		want.APIKeys = append(slices.Clone(old.APIKeys), config.KeyEntry{Key: key})
		if want.Validate() != nil {
			// An invalid key: the result must not load.
			if _, err := config.Parse(out); err == nil {
				t.Fatalf("edit with invalid key %q loads:\n%s", key, out)
			}
			return
		}
		got, err := config.Parse(out)
		if err != nil {
			t.Fatalf("edited document does not parse: %v\n in %q\nout %q", err, data, out)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("edited document\n got %+v\nwant %+v\n in %q\nout %q", *got, want, data, out)
		}
	})
}

// FuzzRemoveKey checks the edit of RemoveKey: on any document Parse
// accepts, it fails or leaves the config without the key's entries and
// otherwise unchanged, but for perKey entries of the key.
func FuzzRemoveKey(f *testing.F) {
	for _, d := range fuzzSeeds(f) {
		for _, k := range []string{"a", "b", "x", "ahP7DieD7rNpTUa6No--iJpOaXY3TDK8dIjKg0cp-hI"} {
			f.Add(d, config.KeyID(config.KeyDigest(k)))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, id string) {
		old, err := config.Parse(data)
		if err != nil {
			return
		}
		out, n, err := removeKeyID(data, id)
		if err != nil {
			return
		}
		other := func(k string) bool { return config.KeyID(config.KeyDigest(k)) != id }
		want := *old
		mine := func(k config.KeyEntry) bool { return !other(k.Credential()) }
		want.APIKeys = slices.DeleteFunc(slices.Clone(old.APIKeys), mine)
		want.AdminKeys = slices.DeleteFunc(slices.Clone(old.AdminKeys), mine)
		if gone := len(old.APIKeys) + len(old.AdminKeys) - len(want.APIKeys) - len(want.AdminKeys); n < gone {
			t.Fatalf("removed %d entries; the config had %d", n, gone)
		}
		got, err := config.Parse(out)
		if err != nil {
			t.Fatalf("edited document does not parse: %v\n in %q\nout %q", err, data, out)
		}
		// perKey may lose entries, and only those that named the key.
		for name, r := range old.RateLimit.PerKey {
			if gr, ok := got.RateLimit.PerKey[name]; ok {
				if gr != r {
					t.Fatalf("perKey[%q] = %v; want %v", name, gr, r)
				}
			} else if other(name) && strings.ToLower(name) != id && other(strings.ToLower(name)) {
				t.Fatalf("perKey[%q] removed but names another key", name)
			}
		}
		if old.RateLimit.PerKey != nil {
			want.RateLimit.PerKey = maps.Clone(got.RateLimit.PerKey)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("edited document\n got %+v\nwant %+v\n in %q\nout %q", *got, want, data, out)
		}
	})
}
