package proxy

import (
	"hash/maphash"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Inventory: what a backend has loaded in memory, as its GET /api/ps last
// listed it (Backend.SetLoaded, called by the health checker), plus the
// models the gateway sent it a request for since that list was fetched:
// those count as loaded (or loading) until the next list says otherwise,
// so that a burst for a cold model does not load it on every backend.

// LoadedModel is one entry of a backend's /api/ps list.
type LoadedModel struct {
	// Name is the entry's "name" (else its "model") as listed.
	Name string
	// Key is Name in canonical form (see Models.Has): "llama3" and
	// "library/llama3:latest" are both "llama3:latest".
	Key string
	// ExpiresAt is when the backend unloads the model unless it is used
	// again; zero if not listed.
	ExpiresAt time.Time
	// SizeVRAM is the model's size in GPU memory, in bytes.
	SizeVRAM int64
	// Raw is the entry exactly as the backend sent it, for a merged
	// /api/ps in Ollama's own shape. It must not be modified.
	Raw json.RawMessage
}

// LoadedModels is an immutable snapshot of a backend's /api/ps list. It is
// safe for concurrent use.
type LoadedModels struct {
	entries []LoadedModel
	keys    map[string]struct{}
	hashes  []uint64 // keyHash of each distinct key
	fetched int64    // unix nanoseconds the fetch began
}

// Has reports whether the list holds the model name, compared as
// Models.Has compares.
func (l *LoadedModels) Has(name string) bool {
	if l == nil || len(name) > MaxModelNameLen {
		return false
	}
	var buf [64]byte
	return l.has(ollamaapi.AppendModelName(buf[:0], []byte(name)))
}

func (l *LoadedModels) has(key []byte) bool {
	_, ok := l.keys[string(key)]
	return ok
}

// hasHash reports whether the list holds the model of hash h.
func (l *LoadedModels) hasHash(h uint64) bool {
	for _, o := range l.hashes {
		if o == h {
			return true
		}
	}
	return false
}

// Entries returns the list's entries in the backend's order. The slice
// and its entries must not be modified.
func (l *LoadedModels) Entries() []LoadedModel {
	if l == nil {
		return nil
	}
	return l.entries
}

// Len returns the number of models loaded.
func (l *LoadedModels) Len() int {
	if l == nil {
		return 0
	}
	return len(l.entries)
}

// FetchedAt returns when the fetch of the list began.
func (l *LoadedModels) FetchedAt() time.Time {
	if l == nil {
		return time.Time{}
	}
	return time.Unix(0, l.fetched)
}

// SetLoaded records the backend's /api/ps entries (each one JSON object of
// its "models" array), whose fetch began at fetched. Entries that are not
// objects naming a model are skipped; at most MaxModels are kept. The
// models the gateway sent requests for before fetched stop counting as
// loaded unless the list has them. It makes Backend a health.LoadedTarget;
// safe for concurrent use.
func (b *Backend) SetLoaded(entries []json.RawMessage, fetched time.Time) {
	l := &LoadedModels{
		entries: make([]LoadedModel, 0, min(len(entries), MaxModels)),
		keys:    make(map[string]struct{}, min(len(entries), MaxModels)),
		fetched: fetched.UnixNano(),
	}
	var buf []byte
	for _, raw := range entries {
		if len(l.entries) == MaxModels {
			break
		}
		var e struct {
			Name      string    `json:"name"`
			Model     string    `json:"model"`
			ExpiresAt time.Time `json:"expires_at"`
			SizeVRAM  int64     `json:"size_vram"`
		}
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		name := e.Name
		if name == "" {
			name = e.Model
		}
		if name == "" || len(name) > MaxModelNameLen {
			continue
		}
		buf = ollamaapi.AppendModelName(buf[:0], []byte(name))
		key := string(buf)
		if _, dup := l.keys[key]; !dup {
			l.hashes = append(l.hashes, keyHash(buf))
		}
		l.keys[key] = struct{}{}
		l.entries = append(l.entries, LoadedModel{Name: name, Key: key, ExpiresAt: e.ExpiresAt,
			SizeVRAM: e.SizeVRAM, Raw: append(json.RawMessage(nil), raw...)})
	}
	b.loaded.Store(l)
}

// ForgetLoaded makes the backend's loaded models unknown again, as before
// the first SetLoaded. Safe for concurrent use.
func (b *Backend) ForgetLoaded() { b.loaded.Store(nil) }

// Loaded returns the backend's /api/ps list as last recorded, or nil when
// it is unknown. It does not include the models the gateway just sent a
// request for (see IsLoaded). One atomic load.
func (b *Backend) Loaded() *LoadedModels { return b.loaded.Load() }

// IsLoaded reports whether the backend has the model name loaded, or
// loading: listed by its last /api/ps, or sent a request by the gateway
// since that list was fetched (or still in flight there).
func (b *Backend) IsLoaded(name string) bool {
	if len(name) > MaxModelNameLen {
		return false
	}
	var buf [64]byte
	key := ollamaapi.AppendModelName(buf[:0], []byte(name))
	return b.isLoaded(key, keyHash(key))
}

// keySeed hashes canonical model names for the per-backend tables below.
// Backends outlive pools (a reload keeps them), so it is the package's.
var keySeed = maphash.MakeSeed()

// keyHash returns the hash of a canonical model name, never 0 (the empty
// slot).
func keyHash(key []byte) uint64 {
	return maphash.Bytes(keySeed, key) | 1
}

// sentSlots is how many models per backend the gateway remembers having
// sent requests for since the last /api/ps; more models in that interval
// are not remembered (they are still found by the next /api/ps).
const sentSlots = 8

// sentModel is one model the gateway sent a request for: its key's hash,
// when it was last sent (unix nanoseconds), and how many of its requests
// are in flight on the backend. All atomics: the table is lock-free.
type sentModel struct {
	hash     atomic.Uint64
	at       atomic.Int64
	inFlight atomic.Int64
	loading  atomic.Int64 // unix nanoseconds a load of it began there; 0: none known
}

// isLoaded reports whether the model key (of hash h) is loaded or loading
// on b. It does not allocate.
func (b *Backend) isLoaded(key []byte, h uint64) bool {
	l := b.loaded.Load()
	var fetched int64
	if l != nil {
		if l.has(key) {
			return true
		}
		fetched = l.fetched
	}
	for i := range b.sent {
		s := &b.sent[i]
		if s.hash.Load() == h && (s.inFlight.Load() > 0 || s.at.Load() >= fetched) {
			return true
		}
	}
	return false
}

// loadedCount returns how many models b holds loaded, as last listed plus
// those sent since that are not on the list.
func (b *Backend) loadedCount() int {
	n, _ := b.resident()
	return n
}

// resident returns how many models b holds loaded or loading, as last
// listed plus those sent a request since that are not on the list, and
// whether one of them is idle: no request of the gateway's in flight.
func (b *Backend) resident() (n int, idle bool) {
	l := b.loaded.Load()
	var fetched int64
	if l != nil {
		fetched = l.fetched
		for _, h := range l.hashes {
			n++
			idle = idle || b.modelInFlight(h) == 0
		}
	}
	for i := range b.sent {
		s := &b.sent[i]
		h := s.hash.Load()
		in := s.inFlight.Load()
		if h == 0 || h == sentClaiming || (in == 0 && s.at.Load() < fetched) || (l != nil && l.hasHash(h)) {
			continue
		}
		n++
		idle = idle || in == 0
	}
	return n, idle
}

// sentClaiming is the hash of a slot being claimed for another model: an
// even value, never a keyHash (which is odd).
const sentClaiming = 2

// noteSent records that a request for the model of hash h is being sent
// to b, and returns its slot (nil when every slot holds a model still in
// use); the caller calls done on it when the request ends. Lock-free: a
// slot is claimed for a new model by swapping its hash for sentClaiming
// first, so that a request for the old model counted there meanwhile is
// seen (and the claim given up) or sees the claim (and counts elsewhere).
// Two requests for a new model may claim two slots; the readers add them
// up.
func (b *Backend) noteSent(h uint64, now int64) *sentModel {
	for i := range b.sent {
		s := &b.sent[i]
		if s.hash.Load() != h {
			continue
		}
		s.inFlight.Add(1)
		if s.hash.Load() != h {
			// Claimed for another model before the count: not ours.
			s.inFlight.Add(-1)
			continue
		}
		s.at.Store(now)
		return s
	}
	var fetched int64
	if l := b.loaded.Load(); l != nil {
		fetched = l.fetched
	}
	for i := range b.sent {
		s := &b.sent[i]
		old := s.hash.Load()
		stale := old == 0 || (old != sentClaiming && s.inFlight.Load() == 0 && s.at.Load() < fetched)
		if !stale || !s.hash.CompareAndSwap(old, sentClaiming) {
			continue
		}
		if s.inFlight.Load() != 0 {
			// A request for the old model counted itself first.
			s.hash.Store(old)
			continue
		}
		s.loading.Store(0)
		s.inFlight.Add(1)
		s.at.Store(now)
		s.hash.Store(h)
		return s
	}
	return nil
}

// loadingSince returns when a load of the model of hash h began on b, as
// a request of the gateway made it (route.loads) and no answer for the
// model came back since; 0 when none is known.
func (b *Backend) loadingSince(h uint64) int64 {
	var since int64
	for i := range b.sent {
		if s := &b.sent[i]; s.hash.Load() == h {
			since = max(since, s.loading.Load())
		}
	}
	return since
}

// endLoad forgets a load of the model that the request counted by s
// started: it failed, or was refused.
func (s *sentModel) endLoad() {
	if s != nil {
		s.loading.Store(0)
	}
}

// done ends one request counted by noteSent.
func (s *sentModel) done() {
	if s != nil {
		s.inFlight.Add(-1)
	}
}

// modelInFlight returns how many requests for the model of hash h the
// gateway has in flight on b, as far as its table knows.
func (b *Backend) modelInFlight(h uint64) int64 {
	var n int64
	for i := range b.sent {
		if s := &b.sent[i]; s.hash.Load() == h {
			n += s.inFlight.Load()
		}
	}
	return n
}
