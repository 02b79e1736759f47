package proxy

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// Capacity: what a backend runs at once, as its operator told the gateway
// (SetCapacity, from the config's ollamaAddresses[i] object), and what its
// answers told it.
//
//   - MaxConcurrent caps the requests routed by model the gateway has in
//     flight on it, whatever their model.
//   - NumParallel is the backend's OLLAMA_NUM_PARALLEL: Ollama generates
//     that many requests at once per loaded model and queues the rest
//     itself, so the gateway sends a model no more than that (the sent
//     table of inventory.go counts requests per model) and keeps the rest
//     in its own queue, where a slot on any backend may take them.
//   - MaxLoadedModels is its OLLAMA_MAX_LOADED_MODELS: at that many models
//     loaded, loading another evicts one (and the evicted model's next
//     request pays a load), and while every loaded model has requests in
//     flight Ollama cannot load at all: it waits for one to go idle,
//     holding up its other loads (loadFit).
//   - A backend that answered Ollama's "server busy" (503 before any byte:
//     its own queue is full) counts as full at the number of requests the
//     gateway had in flight there besides the refused one, until one of
//     them ends or busyHold passes.
//
// A full backend gets no new request while another can take it; when none
// can, the request waits in the pool's queue (queue.go). Each count is 0
// when unknown: no limit from it.

// Capacity is what an Ollama backend serves at once. The zero value knows
// nothing: no limit.
type Capacity struct {
	// MaxConcurrent caps the requests routed by model in flight; 0: none.
	MaxConcurrent int
	// NumParallel is the backend's OLLAMA_NUM_PARALLEL; 0: unknown.
	NumParallel int
	// MaxLoadedModels is the backend's OLLAMA_MAX_LOADED_MODELS; 0:
	// unknown.
	MaxLoadedModels int
}

// SetCapacity sets what b serves at once; negative counts mean 0. It may
// be changed at any time (a reload keeps the backend). Safe for
// concurrent use.
func (b *Backend) SetCapacity(c Capacity) {
	b.maxConc.Store(int64(max(c.MaxConcurrent, 0)))
	b.numParallel.Store(int64(max(c.NumParallel, 0)))
	b.maxLoaded.Store(int64(max(c.MaxLoadedModels, 0)))
}

// Capacity returns what SetCapacity set.
func (b *Backend) Capacity() Capacity {
	return Capacity{
		MaxConcurrent:   int(b.maxConc.Load()),
		NumParallel:     int(b.numParallel.Load()),
		MaxLoadedModels: int(b.maxLoaded.Load()),
	}
}

// full reports whether b has no free slot: at its cap, or at the level at
// which it last answered "server busy".
func (b *Backend) full() bool {
	n := b.inFlight.Load()
	if c := b.maxConc.Load(); c > 0 && n >= c {
		return true
	}
	busy := b.busy.Load()
	return busy > 0 && n >= busy-1 && time.Now().UnixNano() < b.busyUntil.Load()
}

// busyHold is how long a "server busy" answer makes a backend full when
// no request of the gateway's ends there first (the backend's queue may
// be full of other clients' requests).
const busyHold = time.Second

// fullFor reports whether b has no free slot for a request for the model
// of hash h: b is full, or the model has NumParallel requests in flight
// there.
func (b *Backend) fullFor(h uint64) bool {
	if b.full() {
		return true
	}
	np := b.numParallel.Load()
	return np > 0 && b.modelInFlight(h) >= np
}

// fitsModel reports whether the model of hash h is below NumParallel
// requests on b (always, when NumParallel is unknown): with b's own count
// passed on by a freed slot, whether a queued request for it may take
// that slot.
func (b *Backend) fitsModel(h uint64) bool {
	np := b.numParallel.Load()
	return np == 0 || b.modelInFlight(h) < np
}

// slots returns how many requests for the model of hash h b serves at
// once, for the expected wait: NumParallel, else its cap, else the level
// at which it was last busy, else 1 (Ollama's default
// OLLAMA_NUM_PARALLEL).
func (b *Backend) slots(h uint64) int64 {
	if np := b.numParallel.Load(); np > 0 {
		if c := b.maxConc.Load(); c > 0 && c < np {
			return c
		}
		return np
	}
	if c := b.maxConc.Load(); c > 0 {
		return c
	}
	if busy := b.busy.Load(); busy > 1 {
		return busy - 1
	}
	return 1
}

// markBusy records that b answered "server busy" with inFlight requests in
// flight (the refused one included): b is full at inFlight-1 (stored plus
// one, 0 meaning not busy) for busyHold.
func (b *Backend) markBusy(inFlight int64) {
	b.busyUntil.Store(time.Now().Add(busyHold).UnixNano())
	b.busy.Store(max(inFlight, 1))
}

// isServerBusy reports whether resp is Ollama's answer to a request its
// queue has no room for: 503 with {"error":"server busy, ..."}. It reads
// the body, which is small, of a streamed answer.
func isServerBusy(resp *fasthttp.Response) bool {
	if resp.StatusCode() != fasthttp.StatusServiceUnavailable {
		return false
	}
	if cl := resp.Header.ContentLength(); cl > 4096 {
		return false
	}
	return bytes.Contains(resp.Body(), []byte("server busy"))
}

// loadFit is what loading one more model on a backend costs, as far as
// MaxLoadedModels and the gateway's own requests tell.
type loadFit int

const (
	loadRoom    loadFit = iota // fewer models loaded than MaxLoadedModels, or it is unknown
	loadEvicts                 // at MaxLoadedModels: an idle model is unloaded first
	loadBlocked                // at MaxLoadedModels and every model busy: Ollama waits
)

// loadFit returns what loading a model not loaded on b costs: room, an
// eviction, or a wait for a loaded model to go idle. A model counts as
// busy while the gateway has a request for it in flight there (requests of
// other clients of the backend are not known).
func (b *Backend) loadFit() loadFit {
	limit := b.maxLoaded.Load()
	if limit <= 0 {
		return loadRoom
	}
	switch n, idle := b.resident(); {
	case int64(n) < limit:
		return loadRoom
	case idle:
		return loadEvicts
	}
	return loadBlocked
}
