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
//  1. the model is loaded there (inventory.go) and a slot is free
//     (capacity.go): go there;
//  2. it is loaded somewhere, but every such backend is full: wait for a
//     slot there (the queue, queue.go), unless the expected wait, (queued
//     requests + 1) × the model's learned request time there ÷ its slots,
//     is longer than the model's learned load time on a backend with a
//     free slot (timings.go): then load it there;
//  3. it is loaded nowhere: the backend with a free slot and the fewest
//     requests in flight, then the fewest models loaded;
//  4. every candidate is full: wait in the queue.
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
// queued is how many requests wait in p's queue.
func (r *route) schedule(p *Pool, queued int64) (*Backend, int, verdict) {
	// With model-aware routing on, only the backends known to have the
	// model; when none is left, pickNone: the caller's round-robin over
	// all, as before fleet scheduling.
	return r.scan(p, queued, r.on)
}

// scan is one pass of schedule over the backends that are available, not
// tried and, if byModel, known to have the model.
func (r *route) scan(p *Pool, queued int64, byModel bool) (*Backend, int, verdict) {
	n := len(p.backends)
	start := r.startOf(p, byModel)
	var (
		warm, warmFull, cold = -1, -1, -1
		warmIn, coldIn       int64
		coldLoaded           int
		warmWait             time.Duration
		any                  bool
	)
	for j := range n {
		i := (start + j) % n
		b := p.backends[i]
		if !r.candidate(b, i, byModel) {
			continue
		}
		any = true
		in := b.inFlight.Load()
		loaded := b.isLoaded(r.key, r.hash)
		switch full := b.full(); {
		case loaded && !full:
			if warm < 0 || in < warmIn {
				warm, warmIn = i, in
			}
		case loaded:
			w := time.Duration(queued+1) * b.generationTime(r.hash) / time.Duration(b.slots())
			if warmFull < 0 || w < warmWait {
				warmFull, warmWait = i, w
			}
		case !full:
			lc := b.loadedCount()
			if cold < 0 || in < coldIn || (in == coldIn && lc < coldLoaded) {
				cold, coldIn, coldLoaded = i, in, lc
			}
		}
	}
	switch {
	case warm >= 0:
		return p.backends[warm], warm, pickGo
	case warmFull >= 0:
		if cold >= 0 && warmWait > p.backends[cold].loadTime(r.hash) {
			return p.backends[cold], cold, pickGo
		}
		return nil, -1, pickWait
	case cold >= 0:
		cold = p.claimLoad(r, cold, byModel)
		return p.backends[cold], cold, pickGo
	case any:
		return nil, -1, pickWait
	}
	return nil, -1, pickNone
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
		if b := p.backends[j]; r.candidate(b, j, byModel) && !b.full() {
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
