package proxy

import (
	"maps"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Bounds on a backend's model list (see Backend.SetModels).
const (
	// MaxModels is the most models kept per backend; later names are
	// dropped.
	MaxModels = 1000
	// MaxModelNameLen is the longest model name kept, in bytes. Ollama's
	// longest valid name (host, namespace, model and tag at their limits)
	// is 593 bytes.
	MaxModelNameLen = 1024
)

// Models is an immutable set of the models one backend has, compared by
// canonical name (see Has). It is safe for concurrent use.
type Models struct {
	keys    map[string]struct{}
	entries []ModelEntry // the raw /api/tags entries; see modellist.go
}

// newModels returns the set of names, keeping at most MaxModels distinct
// names of at most MaxModelNameLen bytes.
func newModels(names []string) *Models {
	m := &Models{keys: make(map[string]struct{}, min(len(names), MaxModels))}
	var buf []byte
	for _, n := range names {
		if len(m.keys) == MaxModels {
			break
		}
		if n == "" || len(n) > MaxModelNameLen {
			continue
		}
		buf = ollamaapi.AppendModelName(buf[:0], []byte(n))
		m.keys[string(buf)] = struct{}{}
	}
	return m
}

// Has reports whether the set holds the model name, compared as Ollama
// resolves names: "llama3", "llama3:latest", "library/llama3" and
// "registry.ollama.ai/library/llama3:latest" are one model, and case does
// not matter.
func (m *Models) Has(name string) bool {
	if len(name) > MaxModelNameLen {
		return false
	}
	var buf [64]byte
	return m.has(ollamaapi.AppendModelName(buf[:0], []byte(name)))
}

// has reports whether the set holds the canonical name key.
func (m *Models) has(key []byte) bool {
	_, ok := m.keys[string(key)]
	return ok
}

// Len returns the number of models in the set.
func (m *Models) Len() int { return len(m.keys) }

func (m *Models) equal(o *Models) bool {
	return m != nil && o != nil && maps.Equal(m.keys, o.keys)
}

// SetModels records the models the backend has, by name, for model-aware
// routing, without list entries: SetModelList(names, nil). At most
// MaxModels names are kept (the first ones), and names longer than
// MaxModelNameLen bytes are skipped. It reports whether the set changed;
// an unchanged set is kept as it was. Safe for concurrent use.
func (b *Backend) SetModels(names []string) (changed bool) {
	return b.SetModelList(names, nil)
}

// ForgetModels makes the backend's models unknown again, as before the
// first SetModels, and reports whether they were known. Safe for concurrent
// use.
func (b *Backend) ForgetModels() (changed bool) {
	return b.models.Swap(nil) != nil
}

// Models returns the backend's models as last recorded, or nil when they
// are unknown: never fetched, or forgotten after failed fetches. A backend
// with unknown models may have any model. The set is immutable; it is one
// atomic load.
func (b *Backend) Models() *Models { return b.models.Load() }
