package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// KeyEntry is one entry of APIKeys or AdminKeys. In config.json it is
// either a string, the key itself or "sha256:<64 hex digits>" (the form
// every config before key policies used, still valid), or an object that
// names the key and gives it a policy:
//
//	{"key": "…", "name": "team-a", "models": ["llama3.2", "qwen2.5:*"],
//	 "rateLimit": {"maxRequests": 600, "timeWindowSeconds": 60},
//	 "tokens": {"max": 200000, "windowSeconds": 86400},
//	 "expiresAt": "2027-01-31T00:00:00Z"}
//
// Exactly one credential field (Key or SHA256) is required; every other
// field is optional. Both forms may be mixed in one list (with
// [PublicKey] objects, those with "publicKey", which are decoded into
// Config.APIPublicKeys / AdminPublicKeys). A KeyEntry with nothing but Key
// is written back as a string ([KeyEntry.MarshalJSON]).
type KeyEntry struct {
	// Key is the key itself, printable ASCII without spaces; a value of
	// the form "sha256:<64 hex digits>" is the digest of the key (as in a
	// string entry).
	Key string `json:"key,omitempty"`
	// SHA256 is the SHA-256 digest of the key in 64 hex digits, the object
	// form of a "sha256:" string entry.
	SHA256 string `json:"sha256,omitempty"`
	// KeyPolicy is what the key may do: its name, models, rate, token
	// budget and expiry. Its fields appear in the entry's JSON object.
	KeyPolicy
}

// KeyPolicy is the policy of a key entry, shared by the secret-key form
// ([KeyEntry]) and the public-key form ([PublicKey]) of apiKeys and
// adminKeys entries, and validated by the same code for both. The zero
// value imposes nothing.
type KeyPolicy struct {
	// Name is a label for the key, shown in logs, usage and metrics
	// instead of the key id; at most 64 characters of [A-Za-z0-9._-].
	// Optional; names need not be unique but should be.
	Name string `json:"name,omitempty"`
	// Models, when not empty, are the only models the key may name, as
	// Ollama resolves names ("llama3.2" is "llama3.2:latest", letter case
	// ignored); a tag of "*" ("qwen2.5:*") allows every tag of the model.
	// The key's model listings show only these. Empty: every model.
	Models []string `json:"models,omitempty"`
	// RateLimit is the key's own request rate. It applies whether or not
	// the global rateLimit.enabled is set, and before rateLimit.perKey.
	RateLimit *RateOverride `json:"rateLimit,omitempty"`
	// Tokens is the key's token budget per window (prompt + completion).
	Tokens *TokenBudget `json:"tokens,omitempty"`
	// ExpiresAt is when the key stops being accepted (401 "key expired"),
	// an RFC 3339 time such as "2027-01-31T00:00:00Z". Empty: never.
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// TokenBudget is a key's token allowance: at most Max tokens (prompt and
// completion together) per window of WindowSeconds.
type TokenBudget struct {
	// Max is the number of tokens per window; > 0.
	Max int64 `json:"max"`
	// WindowSeconds is the length of the window in seconds; > 0, at most
	// one year.
	WindowSeconds int `json:"windowSeconds"`
}

// Window returns WindowSeconds as a Duration.
func (t TokenBudget) Window() time.Duration {
	return durationOf(int64(t.WindowSeconds), time.Second)
}

// Keys returns string entries for keys: a shorthand for code and tests.
func Keys(keys ...string) []KeyEntry {
	out := make([]KeyEntry, len(keys))
	for i, k := range keys {
		out[i] = KeyEntry{Key: k}
	}
	return out
}

// Credential returns the entry's key in the form of a string entry: Key,
// or "sha256:<hex>" for an entry given by SHA256; "" for an entry with no
// credential.
func (e KeyEntry) Credential() string {
	if e.Key == "" && e.SHA256 != "" {
		return "sha256:" + e.SHA256
	}
	return e.Key
}

// Digest returns the SHA-256 digest of the entry's key ([KeyDigest] of
// its [KeyEntry.Credential]). The entry must be valid.
func (e KeyEntry) Digest() [32]byte { return KeyDigest(e.Credential()) }

// ID returns the public id of the entry's key ([KeyID] of its Digest).
func (e KeyEntry) ID() string { return KeyID(e.Digest()) }

// HasPolicy reports whether the policy sets any field: for an entry,
// whether it has any field beyond its key.
func (p KeyPolicy) HasPolicy() bool {
	return p.Name != "" || len(p.Models) > 0 || p.RateLimit != nil || p.Tokens != nil || p.ExpiresAt != ""
}

// Expiry returns ExpiresAt as a time, and false when the key does not
// expire (or ExpiresAt does not parse, which Validate reports).
func (p KeyPolicy) Expiry() (time.Time, bool) {
	if p.ExpiresAt == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, p.ExpiresAt)
	return t, err == nil
}

// UnmarshalJSON reads a string entry or an object entry. Unknown members
// of an object are an error, as everywhere in the config.
func (e *KeyEntry) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*e = KeyEntry{Key: s}
		return nil
	}
	type plain KeyEntry // without this method
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*e = KeyEntry(p)
	return nil
}

