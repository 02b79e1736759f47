package proxy

import (
	"bytes"
	"maps"
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
		buf = appendModelKey(buf[:0], []byte(n))
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
	return m.has(appendModelKey(buf[:0], []byte(name)))
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

// Default parts of an Ollama model name (types/model/name.go).
const (
	defaultHost      = "registry.ollama.ai"
	defaultNamespace = "library"
	defaultTag       = "latest"
)

// appendModelKey appends to dst the canonical form of an Ollama model name:
// the name split as Ollama's model.ParseName splits it ([host/]
// [namespace/]model[:tag], an optional scheme:// before the host), with the
// default host, namespace and tag for the parts it lacks, shortened as
// Ollama lists names in /api/tags (Name.DisplayShortest: the host only if
// not the default, the namespace only if the host or the namespace is not
// the default, the tag always), in lower case. So "llama3", "Llama3:latest"
// and "registry.ollama.ai/library/llama3" are all "llama3:latest", and
// "hf.co/bartowski/x:q4" stays "hf.co/bartowski/x:q4".
//
// Ollama finds a model by its file path, which is case-sensitive on Linux
// only; matching without case sends a name that differs only in case to a
// backend that has the model, which answers as it would anyway.
func appendModelKey(dst, name []byte) []byte {
	s := name
	tag := []byte(nil)
	if c := bytes.LastIndexByte(s, ':'); c > bytes.LastIndexByte(s, '/') {
		s, tag = s[:c], s[c+1:]
	}
	model, ns, host := s, []byte(nil), []byte(nil)
	if k := bytes.LastIndexByte(s, '/'); k >= 0 {
		model, ns = s[k+1:], s[:k]
		if k := bytes.LastIndexByte(ns, '/'); k >= 0 {
			ns, host = ns[k+1:], ns[:k]
			if i := bytes.Index(host, []byte("://")); i >= 0 {
				host = host[i+3:]
			}
		}
	}
	if len(host) == 0 {
		host = []byte(defaultHost)
	}
	if len(ns) == 0 {
		ns = []byte(defaultNamespace)
	}
	if len(tag) == 0 {
		tag = []byte(defaultTag)
	}
	if !bytes.EqualFold(host, []byte(defaultHost)) {
		dst = appendLower(dst, host)
		dst = append(dst, '/')
		dst = appendLower(dst, ns)
		dst = append(dst, '/')
	} else if !bytes.EqualFold(ns, []byte(defaultNamespace)) {
		dst = appendLower(dst, ns)
		dst = append(dst, '/')
	}
	dst = appendLower(dst, model)
	dst = append(dst, ':')
	return appendLower(dst, tag)
}

// appendLower appends s to dst with ASCII letters in lower case.
func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
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
