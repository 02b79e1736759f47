package proxy

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/ollamagw/ollama-gateway/jsonfield"
	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// MaxModelEntryBytes is the largest /api/tags entry kept for the merged
// views, in bytes: Ollama's entries are about 500 bytes (name, digest,
// details); a larger one is skipped there (its names still route).
const MaxModelEntryBytes = 16 << 10

// ModelEntry is one entry of a backend's model list, as its GET /api/tags
// listed it. It is immutable.
type ModelEntry struct {
	// Name is the entry's "name", e.g. "llama3.2:latest".
	Name string
	// Key is Name in canonical form (see Models.Has): "llama3" and
	// "library/llama3:latest" have one Key.
	Key string
	// Time is the entry's time, the order Ollama lists entries in (the
	// greatest first): "modified_at" for /api/tags, "expires_at" for
	// /api/ps; zero if missing or invalid.
	Time time.Time
	// Raw is the entry exactly as the backend listed it: a JSON object.
	Raw json.RawMessage
}

// ModelKey returns the canonical form of a model name, the ModelEntry.Key
// of its entries: "llama3", "Llama3:latest" and
// "registry.ollama.ai/library/llama3" are all "llama3:latest".
func ModelKey(name string) string { return string(ollamaapi.AppendModelName(nil, []byte(name))) }

// ParseModelEntries returns the entries of raw (the "models" of an Ollama
// /api/tags or /api/ps answer) that are JSON objects with a "name" of at
// most MaxModelNameLen bytes and at most MaxModelEntryBytes long, one per
// name (the first), at most MaxModels. timeField names the member read
// into Time ("modified_at", "expires_at"). The bytes are copied.
func ParseModelEntries(raw []json.RawMessage, timeField string) []ModelEntry {
	if len(raw) == 0 {
		return nil
	}
	out := make([]ModelEntry, 0, min(len(raw), MaxModels))
	seen := make(map[string]struct{}, min(len(raw), MaxModels))
	for _, r := range raw {
		if len(out) == MaxModels {
			break
		}
		r = bytes.TrimSpace(r)
		if len(r) > MaxModelEntryBytes || len(r) < 2 || r[0] != '{' {
			continue
		}
		name, ok := jsonfield.AppendString(nil, r, "name")
		if !ok || len(name) == 0 || len(name) > MaxModelNameLen {
			continue
		}
		key := string(ollamaapi.AppendModelName(nil, name))
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		e := ModelEntry{Name: string(name), Key: key, Raw: slices.Clone(r)}
		if at, ok := jsonfield.AppendString(nil, r, timeField); ok {
			e.Time, _ = time.Parse(time.RFC3339Nano, string(at))
		}
		out = append(out, e)
	}
	return out
}

// Entries returns the backend's list entries as its /api/tags last listed
// them (see Backend.SetModelList), in its order; nil when only names were
// recorded. The slice and its entries must not be modified.
func (m *Models) Entries() []ModelEntry {
	if m == nil {
		return nil
	}
	return m.entries
}

// SetModelList records the models the backend has, as its GET /api/tags
// lists them: names are every entry's "name" and "model", which route
// requests (see SetModels), and entries the raw list entries, kept for
// the fleet's merged views (bounded: see MaxModels, MaxModelEntryBytes).
// It reports whether either changed; an unchanged list is kept as it was,
// a changed one replaced in one atomic store. It makes Backend a
// health.ModelTarget; safe for concurrent use.
func (b *Backend) SetModelList(names []string, entries []json.RawMessage) (changed bool) {
	m := newModels(names)
	m.entries = ParseModelEntries(entries, "modified_at")
	if old := b.models.Load(); m.equal(old) && sameEntries(m.entries, old.entries) {
		return false
	}
	b.models.Store(m)
	return true
}

// sameEntries reports whether two entry lists hold the same bytes in the
// same order.
func sameEntries(a, b []ModelEntry) bool {
	return slices.EqualFunc(a, b, func(x, y ModelEntry) bool { return bytes.Equal(x.Raw, y.Raw) })
}