// MarshalJSON writes an entry holding nothing but Key as a string, any
// other as an object.
func (e KeyEntry) MarshalJSON() ([]byte, error) {
	if e.SHA256 == "" && !e.HasPolicy() {
		return json.Marshal(e.Key)
	}
	type plain KeyEntry
	return json.Marshal(plain(e))
}

// ValidateKeyEntry checks one entry on its own and returns its problems
// joined, each a [*FieldError] whose Field is relative to the entry
// ("models[0]", "tokens.max"; "" for the entry as a whole). Config.Validate
// runs it on every entry, prefixing the entry's path. No message holds a
// key.
func ValidateKeyEntry(e KeyEntry) error {
	var v validator
	v.keyEntry("", e)
	return errors.Join(v.errs...)
}

// keyEntry checks entry e at path field.
func (v *validator) keyEntry(field string, e KeyEntry) {
	sub := func(name string) string { return joinPath(field, name) }
	creds := 0
	for _, s := range []string{e.Key, e.SHA256} {
		if s != "" {
			creds++
		}
	}
	switch {
	case creds == 0 && !e.HasPolicy():
		v.add(field, "must not be empty")
	case creds == 0:
		v.add(field, `needs "key", "sha256" or "publicKey"`)
	case creds > 1:
		v.add(field, `give one of "key", "sha256", not both`)
	case e.SHA256 != "":
		if !isHex64(e.SHA256) {
			v.add(sub("sha256"), "needs 64 hex digits")
		}
	default:
		f := field
		if e.HasPolicy() {
			f = sub("key")
		}
		v.secret(f, e.Key)
	}
	v.keyPolicy(field, e.KeyPolicy)
}

// keyPolicy checks the policy fields p of the entry at path field: the
// same checks for key, sha256 and publicKey entries.
func (v *validator) keyPolicy(field string, e KeyPolicy) {
	sub := func(name string) string { return joinPath(field, name) }
	if e.Name != "" && !validKeyName(e.Name) {
		v.add(sub("name"), "must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	for i, m := range e.Models {
		if err := checkModelPattern(m); err != "" {
			v.add(fmt.Sprintf("%s[%d]", sub("models"), i), err)
		}
	}
	if r := e.RateLimit; r != nil {
		f := sub("rateLimit")
		if r.MaxRequests <= 0 {
			v.add(f+".maxRequests", "must be > 0")
		}
		if r.TimeWindowSeconds <= 0 {
			v.add(f+".timeWindowSeconds", "must be > 0")
		}
		v.maxDuration(f+".timeWindowSeconds", r.TimeWindowSeconds, time.Second)
	}
	if t := e.Tokens; t != nil {
		f := sub("tokens")
		if t.Max <= 0 {
			v.add(f+".max", "must be > 0")
		}
		if t.WindowSeconds <= 0 {
			v.add(f+".windowSeconds", "must be > 0")
		}
		v.maxDuration(f+".windowSeconds", t.WindowSeconds, time.Second)
	}
	if e.ExpiresAt != "" {
		if _, err := time.Parse(time.RFC3339, e.ExpiresAt); err != nil {
			v.add(sub("expiresAt"), fmt.Sprintf("%q is not an RFC 3339 time like 2027-01-31T00:00:00Z", e.ExpiresAt))
		}
	}
}

// secret checks a key given in the clear or as "sha256:<hex>". Messages
// never quote it.
func (v *validator) secret(field, k string) {
	for j := 0; j < len(k); j++ {
		if k[j] < 0x21 || k[j] > 0x7e {
			v.add(field, "must be printable ASCII without spaces or control characters")
			return
		}
	}
	if digest, ok := strings.CutPrefix(k, "sha256:"); ok && !isHex64(digest) {
		v.add(field, "sha256 form needs 64 hex digits")
	}
}

// MaxModelPatternLen is the longest model name or pattern a key's Models
// may hold.
const MaxModelPatternLen = 256

// checkModelPattern returns what is wrong with a Models entry, "" if
// nothing.
func checkModelPattern(m string) string {
	switch {
	case m == "":
		return "must not be empty"
	case len(m) > MaxModelPatternLen:
		return fmt.Sprintf("must be at most %d bytes", MaxModelPatternLen)
	}
	for i := 0; i < len(m); i++ {
		if m[i] <= ' ' || m[i] == 0x7f || m[i] == '"' || m[i] == '\\' {
			return fmt.Sprintf("%q must not contain spaces, quotes or control characters", m)
		}
	}
	star := strings.IndexByte(m, '*')
	if star >= 0 && (!strings.HasSuffix(m, ":*") || star != len(m)-1 || len(m) < 3 || strings.HasSuffix(m, "/:*")) {
		return fmt.Sprintf(`%q: "*" may only stand for the whole tag, as in "qwen2.5:*"`, m)
	}
	return ""
}

// validKeyName reports whether s may be a key's Name: it becomes a metric
// label value and a log field.
func validKeyName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Credentials returns the [KeyEntry.Credential] of each entry, in order.
func Credentials(entries []KeyEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Credential()
	}
	return out
}
