package limiter

import (
	"context"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
)

// Rate allows Limit events per Window with bursts of up to Limit: a token
// bucket of capacity Limit, refilled continuously at Limit/Window. A Limit
// or Window <= 0 disables limiting. Limits above 1<<32 are treated as 1<<32.
type Rate struct {
	Limit  int
	Window time.Duration
}

// Decision is the outcome of one Allow call; its fields feed the 429
// response and the X-RateLimit-* headers.
type Decision struct {
	// Allowed reports whether the event may happen (a token was taken).
	Allowed bool
	// Limit is the bucket capacity, Rate.Limit.
	Limit int
	// Remaining is the number of whole tokens left after this call (>= 0).
	Remaining int
	// RetryAfter is, when !Allowed, the time until one token is available:
	// a call at now+RetryAfter at the same rate is allowed unless other calls
	// took the token first. It is 0 when Allowed.
	RetryAfter time.Duration
	// Reset is the time until the bucket is full again.
	Reset time.Duration
	// Unavailable reports that the limiter could not decide (a shared
	// store unreachable with fail-closed): Allowed is false, and the
	// request should be answered 503, not 429. Local never sets it.
	Unavailable bool
}

// Limiter decides whether a client may make one more request.
// Implementations must be safe for concurrent use.
type Limiter interface {
	// Allow takes one token from key's bucket at rate r at time now, if one
	// is available, and reports the outcome.
	Allow(key ClientKey, r Rate, now time.Time) Decision
}

// Options sizes a Local or a Concurrency. The zero value selects the
// defaults.
type Options struct {
	// Shards is the number of independently locked shards. Default 256;
	// rounded up to a power of two, at most 65536, and lowered so that each
	// shard may hold at least one client.
	Shards int
	// MaxClients bounds the number of clients tracked across all shards.
	// Default 1,000,000. It is split evenly between shards (rounding down),
	// so each shard holds at most MaxClients/Shards clients.
	MaxClients int
}

const (
	maxPerShard       = math.MaxUint32 - 1 // slots are uint32 indexes, and noSlot is one
	defaultShards     = 256
	maxShards         = 1 << 16
	defaultMaxClients = 1_000_000
)

