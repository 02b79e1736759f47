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
