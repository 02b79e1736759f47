package access

import (
	"bytes"
	"strings"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// ModelSet is a key's model allowlist: names and name patterns matched as
// Ollama resolves names ("llama3.2" is "llama3.2:latest" and
// "registry.ollama.ai/library/llama3.2:latest", letter case ignored); a
// pattern whose tag is "*" ("qwen2.5:*") matches every tag of its model.
// A nil *ModelSet allows every model. It is immutable and safe for
// concurrent use.
type ModelSet struct {
	names map[string]struct{} // canonical names
	tags  []string            // canonical "<model>:" of the ":*" patterns
}

// maxModelName is the longest model name a ModelSet ever allows; a
// longer name is no Ollama model. Canonical names are built in a stack
// buffer of about this size.
const maxModelName = 512

// NewModelSet returns the set of patterns (as config validates them), nil
// when there are none: every model is allowed.
func NewModelSet(patterns []string) *ModelSet {
	if len(patterns) == 0 {
		return nil
	}
	s := &ModelSet{names: make(map[string]struct{}, len(patterns))}
	for _, p := range patterns {
		if base, ok := strings.CutSuffix(p, ":*"); ok {
			// Canonicalise with a placeholder tag, then drop it.
			c := ollamaapi.AppendModelName(nil, []byte(base+":x"))
			s.tags = append(s.tags, string(c[:len(c)-1]))
			continue
		}
		s.names[string(ollamaapi.AppendModelName(nil, []byte(p)))] = struct{}{}
	}
	return s
}

// Allows reports whether the model name is in the set; a nil set allows
// every name. It does not allocate.
func (s *ModelSet) Allows(name []byte) bool {
	if s == nil {
		return true
	}
	if len(name) == 0 || len(name) > maxModelName {
		return false
	}
	var buf [maxModelName + 64]byte
	c := ollamaapi.AppendModelName(buf[:0], name)
	if _, ok := s.names[string(c)]; ok {
		return true
	}
	for _, t := range s.tags {
		if bytes.HasPrefix(c, []byte(t)) {
			return true
		}
	}
	return false
}

// AllowsName is Allows for a string: the keep-filter of a model listing
// (func(name string) bool).
func (s *ModelSet) AllowsName(name string) bool {
	if s == nil {
		return true
	}
	if len(name) > maxModelName {
		return false
	}
	var buf [maxModelName]byte
	return s.Allows(append(buf[:0], name...))
}
