package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// GenerateKey returns a new API key: 32 bytes from crypto/rand encoded as
// base64url without padding, 43 characters of [A-Za-z0-9_-]. It is safe
// for concurrent use.
func GenerateKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("config: generating a key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// DigestEntry returns the "sha256:<64 hex digits>" entry that stands for
// key in APIKeys or AdminKeys: a file holding it accepts key, with the
// same [KeyID], but does not reveal it.
func DigestEntry(key string) string {
	d := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(d[:])
}
