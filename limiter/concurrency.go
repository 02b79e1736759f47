package limiter

import (
	"hash/maphash"
	"sync"
)

// Concurrency caps the number of simultaneous requests per client, such as
// streams in flight: Acquire before the request, Release when it is done.
// It is sharded like Local, so clients in different shards never contend.
//
// Only clients holding at least one slot are tracked, and each shard tracks
// at most MaxClients/Shards of them. When a shard is full, Acquire refuses
// clients it does not track yet (fail closed): a client must not escape its
// cap because the table is full, and filling a shard takes about MaxClients
// requests in flight across all shards, since the shard is chosen by a
// seeded hash.
//
// A Concurrency must be created with NewConcurrency; the zero value is not
// usable. All methods are safe for concurrent use.
type Concurrency struct {
	seed   maphash.Seed
	shift  uint
	shards []concShard
}

// concShard is one lock's worth of holders, padded to a cache line.
type concShard struct {
	mu  sync.Mutex
	m   map[ClientKey]*Slot
	max int // capacity of m
	_   [64 - 24]byte
}

// Slot is a client's hold on a Concurrency: Release it when the request is
// done. All acquisitions by one client share its Slot while it holds any.
type Slot struct {
	shard *concShard
	key   ClientKey
	held  int    // guarded by shard.mu
	lease *lease // a RedisConcurrency lease instead; then shard is nil
}

// Acquirer caps simultaneous requests per client: Concurrency in one
// process, RedisConcurrency across replicas.
type Acquirer interface {
	// Acquire takes one of key's max slots; see Concurrency.Acquire.
	Acquire(key ClientKey, max int) (*Slot, bool)
}

var _ Acquirer = (*Concurrency)(nil)

// NewConcurrency returns an empty Concurrency sized by opts.
func NewConcurrency(opts Options) *Concurrency {
	n, shift, per := opts.layout()
	c := &Concurrency{seed: maphash.MakeSeed(), shift: shift, shards: make([]concShard, n)}
	for i := range c.shards {
		c.shards[i].m = make(map[ClientKey]*Slot)
		c.shards[i].max = int(per)
	}
	return c
}

// Acquire takes a slot for key if it holds fewer than max, and returns it
// with ok true; ok is false when the client already holds max slots (or, as
// described on Concurrency, when its shard is full of other clients). A max
// <= 0 means unlimited: Acquire returns a nil *Slot and true without
// tracking anything. Acquire does not allocate for a client that already
// holds a slot.
//
// Every Slot returned with ok true must be released exactly once.
func (c *Concurrency) Acquire(key ClientKey, max int) (s *Slot, ok bool) {
	if max <= 0 {
		return nil, true
	}
	sh := &c.shards[key.hash(c.seed)>>c.shift]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s = sh.m[key]
	if s == nil {
		if len(sh.m) >= sh.max {
			return nil, false
		}
		s = &Slot{shard: sh, key: key}
		sh.m[key] = s
	}
	if s.held >= max {
		return nil, false
	}
	s.held++
	return s, true
}

// Release returns one slot taken by Acquire. It is a no-op on a nil *Slot,
// so the result of Acquire may always be released. Releasing twice for one
// acquisition is a bug that Release does not detect. When a client holds no
// more slots, it is no longer tracked.
func (s *Slot) Release() {
	if s == nil {
		return
	}
	if s.lease != nil {
		s.lease.release()
		return
	}
	sh := s.shard
	sh.mu.Lock()
	s.held--
	if s.held <= 0 && sh.m[s.key] == s {
		delete(sh.m, s.key)
	}
	sh.mu.Unlock()
}

// Len returns the number of clients holding at least one slot.
func (c *Concurrency) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
