package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/ollamagw/ollama-gateway/redisstore"
)

// acquireScript takes a lease in a client's sorted set (member: lease id,
// score: expiry in Redis's own ms clock) if fewer than max unexpired leases
// are held. Expired leases (a replica that died holding them) are dropped
// first. ARGV: max, ttl ms, lease id. Returns 1 when taken.
const acquireScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`

// renewScript extends the leases ARGV[2..] (one per key KEYS[i]) by ARGV[1]
// ms from now, those that still exist only. Returns the positions (1-based)
// of the leases that did not exist any more: they expired while Redis could
// not be reached, or were released meanwhile.
const renewScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local missing = {}
for i, k in ipairs(KEYS) do
  if redis.call('ZSCORE', k, ARGV[i + 1]) then
    redis.call('ZADD', k, 'XX', now + ttl, ARGV[i + 1])
    if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
  else
    missing[#missing + 1] = i
  end
end
return missing
`

// restoreScript puts the leases ARGV[2..] (one per key KEYS[i]) back for
// ARGV[1] ms from now: requests still running whose leases expired while
// Redis could not be reached count again, even past the cap, so that the
// cap holds from then on as streams end. Returns nothing.
const restoreScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, now + ttl, ARGV[i + 1])
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
return 0
`

var (
	acquireLua = redisstore.NewScript(acquireScript)
	renewLua   = redisstore.NewScript(renewScript)
	restoreLua = redisstore.NewScript(restoreScript)
)

// RedisConcurrency is the Acquirer shared by gateway replicas: each slot is
// a lease in Redis with a TTL, renewed by Run every third of the TTL while
// the request holds it, so the slots of a replica that died (and cannot
// release them) come back after at most one TTL. Acquire is one round trip
// (a Lua script), Release one ZREM.
//
// When Redis cannot be reached, Acquire takes a slot of Fallback
// (FailOpen) or refuses (FailClosed). Create it with NewRedisConcurrency
// and run Run; safe for concurrent use.
type RedisConcurrency struct {
	store    *redisstore.Client
	mode     FailMode
	fallback Acquirer
	ttl      time.Duration
	owner    string // this replica's lease id prefix
	seq      atomic.Uint64

	mu   sync.Mutex
	held map[*lease]struct{} // leases to renew
}

// lease is one slot held in Redis.
type lease struct {
	c    *RedisConcurrency
	key  string // the client's sorted set
	id   string
	once atomic.Bool
}

var _ Acquirer = (*RedisConcurrency)(nil)

// NewRedisConcurrency returns a RedisConcurrency on store whose leases
// live ttl unless renewed (at least 100ms).
func NewRedisConcurrency(store *redisstore.Client, mode FailMode, fallback Acquirer, ttl time.Duration) *RedisConcurrency {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &RedisConcurrency{
		store: store, mode: mode, fallback: fallback, ttl: max(ttl, 100*time.Millisecond),
		owner: hex.EncodeToString(b[:]) + ":", held: map[*lease]struct{}{},
	}
}

// Acquire takes a lease for key if the client holds fewer than max across
// every replica. A max <= 0 means unlimited (nil, true). Every Slot
// returned with ok true must be released exactly once.
func (c *RedisConcurrency) Acquire(key ClientKey, max int) (*Slot, bool) {
	if max <= 0 {
		return nil, true
	}
	l := &lease{c: c, key: redisKey(c.store.Prefix(), "cc:", key), id: c.owner + strconv.FormatUint(c.seq.Add(1), 36)}
	ttl := strconv.FormatInt(c.ttl.Milliseconds(), 10)
	res, err := c.store.Run("acquire", acquireLua, []string{l.key}, []string{strconv.Itoa(max), ttl, l.id})
	if err != nil {
		if c.mode == FailOpen && c.fallback != nil {
			return c.fallback.Acquire(key, max)
		}
		return nil, false
	}
	if n, _ := res.AsInt64(); n != 1 {
		return nil, false
	}
	c.mu.Lock()
	c.held[l] = struct{}{}
	c.mu.Unlock()
	return &Slot{key: key, lease: l}, true
}

// release gives the lease back, once.
func (l *lease) release() {
	if l.once.Swap(true) {
		return
	}
	c := l.c
	c.mu.Lock()
	delete(c.held, l)
	c.mu.Unlock()
	// On failure the lease expires by itself within the TTL.
	_, _ = c.store.Do("release", func(b rueidis.Builder) rueidis.Completed {
		return b.Zrem().Key(l.key).Member(l.id).Build()
	})
}

// Held returns the number of leases this replica holds.
func (c *RedisConcurrency) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// Renew extends every lease held by one TTL, in one round trip. A lease
// that expired meanwhile (Redis could not be reached for a TTL) is put
// back while its request still holds it, in a second round trip under the
// lock that Release takes first, so that a lease released meanwhile is
// never resurrected.
func (c *RedisConcurrency) Renew() error {
	c.mu.Lock()
	held := make([]*lease, 0, len(c.held))
	keys := make([]string, 0, len(c.held))
	args := make([]string, 1, len(c.held)+1)
	ttl := strconv.FormatInt(c.ttl.Milliseconds(), 10)
	args[0] = ttl
	for l := range c.held {
		held = append(held, l)
		keys = append(keys, l.key)
		args = append(args, l.id)
	}
	c.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	missing, err := c.store.RunInts("renew", renewLua, keys, args)
	if err != nil || len(missing) == 0 {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	keys, args = keys[:0], args[:1]
	for _, i := range missing {
		if i < 1 || int(i) > len(held) {
			continue
		}
		if l := held[i-1]; c.has(l) {
			keys = append(keys, l.key)
			args = append(args, l.id)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err = c.store.Run("renew", restoreLua, keys, args)
	return err
}

// has reports whether l is still held; c.mu must be held.
func (c *RedisConcurrency) has(l *lease) bool {
	_, ok := c.held[l]
	return ok
}

// Run renews the held leases every third of the TTL until ctx is done.
// The caller owns the goroutine.
func (c *RedisConcurrency) Run(ctx context.Context) {
	t := time.NewTicker(c.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Renew()
		}
	}
}