// layout returns the number of shards (a power of two), the shift that turns
// a 64-bit hash into a shard index, and the capacity of each shard.
func (o Options) layout() (shards int, shift uint, perShard uint32) {
	n := o.Shards
	if n <= 0 {
		n = defaultShards
	}
	n = min(n, maxShards)
	maxClients := o.MaxClients
	if maxClients <= 0 {
		maxClients = defaultMaxClients
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	for n > maxClients {
		n >>= 1
	}
	return n, uint(64 - bits.TrailingZeros(uint(n))), uint32(min(maxClients/n, maxPerShard))
}

// Tokens are fixed-point: unit is one token. Integer arithmetic makes a
// bucket exact (with a fixed now, exactly Limit calls are allowed; after
// Window/Limit, exactly one more token when it divides evenly), and refill
// rounds down, carrying the time not yet turned into tokens to the next
// call, so rounding never mints tokens and loses less than a nanosecond of
// refill per call.
const (
	unitShift = 30
	unit      = 1 << unitShift
	maxLimit  = 1 << 32 // so that capacity (maxLimit*unit) fits in an int64
)

// bucket is one client's token bucket, stored by value in its shard's
// slice.
type bucket struct {
	tokens int64 // tokens in units of 1/unit, as of last; 0..capacity
	last   int64 // time tokens is as of, Unix nanoseconds
	full   int64 // when the bucket is full again at the last rate, Unix ns
}

// advance refills b up to time t at capacity tokens per window and clamps it
// to capacity (the rate may have changed since the last call). Time going
// backwards refills nothing and leaves last alone, so it mints nothing
// either.
func (b *bucket) advance(t, capacity, window int64) {
	if b.tokens > capacity {
		b.tokens = capacity
	}
	if t <= b.last {
		return
	}
	elapsed := t - b.last
	if b.tokens == capacity || elapsed >= window { // any bucket refills in a window
		b.tokens, b.last = capacity, t
		return
	}
	// add = elapsed*capacity/window units, in 128 bits: the product can
	// exceed 2^64. The quotient fits (Div64 needs hi < window) because
	// elapsed < window and capacity < 2^63.
	hi, lo := bits.Mul64(uint64(elapsed), uint64(capacity))
	add, rem := bits.Div64(hi, lo, uint64(window))
	if add >= uint64(capacity-b.tokens) {
		b.tokens, b.last = capacity, t
		return
	}
	b.tokens += int64(add)
	// The add units took elapsed - rem/capacity ns to refill. Keep the
	// rest (less than one unit's worth) for the next call, in whole ns
	// rounded down. It is 0 unless a unit takes over a nanosecond to
	// refill (a token over about a second), so the division is rare.
	b.last = t
	if rem >= uint64(capacity) {
		b.last -= int64(rem / uint64(capacity))
	}
}

// refillTime returns the time, in nanoseconds rounded up, that a bucket of
// capacity refilled at capacity per window needs to gain need units;
// 0 <= need <= capacity.
func refillTime(need, capacity, window int64) int64 {
	// need <= capacity, so the quotient is at most window and fits.
	hi, lo := bits.Mul64(uint64(need), uint64(window))
	q, r := bits.Div64(hi, lo, uint64(capacity))
	if r != 0 {
		q++
	}
	return int64(q)
}

// after returns the time from t until d after last: d+last-t, saturating
// at the largest int64; d >= 0 and d+last >= t.
func after(d, last, t int64) int64 {
	if off := last - t; off > 0 {
		return addSat(d, off)
	} else {
		return d + off
	}
}

// addSat returns a+b (both >= 0 or a any and b >= 0), saturating at the
// largest int64 instead of wrapping.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Local is the in-memory Limiter: one token bucket per client, spread over
// shards, each a mutex and a map chosen by a seeded hash of the key, so
// clients in different shards never contend. Allow does not allocate for a
// client that is already tracked.
//
// Memory is bounded: each shard tracks at most MaxClients/Shards clients.
// When a new client arrives at a full shard, the shard first drops the
// buckets that are full again (which behave exactly like absent ones); it
// keeps a lower bound on its buckets' full times and skips this walk while
// none can be full, so a flood of new addresses does not walk the shard on
// every call. If no bucket is full, it evicts the least recently updated of
// a sample of 8 entries taken in map iteration order (which is randomized):
// constant work per new client, and clients that are active, in particular
// throttled ones, tend to stay. The trade-off: an evicted client that comes
// back starts with a full bucket, so under a flood of more distinct keys
// than the table holds, some clients get more than their rate. That is the
// price of bounded memory; MaxClients should exceed the number of clients
// active within one Window.
//
// A Local must be created with NewLocal; the zero value is not usable. All
// methods are safe for concurrent use.
type Local struct {
	seed   maphash.Seed
	shift  uint
	shards []shard
}

var _ Limiter = (*Local)(nil)

// evictSample is how many entries a full shard looks at to choose one to
// evict.
const evictSample = 8

// noSlot ends a shard's free list.
const noSlot = math.MaxUint32

// shard is one lock's worth of buckets. The buckets are stored by value in
// a slice, and the map gives each key's index in it: one map probe per Allow
// (a map of buckets by value takes a lookup and an assignment), and no
// pointer per entry. Freed slots are chained through their last field.
// The shard is padded to a cache line so that neighbouring shards' locks do
// not share one.
type shard struct {
	mu      sync.Mutex
	index   map[ClientKey]uint32 // key -> position in buckets
	buckets []bucket             // live and free slots; len(buckets) <= max
	minFull int64                // lower bound of the full times in the shard; MaxInt64 when empty
	free    uint32               // first free slot of buckets, or noSlot
	max     uint32               // capacity of the shard
	peak    uint32               // largest len(index) since the shard was last compacted
	_       [64 - 60]byte
}

// NewLocal returns an empty Local sized by opts.
func NewLocal(opts Options) *Local {
	n, shift, per := opts.layout()
	l := &Local{seed: maphash.MakeSeed(), shift: shift, shards: make([]shard, n)}
	for i := range l.shards {
		l.shards[i].init(per)
	}
	return l
}

func (s *shard) init(max uint32) {
	s.index = make(map[ClientKey]uint32)
	s.buckets = nil
	s.free = noSlot
	s.max = max
	s.peak = 0
	s.minFull = math.MaxInt64
}

// Allow takes one token from key's bucket at rate r at time now, if one is
// available. A client seen for the first time starts with a full bucket.
// The rate applies from this call on: a lower Limit clamps the tokens held
// to the new capacity. A now earlier than the bucket's last update refills
// nothing. A Limit or Window <= 0 disables limiting: Allow returns
// Decision{Allowed: true, Limit: r.Limit} and touches no state.
func (l *Local) Allow(key ClientKey, r Rate, now time.Time) Decision {
	if r.Limit <= 0 || r.Window <= 0 {
		return Decision{Allowed: true, Limit: r.Limit}
	}
	capacity := int64(min(r.Limit, maxLimit)) << unitShift
	window := int64(r.Window)
	t := now.UnixNano()

	s := &l.shards[key.hash(l.seed)>>l.shift]
	s.mu.Lock()
	i, ok := s.index[key]
	if !ok {
		i = s.add(key, t, capacity)
	}
	b := &s.buckets[i]
	b.advance(t, capacity, window)
	allowed := b.tokens >= unit
	if allowed {
		b.tokens -= unit
	}
	tokens, last := b.tokens, b.last
	toFull := refillTime(capacity-tokens, capacity, window)
	b.full = addSat(b.last, toFull)
	s.minFull = min(s.minFull, b.full)
	s.mu.Unlock()

	var retry int64
	if !allowed {
		retry = after(refillTime(unit-tokens, capacity, window), last, t)
	}
	return Decision{
		Allowed:    allowed,
		Limit:      r.Limit,
		Remaining:  int(tokens >> unitShift),
		RetryAfter: time.Duration(retry),
		Reset:      time.Duration(after(toFull, last, t)),
	}
}

// add tracks a new client with a full bucket of capacity as of t, making
// room first if the shard is full, and returns its slot. s.mu must be held.
func (s *shard) add(key ClientKey, t, capacity int64) uint32 {
	if len(s.index) >= int(s.max) {
		s.makeRoom(t)
	}
	b := bucket{tokens: capacity, last: t}
	var i uint32
	if s.free != noSlot {
		i = s.free
		s.free = uint32(s.buckets[i].last)
		s.buckets[i] = b
	} else {
		i = uint32(len(s.buckets))
		if len(s.buckets) == cap(s.buckets) {
			// Grow like append, but never past the shard's capacity.
			n := min(max(2*len(s.buckets), 8), int(s.max))
			s.buckets = append(make([]bucket, 0, n), s.buckets...)
		}
		s.buckets = append(s.buckets, b)
	}
	s.index[key] = i
	s.peak = max(s.peak, uint32(len(s.index)))
	return i
}

// remove stops tracking key, whose slot is i. s.mu must be held.
func (s *shard) remove(key ClientKey, i uint32) {
	delete(s.index, key)
	s.buckets[i] = bucket{last: int64(s.free)}
	s.free = i
}

// makeRoom frees at least one slot of the full shard s at time t.
// s.mu must be held.
func (s *shard) makeRoom(t int64) {
	// A sweep walks the whole shard, so it is only tried when some bucket
	// may be full again; it then sets minFull to the exact earliest full
	// time, so under a flood of new keys the next one waits until then.
	if t >= s.minFull {
		s.sweep(t)
		if len(s.index) < int(s.max) {
			return
		}
	}
	var (
		victim ClientKey
		slot   uint32
		oldest int64 = math.MaxInt64
		n      int
	)
	for k, i := range s.index {
		if last := s.buckets[i].last; last < oldest {
			victim, slot, oldest = k, i, last
		}
		if n++; n == evictSample {
			break
		}
	}
	s.remove(victim, slot)
}

// sweep drops the buckets of s that are full at t, recomputes s.minFull and
// returns how many it dropped. s.mu must be held.
func (s *shard) sweep(t int64) int {
	dropped := 0
	earliest := int64(math.MaxInt64)
	for k, i := range s.index {
		if full := s.buckets[i].full; full <= t {
			s.remove(k, i)
			dropped++
		} else {
			earliest = min(earliest, full)
		}
	}
	s.minFull = earliest
	return dropped
}

// compact rebuilds the map and slice of s if they have shrunk to under a
// quarter of their peak size: Go maps do not release memory on delete, and
// the slice holds free slots. s.mu must be held.
func (s *shard) compact() {
	if s.peak < shrinkMin || len(s.index) >= int(s.peak/4) {
		return
	}
	index := make(map[ClientKey]uint32, len(s.index))
	buckets := make([]bucket, 0, len(s.index))
	for k, i := range s.index {
		index[k] = uint32(len(buckets))
		buckets = append(buckets, s.buckets[i])
	}
	s.index, s.buckets, s.free, s.peak = index, buckets, noSlot, uint32(len(index))
}

// shrinkMin is the smallest peak size worth compacting a shard for.
const shrinkMin = 256

// Len returns the number of clients tracked.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

// Sweep drops the buckets that are full again at now, which behave exactly
// like absent ones (at the rate of their last update), and returns how many
// it dropped. A shard that has shrunk to under a quarter of its peak size
// is compacted, returning the memory of a past flood of clients. Sweep
// locks one shard at a time.
func (l *Local) Sweep(now time.Time) int {
	t := now.UnixNano()
	dropped := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		dropped += s.sweep(t)
		s.compact()
		s.mu.Unlock()
	}
	return dropped
}

// Run calls Sweep(time.Now()) every interval until ctx is done, then
// returns. An every <= 0 means one minute. The caller owns the goroutine:
//
//	go l.Run(ctx, time.Minute)
func (l *Local) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			l.Sweep(time.Now())
		}
	}
}
