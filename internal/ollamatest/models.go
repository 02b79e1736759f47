package ollamatest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// modifiedAt is the fixed modification time of every model.
var modifiedAt = time.Date(2025, time.November, 24, 10, 0, 0, 123456789, time.UTC)

// modelInfo is one model the fake serves.
type modelInfo struct {
	name     string // as listed, always with a tag: "llama3.2:latest"
	key      string // canonicalName(name)
	digest   string // hex, deterministic
	family   string
	modified time.Time
}

func newModelInfo(name string) modelInfo {
	listed := name
	if !hasTag(listed) {
		listed += ":latest"
	}
	sum := sha256.Sum256([]byte(listed))
	return modelInfo{
		name:     listed,
		key:      canonicalName(listed),
		digest:   hex.EncodeToString(sum[:]),
		family:   familyOf(listed),
		modified: modifiedAt,
	}
}

// hasTag reports whether a model name has a ":tag" after its last path
// element separator (a host may carry a port).
func hasTag(name string) bool {
	return strings.Contains(name[strings.LastIndexByte(name, '/')+1:], ":")
}

// canonicalName reduces a model name the way Ollama matches names: case
// folded, default host and namespace dropped, ":latest" implied.
func canonicalName(name string) string {
	n := strings.ToLower(name)
	n = strings.TrimPrefix(n, "registry.ollama.ai/")
	n = strings.TrimPrefix(n, "library/")
	if !hasTag(n) {
		n += ":latest"
	}
	return n
}

// familyOf guesses a family from a model name: its leading letters
// ("llama3.2" → "llama"), "llama" when there are none.
func familyOf(name string) string {
	base := name[strings.LastIndexByte(name, '/')+1:]
	end := strings.IndexFunc(base, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	})
	if end < 0 {
		end = len(base)
	}
	if end == 0 {
		return "llama"
	}
	return strings.ToLower(base[:end])
}

// modelList returns the models served now. The slice is never modified:
// a pull replaces it.
func (s *Server) modelList() []modelInfo {
	s.modelsMu.RLock()
	defer s.modelsMu.RUnlock()
	return s.models
}

// addModel makes name served, first in the list as the most recently
// modified, unless it is served already.
func (s *Server) addModel(name string) {
	m := newModelInfo(name)
	m.modified = time.Now().UTC()
	s.modelsMu.Lock()
	defer s.modelsMu.Unlock()
	for _, have := range s.models {
		if have.key == m.key {
			return
		}
	}
	s.models = append([]modelInfo{m}, s.models...)
}

// findModel returns the served model a request names.
func (s *Server) findModel(name string) (modelInfo, bool) {
	if name == "" {
		return modelInfo{}, false
	}
	key := canonicalName(name)
	for _, m := range s.modelList() {
		if m.key == key {
			return m, true
		}
	}
	return modelInfo{}, false
}

func (m modelInfo) details() modelDetails {
	return modelDetails{
		Format:            "gguf",
		Family:            m.family,
		Families:          []string{m.family},
		ParameterSize:     "3.2B",
		QuantizationLevel: "Q4_K_M",
	}
}

// size is the model file size reported by /api/tags and /api/ps.
const modelSize = 2019393189
