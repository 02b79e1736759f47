package proxy

import (
	"sync/atomic"
	"time"
)

// Fleet scheduling: which backend a request that names a model goes to
// (route.go finds the model). Among the available backends that have the
// model (all available backends when none is known to), not tried yet by
// the request, by which answers first:
//
//  1. the model is loaded there (inventory.go) and a slot for it is free
//     (capacity.go: the backend's cap and its NumParallel per model): go
//     there;
//  2. it is loaded somewhere, but every such backend is full: wait for a
//     slot there (the queue, queue.go). Meanwhile, if a backend that has
//     the model can load it without evicting anything, have it load the
//     model ahead (preload.go): the request takes whichever slot comes
//     first. Else, if the expected wait (below) is longer than loading
//     the model on a backend with a free slot, send it there to load;
//  3. it is loaded nowhere: the backend with a free slot where a load
//     evicts nothing, else one where it evicts an idle model, then the
//     fewest requests in flight, then the fewest models loaded;
//  4. every candidate is full: wait in the queue.
//
// Where the model is still loading (a request of the gateway's started the
// load and no answer came back yet), a request waits in the queue while a
// loaded copy exists elsewhere: the queue hands it the first slot to
// free, there or here when the load ends (Proxy.loaded, queue.offer).
// Only when the loading copies are the only ones does it join a load.
//
// A backend at its MaxLoadedModels whose loaded models all have requests
// in flight is never chosen to load: Ollama would hold the request until
// one of them goes idle, which a steady flow of requests for them may
// never let happen. Such a request waits in the gateway's queue instead.
//
// The expected wait is the requests queued ahead (those for the same
// model when every backend that has it loaded counts slots per model,
// NumParallel, else the whole queue), plus this one, divided by the rate
// at which those backends finish the model's requests: the sum over them
// of slots ÷ learned request time (timings.go). A load costs the learned
// load time, twice when it evicts a model (whose next request pays a load
// too).
//
// Ties go to the backend with the fewest requests in flight, then take
// turns: the scan starts at the request's turn on its model's cursor and
// only a strictly better backend replaces the first found. The scan reads
// atomics only: no lock, no allocation.

// verdict is what the scheduler decided for a request.
type verdict int

const (
	pickNone verdict = iota // no candidate: fall back to plain selection
	pickGo                  // send it to the backend returned
	pickWait                // every candidate is full: queue it
)

// schedule picks a backend for the request's model among p's candidates.
// q is the queue requests wait in.
func (r *route) schedule(p *Pool, q *queue) (*Backend, int, verdict) {
	// With model-aware routing on, only the backends known to have the
	// model; when none is left, pickNone: the caller's round-robin over
	// all, as before fleet scheduling.
	return r.scan(p, q, r.on)
}

// scan is one pass of schedule over the backends that are available, not
// tried and, if byModel, known to have the model.
func (r *route) scan(p *Pool, q *queue, byModel bool) (*Backend, int, verdict) {
	n := len(p.backends)
	start := r.startOf(p, byModel)
	var (
		warm, cold, join       = -1, -1, -1
		warmIn, coldIn, joinIn int64
		coldLoaded             int
		coldFit                loadFit
		warmFull, found        bool
	)
	for j := range n {
		i := (start + j) % n
		b := p.backends[i]
		if !r.candidate(b, i, byModel) {
			continue
		}
		found = true
		in := b.inFlight.Load()
		loaded := b.isLoaded(r.key, r.hash)
		full := b.fullFor(r.hash)
		switch {
		case loaded && !full && q.size > 0 && p.loading(i, r.hash):
			// It answers once the load ends.
			if join < 0 || in < joinIn {
				join, joinIn = i, in
			}
		case loaded && !full:
			if warm < 0 || in < warmIn {
				warm, warmIn = i, in
			}
		case loaded:
			warmFull = true
		case !full:
			fit := b.loadFit()
			if fit == loadBlocked {
				continue
			}
			lc := b.loadedCount()
			if cold < 0 || fit < coldFit || (fit == coldFit && (in < coldIn || (in == coldIn && lc < coldLoaded))) {
				cold, coldIn, coldLoaded, coldFit = i, in, lc, fit
			}
		}
	}
	switch {
	case warm >= 0:
		return p.backends[warm], warm, pickGo
	case warmFull:
		switch {
		case cold < 0:
		case q.size > 0 && p.mayPreload(cold, coldFit):
			// Room there: load it ahead, and wait for whichever slot
			// comes first (preload.go).
			r.ahead = cold + 1
		case r.slotWait(p, q, byModel, 1) > p.loadCost(cold, r.hash, coldFit):
			r.loads = true
			return p.backends[cold], cold, pickGo
		}
		return nil, -1, pickWait
	case join >= 0:
		return p.backends[join], join, pickGo
	case cold >= 0:
		cold = p.claimLoad(r, cold, byModel)
		r.loads = true
		return p.backends[cold], cold, pickGo
	case found:
		return nil, -1, pickWait
	}
	return nil, -1, pickNone
}

