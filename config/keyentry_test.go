package config

import (
	"slices"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

func TestKeyEntriesMixed(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	in := withAddr(`"apiKeys": ["plain-key-0123456789", "sha256:` + digest + `",
		{"key": "team-a-key-0123456789", "name": "team-a", "models": ["llama3.2", "qwen2.5:*"],
		 "rateLimit": {"maxRequests": 600, "timeWindowSeconds": 60},
		 "tokens": {"max": 200000, "windowSeconds": 86400}, "expiresAt": "2027-01-31T00:00:00Z"},
		{"sha256": "` + digest[:62] + `cd", "name": "digest-only"}],
		"adminKeys": [{"key": "admin-key-0123456789", "name": "ops"}]`)
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := len(c.APIKeys), 4; got != want {
		t.Fatalf("len(APIKeys) = %d; want %d", got, want)
	}
	want := []KeyEntry{
		{Key: "plain-key-0123456789"},
		{Key: "sha256:" + digest},
		{Key: "team-a-key-0123456789", KeyPolicy: KeyPolicy{Name: "team-a", Models: []string{"llama3.2", "qwen2.5:*"},
			RateLimit: &RateOverride{600, 60}, Tokens: &TokenBudget{200000, 86400}, ExpiresAt: "2027-01-31T00:00:00Z"}},
		{SHA256: digest[:62] + "cd", KeyPolicy: KeyPolicy{Name: "digest-only"}},
	}
	for i, w := range want {
		g, _ := json.Marshal(c.APIKeys[i])
		ws, _ := json.Marshal(w)
		if string(g) != string(ws) {
			t.Errorf("apiKeys[%d] = %s; want %s", i, g, ws)
		}
	}
	if got, want := c.APIKeys[1].Digest(), KeyDigest("sha256:"+digest); got != want {
		t.Errorf("digest of a sha256 string entry differs from KeyDigest")
	}
	if got, want := c.APIKeys[3].Credential(), "sha256:"+digest[:62]+"cd"; got != want {
		t.Errorf("Credential() = %q; want %q", got, want)
	}
	if exp, ok := c.APIKeys[2].Expiry(); !ok || exp.Year() != 2027 {
		t.Errorf("Expiry() = %v, %v; want 2027-01-31, true", exp, ok)
	}
	if c.AdminKeys[0].Name != "ops" {
		t.Errorf("adminKeys[0].name = %q; want ops", c.AdminKeys[0].Name)
	}
	// A plain entry writes back as a string; one with a policy as an object.
	if b, _ := json.Marshal(c.APIKeys[0]); string(b) != `"plain-key-0123456789"` {
		t.Errorf("Marshal(plain entry) = %s; want a string", b)
	}
}

func TestKeyEntryErrors(t *testing.T) {
	hex := strings.Repeat("0a", 32)
	tests := []struct {
		name, keys string
		want       []string
	}{
		{"tokens max", `"apiKeys": ["a-key", "b-key", "c-key", {"key": "d-key", "tokens": {"max": 0, "windowSeconds": 60}}]`,
			[]string{"apiKeys[3].tokens.max: must be > 0"}},
		{"tokens window", `"apiKeys": [{"key": "d-key", "tokens": {"max": 5}}]`,
			[]string{"apiKeys[0].tokens.windowSeconds: must be > 0"}},
		{"tokens window too long", `"apiKeys": [{"key": "d-key", "tokens": {"max": 5, "windowSeconds": 31536001}}]`,
			[]string{"apiKeys[0].tokens.windowSeconds: must be at most 31536000 (one year)"}},
		{"rate", `"apiKeys": [{"key": "d-key", "rateLimit": {"maxRequests": -1, "timeWindowSeconds": 0}}]`,
			[]string{"apiKeys[0].rateLimit.maxRequests: must be > 0", "apiKeys[0].rateLimit.timeWindowSeconds: must be > 0"}},
		{"no credential", `"apiKeys": [{"name": "x"}]`, []string{`apiKeys[0]: needs "key", "sha256" or "publicKey"`}},
		{"empty object", `"apiKeys": [{}]`, []string{`apiKeys[0]: must not be empty`}},
		{"two credentials", `"apiKeys": [{"key": "k", "sha256": "` + hex + `"}]`,
			[]string{`apiKeys[0]: give one of "key", "sha256", not both`}},
		{"bad sha256", `"adminKeys": [{"sha256": "abc"}]`, []string{"adminKeys[0].sha256: needs 64 hex digits"}},
		{"bad key", `"apiKeys": [{"key": "a b", "name": "n"}]`,
			[]string{"apiKeys[0].key: must be printable ASCII without spaces or control characters"}},
		{"bad name", `"apiKeys": [{"key": "k", "name": "team a"}]`,
			[]string{"apiKeys[0].name: must be 1 to 64 characters of A-Z a-z 0-9 . _ -"}},
		{"bad model", `"apiKeys": [{"key": "k", "models": ["llama3.2", "", "qw*n:7b"]}]`,
			[]string{"apiKeys[0].models[1]: must not be empty",
				`apiKeys[0].models[2]: "qw*n:7b": "*" may only stand for the whole tag, as in "qwen2.5:*"`}},
		{"bad expiry", `"apiKeys": [{"key": "k", "expiresAt": "tomorrow"}]`,
			[]string{`apiKeys[0].expiresAt: "tomorrow" is not an RFC 3339 time like 2027-01-31T00:00:00Z`}},
		{"index after a public key", `"apiKeys": [{"publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS bob"}, "k", {"key": "k2", "tokens": {"max": -1, "windowSeconds": 1}}]`,
			[]string{"apiKeys[2].tokens.max: must be > 0"}},
		{"unknown member", `"apiKeys": [{"key": "k", "modles": []}]`, []string{"apiKeys[0].modles: unknown field"}},
		{"wrong type", `"apiKeys": [{"key": "k", "models": "llama3.2"}]`,
			[]string{"apiKeys[0].models: expected an array of strings, got string"}},
		{"two policies for a key", `"apiKeys": [{"key": "k", "name": "a"}], "adminKeys": [{"key": "k", "name": "b"}]`,
			[]string{"adminKeys[0]: same key as apiKeys[0], which has a policy too: give it once"}},
		{"model management", `"security": {"modelManagement": "everyone"}`,
			[]string{`security.modelManagement: "everyone" must be "admin" or "any"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(withAddr(tt.keys)))
			if got := problems(err); !slices.Equal(got, tt.want) {
				t.Errorf("Parse error:\n got %q\nwant %q", got, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "d-key") {
				t.Errorf("error %q shows a key", err)
			}
		})
	}
}

func TestKeyEntryValidOnes(t *testing.T) {
	for _, keys := range []string{
		// The same key as a string and with a policy: the policy is its.
		`"apiKeys": ["k", {"key": "k", "name": "a"}], "adminKeys": ["k"]`,
		`"apiKeys": [{"key": "k", "models": ["hf.co/org/m:*", "Llama3.2:Latest", "library/x"]}]`,
		`"security": {"modelManagement": "any"}`,
		`"security": {"modelManagement": "admin"}`,
	} {
		if _, err := Parse([]byte(withAddr(keys))); err != nil {
			t.Errorf("Parse(%s): %v; want nil", keys, err)
		}
	}
}

func TestValidateKeyEntry(t *testing.T) {
	err := ValidateKeyEntry(KeyEntry{Key: "k", KeyPolicy: KeyPolicy{Tokens: &TokenBudget{Max: 0, WindowSeconds: 1}}})
	if got, want := problems(err), []string{"tokens.max: must be > 0"}; !slices.Equal(got, want) {
		t.Errorf("ValidateKeyEntry = %q; want %q", got, want)
	}
}

// FuzzKeyEntry feeds the key-entry parser: it never panics, and an entry
// that parses and validates survives a round trip through MarshalJSON.
func FuzzKeyEntry(f *testing.F) {
	for _, s := range []string{
		`"k"`, `"sha256:` + strings.Repeat("0", 64) + `"`, `{}`, `null`, `5`, `[]`,
		`{"key":"k","name":"a","models":["llama3.2","qwen2.5:*"],"rateLimit":{"maxRequests":1,"timeWindowSeconds":1},` +
			`"tokens":{"max":1,"windowSeconds":1},"expiresAt":"2027-01-31T00:00:00Z"}`,
		`{"sha256":"` + strings.Repeat("f", 64) + `","tokens":{"max":-1}}`,
		`{"key":"k","rateLimit":null,"tokens":{"max":1e3}}`, `{"publicKey":"ssh-ed25519 AAAA x"}`, `{"publicKey":"x","key":"k"}`,
		`{"key":"k","key":"j"}`, `{"KEY":"k","Models":["*"]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		c, err := Parse([]byte(withAddr(`"apiKeys": [` + entry + `]`)))
		if err != nil {
			if strings.Contains(err.Error(), "panic") {
				t.Fatalf("error mentions a panic: %v", err)
			}
			return
		}
		if len(c.APIKeys) != 1 {
			return // e.g. `"a","b"`
		}
		e := c.APIKeys[0]
		if ValidateKeyEntry(e) != nil {
			t.Fatalf("entry %+v parsed but does not validate alone", e)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", e, err)
		}
		c2, err := Parse([]byte(withAddr(`"apiKeys": [` + string(b) + `]`)))
		if err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if c2.APIKeys[0].Digest() != e.Digest() {
			t.Fatalf("round trip of %s changed the key", b)
		}
	})
}
