package config

import (
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 43 {
			t.Errorf("GenerateKey() = %q: %d characters; want 43", k, len(k))
		}
		if strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("GenerateKey() = %q: not base64url without padding", k)
		}
		if seen[k] {
			t.Errorf("GenerateKey() repeated %q", k)
		}
		seen[k] = true
	}
}

// TestDigestEntry: the sha256: entry stands for the key: same digest and
// id, a valid apiKeys entry, and the key itself is not in it.
func TestDigestEntry(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e := DigestEntry(key)
	if KeyDigest(e) != KeyDigest(key) || KeyID(KeyDigest(e)) != KeyID(KeyDigest(key)) {
		t.Errorf("DigestEntry(%q) = %q: not the same digest", key, e)
	}
	if len(e) != len("sha256:")+64 || strings.Contains(e, key) {
		t.Errorf("DigestEntry = %q; want sha256:<64 hex digits>", e)
	}
	if _, err := Parse([]byte(`{"ollamaAddresses":["http://a"],"apiKeys":["` + e + `"]}`)); err != nil {
		t.Errorf("config with DigestEntry: %v", err)
	}
}
