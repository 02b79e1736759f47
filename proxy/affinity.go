package proxy

import (
	"bytes"
	"container/list"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Blob affinity. `ollama create` from local files uploads each file as a
// blob (HEAD, then POST /api/blobs/<digest>) and then sends POST
// /api/create naming those digests: with several backends every one of
// these requests must reach the backend that holds the blobs, or Ollama
// answers that the file does not exist. An Affinity remembers, for each
// digest a backend accepted or already had, which backend that was, and the
// requests that name a remembered digest go there first.

// Default bounds of an Affinity.
const (
	// DefaultAffinityEntries is the most digests remembered; the least
	// recently used is forgotten first.
	DefaultAffinityEntries = 4096
	// DefaultAffinityTTL is how long a digest is remembered after its
	// last use: an upload and its create are minutes apart.
	DefaultAffinityTTL = time.Hour
)

// Affinity maps blob digests to the backend that holds them, bounded in
// entries and age. The zero value is not usable: use NewAffinity. It is
// safe for concurrent use and is meant to outlive a Proxy (a reload keeps
// it: a digest whose backend is no longer in the pool is ignored).
type Affinity struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	byKey map[string]*list.Element // of *affinityEntry
	lru   list.List                // most recently used first
}

type affinityEntry struct {
	key     string
	backend *Backend
	expires time.Time
}

// NewAffinity returns an Affinity of at most max digests (DefaultAffinityEntries
// if max <= 0), each forgotten ttl after its last use (DefaultAffinityTTL if
// ttl <= 0).
func NewAffinity(max int, ttl time.Duration) *Affinity {
	if max <= 0 {
		max = DefaultAffinityEntries
	}
	if ttl <= 0 {
		ttl = DefaultAffinityTTL
	}
	return &Affinity{max: max, ttl: ttl, now: time.Now, byKey: make(map[string]*list.Element)}
}

// Remember records that backend b holds the blob digest. A digest that is
// not one (see blobKey) is ignored.
func (a *Affinity) Remember(digest string, b *Backend) {
	key, ok := blobKey([]byte(digest))
	if !ok || b == nil {
		return
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.byKey[string(key)]; e != nil {
		ent := e.Value.(*affinityEntry)
		ent.backend, ent.expires = b, now.Add(a.ttl)
		a.lru.MoveToFront(e)
		return
	}
	a.byKey[string(key)] = a.lru.PushFront(&affinityEntry{key: string(key), backend: b, expires: now.Add(a.ttl)})
	for a.lru.Len() > a.max {
		a.drop(a.lru.Back())
	}
}

// Lookup returns the backend remembered for digest, or nil: unknown,
// expired, or not a digest. A hit counts as a use.
func (a *Affinity) Lookup(digest string) *Backend {
	key, ok := blobKey([]byte(digest))
	if !ok {
		return nil
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.byKey[string(key)]
	if e == nil {
		return nil
	}
	ent := e.Value.(*affinityEntry)
	if !now.Before(ent.expires) {
		a.drop(e)
		return nil
	}
	ent.expires = now.Add(a.ttl)
	a.lru.MoveToFront(e)
	return ent.backend
}

// Len returns the number of digests remembered, expired ones included
// until they are looked up or pushed out.
func (a *Affinity) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lru.Len()
}

func (a *Affinity) drop(e *list.Element) {
	delete(a.byKey, e.Value.(*affinityEntry).key)
	a.lru.Remove(e)
}

// blobKey returns the canonical form of a blob digest, "sha256:" and 64
// lower-case hex digits, from either spelling Ollama accepts
// ("sha256:<hex>" or "sha256-<hex>", any case).
func blobKey(d []byte) ([]byte, bool) {
	const n = len("sha256:") + 64
	if len(d) != n || !bytes.EqualFold(d[:6], []byte("sha256")) || (d[6] != ':' && d[6] != '-') {
		return nil, false
	}
	key := make([]byte, 0, n)
	key = append(key, "sha256:"...)
	for _, c := range d[7:] {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return nil, false
		}
		key = append(key, c)
	}
	return key, true
}

// blobsOf calls yield with each digest the request names, as its route
// says (ollamaapi.Route.Blobs): the last path segment, or the values of
// the create body's "files" and "adapters" objects.
func blobsOf(rt *ollamaapi.Route, path, body []byte, yield func(digest string) bool) {
	switch rt.Blobs {
	case ollamaapi.BlobInPath:
		if i := bytes.LastIndexByte(path, '/'); i >= 0 {
			yield(string(path[i+1:]))
		}
	case ollamaapi.BlobsInBody:
		var req struct {
			Files    map[string]string `json:"files"`
			Adapters map[string]string `json:"adapters"`
		}
		if json.Unmarshal(body, &req) != nil {
			return // Ollama answers the bad body itself
		}
		for _, m := range []map[string]string{req.Files, req.Adapters} {
			for _, d := range m {
				if !yield(d) {
					return
				}
			}
		}
	}
}

// pinBlobs sets x.pin to the backend remembered for a blob the request
// names, when it is in the pool and available: roundTrip tries it first.
func (x *exchange) pinBlobs(upReq *fasthttp.Request) {
	x.pin = nil
	a := x.p.opts.Affinity
	if a == nil || x.api.Blobs == ollamaapi.NoBlobs || x.p.pool.Len() < 2 {
		return
	}
	blobsOf(x.api, x.ctx.Path(), upReq.Body(), func(d string) bool {
		b := a.Lookup(d)
		if b == nil || !b.Available() || !x.p.pool.has(b) {
			return true
		}
		x.pin = b
		return false
	})
}

// takePin returns the pinned backend once, for the first attempt.
func (x *exchange) takePin() *Backend {
	b := x.pin
	x.pin = nil
	return b
}

// rememberBlob records the backend that accepted (or had) the blob of a
// blob route, when the answer was a success.
func (x *exchange) rememberBlob() {
	a := x.p.opts.Affinity
	if a == nil || x.api.Blobs != ollamaapi.BlobInPath || x.res.Backend == nil ||
		x.res.Status < 200 || x.res.Status > 299 || x.p.pool.Len() < 2 {
		return
	}
	blobsOf(x.api, x.ctx.Path(), nil, func(d string) bool {
		a.Remember(d, x.res.Backend)
		return false
	})
}

// has reports whether b is one of the pool's backends.
func (p *Pool) has(b *Backend) bool {
	for _, o := range p.backends {
		if o == b {
			return true
		}
	}
	return false
}