// loading reports whether the model of hash h is still loading on backend
// i of p, as far as the gateway knows: a request of its own started the
// load, no answer for the model came back since, and less than twice the
// expected load time has passed (a request that answers only at its end,
// stream false, must not hide a finished load for long).
func (p *Pool) loading(i int, h uint64) bool {
	since := p.backends[i].loadingSince(h)
	return since != 0 && time.Duration(time.Now().UnixNano()-since) < 2*p.loadCost(i, h, loadRoom)
}

// slotWait returns the expected wait for a slot for the request's model on
// the candidate backends that have it loaded, with extra requests besides
// those queued for it (1 for a request not yet queued, 0 for one in the
// queue); 0 when no candidate has it loaded.
func (r *route) slotWait(p *Pool, q *queue, byModel bool, extra int64) time.Duration {
	var rate float64 // requests per second
	perModel := true
	for i, b := range p.backends {
		if !r.candidate(b, i, byModel) || !b.isLoaded(r.key, r.hash) {
			continue
		}
		rate += float64(b.slots(r.hash)) / b.generationTime(r.hash).Seconds()
		perModel = perModel && b.numParallel.Load() > 0
	}
	if rate == 0 {
		return 0
	}
	ahead := q.depth.Load()
	if perModel {
		ahead = q.waitingFor(r.hash)
	}
	return time.Duration(float64(ahead+extra) / rate * float64(time.Second))
}

// loadClaims is the number of per-pool slots of claimLoad, indexed by a
// model's hash.
const loadClaims = 64

// loadClaimTTL is how long a claim to load a model on a backend steers
// concurrent requests for it there: it covers the instant between the
// choice and the request's note in the backend's sent table, which then
// takes over.
const loadClaimTTL = time.Second

// loadClaim is one slot: the model's hash with its low byte replaced by
// the backend's pool index + 1, and when it was claimed.
type loadClaim struct {
	word atomic.Uint64
	at   atomic.Int64
	_    [48]byte
}

// claimLoad makes concurrent requests for a model loaded nowhere agree on
// one backend to load it on: the first to claim the model's slot wins,
// and the others go to its backend while it has a free slot. It returns
// the backend index to use, cold when it won or no claim applies. Pools
// of more than 254 backends skip the claim. Lock-free: one CAS.
func (p *Pool) claimLoad(r *route, cold int, byModel bool) int {
	if len(p.backends) > 254 {
		return cold
	}
	c := &p.claims[r.hash%loadClaims]
	tag := r.hash &^ 0xFF
	winner := func(w uint64) int {
		j := int(w&0xFF) - 1
		if w&^0xFF != tag || j < 0 || j >= len(p.backends) || j == cold {
			return -1
		}
		if b := p.backends[j]; r.candidate(b, j, byModel) && !b.fullFor(r.hash) && b.loadFit() != loadBlocked {
			return j
		}
		return -1
	}
	now := time.Now().UnixNano()
	old := c.word.Load()
	if now-c.at.Load() < int64(loadClaimTTL) {
		if j := winner(old); j >= 0 {
			return j
		}
	}
	if c.word.CompareAndSwap(old, tag|uint64(cold+1)) {
		c.at.Store(now)
		return cold
	}
	if j := winner(c.word.Load()); j >= 0 {
		return j
	}
	return cold
}

