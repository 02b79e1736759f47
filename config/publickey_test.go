package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/internal/sshkey"
)

// testPublicKeyLine returns the id_ed25519.pub line of a key made from a
// fixed seed byte.
func testPublicKeyLine(seed byte) string {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	if seed != 0 {
		s := make([]byte, ed25519.SeedSize)
		s[0] = seed
		priv = ed25519.NewKeyFromSeed(s)
	}
	wire := sshkey.AppendWire(nil, priv.Public().(ed25519.PublicKey))
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(wire) + " alice@laptop"
}

func TestParsePublicKeyEntries(t *testing.T) {
	alice, bob := testPublicKeyLine(1), testPublicKeyLine(2)
	c, err := Parse([]byte(withAddr(`"apiKeys": ["k1", {"publicKey": "` + alice + `", "name": "alice"}, "k2"],` +
		`"ADMINKEYS": [{"PublicKey": "` + bob + `"}]`)))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	if want := Keys("k1", "k2"); !reflect.DeepEqual(c.APIKeys, want) {
		t.Errorf("APIKeys = %+v; want %+v", c.APIKeys, want)
	}
	if len(c.AdminKeys) != 0 {
		t.Errorf("AdminKeys = %+v; want none", c.AdminKeys)
	}
	if len(c.APIPublicKeys) != 1 || c.APIPublicKeys[0].PublicKey != alice || c.APIPublicKeys[0].Name != "alice" {
		t.Errorf("APIPublicKeys = %+v; want alice's", c.APIPublicKeys)
	}
	if len(c.AdminPublicKeys) != 1 || c.AdminPublicKeys[0].PublicKey != bob {
		t.Errorf("AdminPublicKeys = %+v; want bob's", c.AdminPublicKeys)
	}
}

func TestParsePublicKeyPolicy(t *testing.T) {
	alice := testPublicKeyLine(1)
	c, err := Parse([]byte(withAddr(`"apiKeys": ["k1", {"publicKey": "` + alice + `", "name": "alice",` +
		`"models": ["llama3.2", "qwen2.5:*"], "rateLimit": {"maxRequests": 600, "timeWindowSeconds": 60},` +
		`"tokens": {"max": 200000, "windowSeconds": 86400}, "expiresAt": "2027-01-31T00:00:00Z"}]`)))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	want := []PublicKey{{PublicKey: alice, pos: 2, KeyPolicy: KeyPolicy{Name: "alice", Models: []string{"llama3.2", "qwen2.5:*"},
		RateLimit: &RateOverride{600, 60}, Tokens: &TokenBudget{200000, 86400}, ExpiresAt: "2027-01-31T00:00:00Z"}}}
	if !reflect.DeepEqual(c.APIPublicKeys, want) {
		t.Errorf("APIPublicKeys = %+v; want %+v", c.APIPublicKeys, want)
	}
	if exp, ok := c.APIPublicKeys[0].Expiry(); !ok || exp.Year() != 2027 {
		t.Errorf("Expiry = %v, %v; want 2027", exp, ok)
	}
}

func TestPublicKeyEntryErrors(t *testing.T) {
	alice := testPublicKeyLine(1)
	rsa := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 bob@host"
	tests := []struct {
		name, fields string
		want         []string
	}{
		{"unknown field", `"apiKeys": ["k", {"publicKey": "` + alice + `", "key": "x"}]`,
			[]string{"apiKeys[1].key: unknown field"}},
		{"wrong type", `"adminKeys": [{"publicKey": 7}]`,
			[]string{"adminKeys[0].publicKey: expected a string, got number"}},
		{"missing", `"apiKeys": [{"name": "alice"}]`,
			[]string{`apiKeys[0]: needs "key", "sha256" or "publicKey"`}},
		{"not ed25519", `"apiKeys": ["k", "", {"publicKey": "` + rsa + `"}]`,
			[]string{"apiKeys[1]: must not be empty", "apiKeys[2].publicKey: " + sshkey.ErrNotEd25519.Error()}},
		// The string after an object keeps its own index.
		{"index after an object", `"apiKeys": [{"publicKey": "` + alice + `"}, "k", "a b"]`,
			[]string{"apiKeys[2]: must be printable ASCII without spaces or control characters"}},
		{"name", `"apiKeys": [{"publicKey": "` + alice + `", "name": "a\u0007"}]`,
			[]string{"apiKeys[0].name: must be 1 to 64 characters of A-Z a-z 0-9 . _ -"}},
		{"name too long", `"apiKeys": [{"publicKey": "` + alice + `", "name": "` + strings.Repeat("n", 65) + `"}]`,
			[]string{"apiKeys[0].name: must be 1 to 64 characters of A-Z a-z 0-9 . _ -"}},
		// The policy fields are checked as a key entry's, at the entry's
		// index in the file.
		{"policy", `"apiKeys": ["k", {"publicKey": "` + alice + `", "models": ["a b", "ok"],` +
			`"rateLimit": {"maxRequests": 0, "timeWindowSeconds": 60}, "tokens": {"max": 0, "windowSeconds": 0},` +
			`"expiresAt": "tomorrow"}]`,
			[]string{`apiKeys[1].models[0]: "a b" must not contain spaces, quotes or control characters`,
				"apiKeys[1].rateLimit.maxRequests: must be > 0",
				"apiKeys[1].tokens.max: must be > 0", "apiKeys[1].tokens.windowSeconds: must be > 0",
				`apiKeys[1].expiresAt: "tomorrow" is not an RFC 3339 time like 2027-01-31T00:00:00Z`}},
		{"policy type", `"adminKeys": ["k", "k2", {"publicKey": "` + alice + `", "tokens": {"max": "lots"}}]`,
			[]string{"adminKeys[2].tokens.max: expected a number, got string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(withAddr(tt.fields)))
			if c != nil {
				t.Fatalf("Parse succeeded; want errors %q", tt.want)
			}
			if got := problems(err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestStringKeyIndex(t *testing.T) {
	// [obj, "a", obj, "b", "c"]
	pubs := []PublicKey{{pos: 1}, {pos: 3}}
	for i, want := range []int{1, 3, 4} {
		if got := stringKeyIndex(i, pubs); got != want {
			t.Errorf("stringKeyIndex(%d) = %d; want %d", i, got, want)
		}
	}
	if got := stringKeyIndex(2, []PublicKey{{}}); got != 2 {
		t.Errorf("stringKeyIndex without positions = %d; want 2", got)
	}
}

func TestPublicKeyFingerprintAndHasKeys(t *testing.T) {
	c, err := Parse([]byte(withAddr(`"adminKeys": [{"publicKey": "` + testPublicKeyLine(3) + `"}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasKeys() {
		t.Errorf("HasKeys() = false with an admin public key")
	}
	pub, _, _ := sshkey.ParseLine(testPublicKeyLine(3))
	if got, want := c.AdminPublicKeys[0].Fingerprint(), sshkey.Fingerprint(pub); got != want {
		t.Errorf("Fingerprint() = %x; want %x", got, want)
	}
	if got := (PublicKey{PublicKey: "ssh-rsa x"}).Fingerprint(); got != [32]byte{} {
		t.Errorf("Fingerprint() of an invalid entry = %x; want zero", got)
	}
	if d := Default(); d.HasKeys() {
		t.Errorf("Default().HasKeys() = true")
	}
}
