package config

import (
	"fmt"
	"reflect"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/internal/sshkey"
)

// PublicKey is the object form of an apiKeys or adminKeys entry that names
// an Ollama public key instead of a shared secret:
//
//	{"publicKey": "ssh-ed25519 AAAA... alice@laptop", "name": "alice",
//	 "models": ["llama3.2"], "tokens": {"max": 200000, "windowSeconds": 86400}}
//
// It takes the same policy fields as a [KeyEntry] ([KeyPolicy]: name,
// models, rateLimit, tokens, expiresAt), checked the same way.
//
// A client holding the private key (the ollama CLI, or any program using
// github.com/ollama/ollama/api, with OLLAMA_AUTH=1) signs its requests
// with it; no secret crosses the wire. Such entries may be mixed with
// string entries in one list. They are decoded into [Config.APIPublicKeys]
// and [Config.AdminPublicKeys], in file order.
type PublicKey struct {
	// PublicKey is the line of ~/.ollama/id_ed25519.pub:
	// "ssh-ed25519 <base64> [comment]". Required; only ed25519 keys.
	PublicKey string `json:"publicKey"`
	// KeyPolicy is what the key may do, as for a [KeyEntry]. Its fields
	// appear in the entry's JSON object.
	KeyPolicy

	// pos is 1 + the entry's index in its JSON list, 0 for an entry built
	// in Go: field names in errors use it.
	pos int
}

// keyEntry is one element of apiKeys or adminKeys as decoded: a
// [KeyEntry] (a string, or an object with "key" or "sha256") or a
// PublicKey object (one with a "publicKey" member).
type keyEntry struct {
	key KeyEntry
	pub *PublicKey
}

func (e *keyEntry) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' && hasPublicKey(b) {
		e.pub = new(PublicKey)
		return json.Unmarshal(b, e.pub)
	}
	return e.key.UnmarshalJSON(b)
}

// hasPublicKey reports whether the JSON object b has a "publicKey" member
// (in any letter case, as the decoder matches names).
func hasPublicKey(b []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil {
		return false
	}
	return objectHasPublicKey(obj)
}

func objectHasPublicKey[V any](obj map[string]V) bool {
	for k := range obj {
		if strings.EqualFold(k, "publicKey") {
			return true
		}
	}
	return false
}

// configFields is Config without its methods, so that keyLists can embed
// it without recursing into a custom decoder.
type configFields Config

// keyLists decodes a config whose key lists may hold objects: its own
// apiKeys and adminKeys shadow Config's, the decoder fills the rest.
type keyLists struct {
	*configFields
	APIKeys   []keyEntry `json:"apiKeys"`
	AdminKeys []keyEntry `json:"adminKeys"`
	// OllamaAddresses takes strings and objects too (addresses.go).
	OllamaAddresses []addressEntry `json:"ollamaAddresses"`
}

// decodeConfig decodes data onto c, splitting apiKeys and adminKeys into
// their strings and their PublicKey objects.
func decodeConfig(data []byte, c *Config) error {
	w := keyLists{configFields: (*configFields)(c)}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	split := func(list []keyEntry, keys *[]KeyEntry, pubs *[]PublicKey) {
		if list == nil {
			return
		}
		*keys, *pubs = make([]KeyEntry, 0, len(list)), nil
		for i, e := range list {
			if e.pub != nil {
				e.pub.pos = i + 1
				*pubs = append(*pubs, *e.pub)
			} else {
				*keys = append(*keys, e.key)
			}
		}
	}
	split(w.APIKeys, &c.APIKeys, &c.APIPublicKeys)
	split(w.AdminKeys, &c.AdminKeys, &c.AdminPublicKeys)
	return c.setAddresses(w.OllamaAddresses)
}

// checkKeyObjects checks the shape of the publicKey object entries of
// apiKeys and adminKeys in doc, the first decoding pass, and replaces them
// with empty strings there so checkShape takes the lists for lists of
// KeyEntry (which checks the other objects).
func checkKeyObjects(doc any, errs *[]error) {
	top, ok := doc.(map[string]any)
	if !ok {
		return
	}
	for k, v := range top {
		var field string
		switch {
		case strings.EqualFold(k, "apiKeys"):
			field = "apiKeys"
		case strings.EqualFold(k, "adminKeys"):
			field = "adminKeys"
		default:
			continue
		}
		list, _ := v.([]any)
		for i, e := range list {
			if obj, ok := e.(map[string]any); ok && objectHasPublicKey(obj) {
				checkShape(obj, reflect.TypeFor[PublicKey](), fmt.Sprintf("%s[%d]", field, i), errs)
				list[i] = ""
			}
		}
	}
}

// publicKeys checks the PublicKey entries of a key list.
func (v *validator) publicKeys(field string, pubs []PublicKey) {
	for i, k := range pubs {
		if k.pos > 0 {
			i = k.pos - 1
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		if strings.TrimSpace(k.PublicKey) == "" {
			v.add(f+".publicKey", "is required: the line of ~/.ollama/id_ed25519.pub")
		} else if _, _, err := sshkey.ParseLine(k.PublicKey); err != nil {
			v.add(f+".publicKey", err.Error())
		}
		v.keyPolicy(f, k.KeyPolicy)
	}
}

// stringKeyIndex returns the index in its JSON list of the i-th string
// entry of a key list whose object entries are pubs.
func stringKeyIndex(i int, pubs []PublicKey) int {
	p := i
	for _, k := range pubs {
		if k.pos == 0 {
			return i
		}
		if k.pos-1 <= p {
			p++
		}
	}
	return p
}

// Fingerprint returns the SHA-256 digest of the key's SSH wire format (the
// digest `ssh-keygen -l` shows as "SHA256:<base64>"), or zero if the entry
// is not valid. [KeyID] of it is the key's id in logs and listings.
func (k PublicKey) Fingerprint() [32]byte {
	pub, _, err := sshkey.ParseLine(k.PublicKey)
	if err != nil {
		return [32]byte{}
	}
	return sshkey.Fingerprint(pub)
}

// HasKeys reports whether c lists any key, string or public key, in
// apiKeys or adminKeys.
func (c *Config) HasKeys() bool {
	return len(c.APIKeys)+len(c.AdminKeys)+len(c.APIPublicKeys)+len(c.AdminPublicKeys) > 0
}