// candidate reports whether backend i may serve the request: available,
// not tried and, if byModel, known to have the model.
func (r *route) candidate(b *Backend, i int, byModel bool) bool {
	if r.tried[i/64]&(1<<(i%64)) != 0 || !b.Available() {
		return false
	}
	if !byModel {
		return true
	}
	m := b.models.Load()
	return m != nil && m.has(r.key)
}

// startOf returns the pool index of the candidate whose turn it is: the
// (turn mod candidates)-th in pool order, so that candidates take equal
// turns however many backends between them are not candidates.
func (r *route) startOf(p *Pool, byModel bool) int {
	count := 0
	for i, b := range p.backends {
		if r.candidate(b, i, byModel) {
			count++
		}
	}
	if count == 0 {
		return 0
	}
	k := int(r.turn % uint64(count))
	for i, b := range p.backends {
		if r.candidate(b, i, byModel) {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return 0
}

// eligibleSlot reports whether a slot freeing on backend i of p may go to
// the queued request: available, not tried, with the model if the request
// is routed by model and some available backend has it.
func (r *route) eligibleSlot(p *Pool, i int) bool {
	b := p.backends[i]
	if r.tried[i/64]&(1<<(i%64)) != 0 || !b.Available() {
		return false
	}
	if !r.on {
		return true
	}
	if m := b.models.Load(); m != nil && m.has(r.key) {
		return true
	}
	// Without the model, only when no available backend has it.
	for _, o := range p.backends {
		if m := o.models.Load(); o.Available() && m != nil && m.has(r.key) {
			return false
		}
	}
	return true
}

// warmSlot reports whether a slot freeing on backend i of p serves the
// request without a load: it names no model, or its model is loaded (or
// loading) there. The queue hands a slot to such a request first, so that
// a freed slot does not load (and, on a backend at its
// OLLAMA_MAX_LOADED_MODELS, evict) a model while a request for one loaded
// there waits.
func (r *route) warmSlot(p *Pool, i int) bool {
	return !r.named || p.backends[i].isLoaded(r.key, r.hash)
}

// mayLoad reports whether the queued request w may take a slot freed on
// backend i of p where its model is not loaded, making the backend load
// it: not while every model loaded there is busy (loadFit), and only when
// its model is loaded on no candidate backend, or the expected wait for a
// slot there is longer than the load. A request that has waited half the
// queue timeout takes any slot: it must not starve behind busy models.
func (r *route) mayLoad(p *Pool, q *queue, i int, waited time.Duration) bool {
	if waited >= q.timeout/2 {
		return true
	}
	fit := p.backends[i].loadFit()
	if fit == loadBlocked {
		return false
	}
	w := r.slotWait(p, q, r.on, 0)
	return w == 0 || w > p.loadCost(i, r.hash, fit)
}

// leastConnections returns the available backend with the fewest requests
// in flight, ties taking turns from pos; the backend at pos if none is
// available.
func (p *Pool) leastConnections(pos uint64) *Backend {
	n := uint64(len(p.backends))
	var best *Backend
	var bestIn int64
	for j := range n {
		b := p.backends[(pos+j)%n]
		if !b.Available() {
			continue
		}
		if in := b.inFlight.Load(); best == nil || in < bestIn {
			best, bestIn = b, in
		}
	}
	if best == nil {
		return p.backends[pos%n]
	}
	return best
}
