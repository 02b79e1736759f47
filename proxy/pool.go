package proxy

import (
	"errors"
	"hash/maphash"
	"sync/atomic"
)

// ErrNoBackends is returned by NewPool for an empty backend list.
var ErrNoBackends = errors.New("proxy: no backends")

// Pool is an immutable set of backends with a lock-free round-robin cursor,
// and more cursors for requests routed by model (see route.go). It is safe
// for concurrent use.
type Pool struct {
	backends []*Backend
	next     atomic.Uint64

	seed    maphash.Seed // hashes a model to its cursor
	cursors [modelCursors]cursor
	claims  [loadClaims]loadClaim // which backend loads a cold model (schedule.go)
}

// cursor is a round-robin counter alone on its cache line, so that requests
// for different models do not contend.
type cursor struct {
	n atomic.Uint64
	_ [56]byte
}

// NewPool returns a pool over backends, which it does not copy: the caller
// must not modify the slice afterwards.
func NewPool(backends []*Backend) (*Pool, error) {
	if len(backends) == 0 {
		return nil, ErrNoBackends
	}
	return &Pool{backends: backends, seed: maphash.MakeSeed()}, nil
}

// Backends returns the pool's backends in configuration order. The slice
// must not be modified.
func (p *Pool) Backends() []*Backend { return p.backends }

// Len returns the number of backends.
func (p *Pool) Len() int { return len(p.backends) }

// pick returns the first available backend at or after position pos (taken
// modulo the pool size) and the position it was found at. If none is
// available it returns the backend at pos.
func (p *Pool) pick(pos uint64) (*Backend, uint64) {
	n := uint64(len(p.backends))
	for i := uint64(0); i < n; i++ {
		if b := p.backends[(pos+i)%n]; b.Available() {
			return b, pos + i
		}
	}
	return p.backends[pos%n], pos
}

// Close releases the idle connections of every backend.
func (p *Pool) Close() {
	for _, b := range p.backends {
		b.Close()
	}
}
