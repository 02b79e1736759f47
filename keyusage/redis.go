package keyusage

import (
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/ollamagw/ollama-gateway/redisstore"
)

// chargeScript charges one request in one round trip: KEYS[1] is the key's
// totals hash, KEYS[2] (absent without a window) its window's hash, which
// expires when the window has ended. ARGV: prompt tokens, completion
// tokens, now in Unix ms, the window hash's TTL in ms. It returns the
// window's tokens after the charge (0 without a window).
const chargeScript = `
redis.call('HINCRBY', KEYS[1], 'r', 1)
redis.call('HINCRBY', KEYS[1], 'p', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'c', ARGV[2])
redis.call('HSET', KEYS[1], 'l', ARGV[3])
if #KEYS < 2 then return 0 end
redis.call('HINCRBY', KEYS[2], 'r', 1)
local p = redis.call('HINCRBY', KEYS[2], 'p', ARGV[1])
local c = redis.call('HINCRBY', KEYS[2], 'c', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return p + c
`

// readScript returns {requests, prompt, completion, last used ms} of
// KEYS[1] and {requests, prompt, completion} of KEYS[2] when given; a
// missing counter is 0.
const readScript = `
local out = {}
local t = redis.call('HMGET', KEYS[1], 'r', 'p', 'c', 'l')
for i = 1, 4 do out[i] = tonumber(t[i]) or 0 end
if #KEYS > 1 then
  local w = redis.call('HMGET', KEYS[2], 'r', 'p', 'c')
  for i = 1, 3 do out[4 + i] = tonumber(w[i]) or 0 end
end
return out
`

var (
	chargeLua = redisstore.NewScript(chargeScript)
	readLua   = redisstore.NewScript(readScript)
)

// ErrUnavailable is returned by Redis.Budget in closed mode while Redis
// cannot be reached.
var ErrUnavailable = errors.New("keyusage: the shared usage store is unavailable")

// Fresh is how long Redis.WindowTokens answers from the figure it last
// saw for a key (the reply to this replica's own last charge, or a read)
// before it reads the window again: charges made on other replicas in
// that span are seen late, so a budget may be overshot by what the other
// replicas spend in Fresh.
const Fresh = 200 * time.Millisecond

// Redis is a Store shared by gateway replicas: counters in Redis hashes
// (<prefix>ku:<id hex> for the totals, <prefix>kw:<id hex>:<window
// ns>:<start ns> for a budget window, expiring once the window ended),
// each charge one script run (EVALSHA, one round trip) whose reply, the
// window's fleet-wide tokens, is kept so that budget checks read Redis at
// most once per Fresh per key. Totals count since the key was first
// charged in this Redis, on any replica.
//
// While Redis cannot be reached, charges go to Fallback (so nothing is
// lost to this replica's counts) and, when open, budget checks add
// Fallback's window to the last figure seen; closed, Budget returns
// ErrUnavailable. Safe for concurrent use.
type Redis struct {
	store    *redisstore.Client
	fallback Store
	closed   bool

	mu    sync.RWMutex
	cache map[[16]byte]*seen
}

var _ Store = (*Redis)(nil)

// seen is the last window figure seen for a key.
type seen struct {
	mu     sync.Mutex
	window time.Duration
	start  time.Time // the window's start
	tokens int64
	at     time.Time // when it was seen
}

// NewRedis returns a Store on store; fallback (typically a *Memory)
// counts while Redis is unreachable; closed makes Budget refuse then.
func NewRedis(store *redisstore.Client, fallback Store, closed bool) *Redis {
	return &Redis{store: store, fallback: fallback, closed: closed, cache: make(map[[16]byte]*seen)}
}

// keys returns the Redis keys of id: totals, and the window's when w > 0.
func (s *Redis) keys(id [16]byte, w time.Duration, now time.Time) []string {
	h := hex.EncodeToString(id[:])
	p := s.store.Prefix()
	if w <= 0 {
		return []string{p + "ku:" + h}
	}
	start := WindowStart(now, w)
	return []string{p + "ku:" + h, p + "kw:" + h + ":" + strconv.FormatInt(int64(w), 10) + ":" + strconv.FormatInt(start.UnixNano(), 10)}
}

// note keeps tokens as the figure of id's window holding now, unless a
// larger one of the same window is already kept (counts only grow).
func (s *Redis) note(id [16]byte, w time.Duration, now time.Time, tokens int64) {
	s.mu.RLock()
	e := s.cache[id]
	s.mu.RUnlock()
	if e == nil {
		s.mu.Lock()
		if e = s.cache[id]; e == nil {
			e = new(seen)
			s.cache[id] = e
		}
		s.mu.Unlock()
	}
	start := WindowStart(now, w)
	e.mu.Lock()
	if e.window != w || !e.start.Equal(start) || tokens >= e.tokens {
		e.window, e.start, e.tokens = w, start, tokens
	}
	e.at = now
	e.mu.Unlock()
}

// cached returns the figure kept for id's window holding now, and whether
// it is younger than Fresh; 0 when none is kept for that window.
func (s *Redis) cached(id [16]byte, w time.Duration, now time.Time) (int64, bool) {
	s.mu.RLock()
	e := s.cache[id]
	s.mu.RUnlock()
	if e == nil {
		return 0, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.window != w || !e.start.Equal(WindowStart(now, w)) {
		return 0, false
	}
	return e.tokens, now.Sub(e.at) < Fresh && !now.Before(e.at)
}

// Charge implements Store: one round trip; on failure the charge goes to
// the fallback.
func (s *Redis) Charge(id [16]byte, window time.Duration, prompt, completion int64, now time.Time) {
	ttl := int64(1)
	if window > 0 {
		ttl = max(1, WindowStart(now, window).Add(window).Sub(now).Milliseconds()) + 1000
	}
	res, err := s.store.Run("usage-charge", chargeLua, s.keys(id, window, now), []string{
		strconv.FormatInt(prompt, 10), strconv.FormatInt(completion, 10),
		strconv.FormatInt(now.UnixMilli(), 10), strconv.FormatInt(ttl, 10),
	})
	var tokens int64
	if err == nil {
		tokens, err = res.AsInt64()
	}
	if err != nil {
		s.fallback.Charge(id, window, prompt, completion, now)
		return
	}
	if window > 0 {
		s.note(id, window, now, tokens)
	}
}

// read returns the counters of id at now from Redis.
func (s *Redis) read(id [16]byte, window time.Duration, now time.Time) (Usage, error) {
	v, err := s.store.RunInts("usage-read", readLua, s.keys(id, window, now), nil)
	if err != nil {
		return Usage{}, err
	}
	if len(v) < 4 || (window > 0 && len(v) < 7) {
		return Usage{}, errors.New("keyusage: unexpected reply")
	}
	u := Usage{Total: Totals{Requests: v[0], PromptTokens: v[1], CompletionTokens: v[2]}}
	if v[3] > 0 {
		u.LastUsed = time.UnixMilli(v[3])
	}
	if window > 0 {
		u.Window = Totals{Requests: v[4], PromptTokens: v[5], CompletionTokens: v[6]}
		u.WindowStart = WindowStart(now, window)
		s.note(id, window, now, u.Window.Tokens())
	}
	return u, nil
}

// Budget returns the fleet-wide tokens key id has spent in its window at
// now and when the window ends, from the figure seen within Fresh, else
// from one read. While Redis is unreachable: open, the last figure seen
// plus the fallback's; closed, ErrUnavailable.
func (s *Redis) Budget(id [16]byte, window time.Duration, now time.Time) (int64, time.Time, error) {
	ends := WindowStart(now, window).Add(window)
	tokens, fresh := s.cached(id, window, now)
	if fresh {
		return tokens, ends, nil
	}
	u, err := s.read(id, window, now)
	if err == nil {
		return u.Window.Tokens(), ends, nil
	}
	if s.closed {
		return 0, ends, ErrUnavailable
	}
	local, _ := s.fallback.WindowTokens(id, window, now)
	return tokens + local, ends, nil
}

// WindowTokens implements Store: Budget, with an unreachable Redis in
// closed mode counted as a spent budget.
func (s *Redis) WindowTokens(id [16]byte, window time.Duration, now time.Time) (int64, time.Time) {
	tokens, ends, err := s.Budget(id, window, now)
	if err != nil {
		return 1<<63 - 1, ends
	}
	return tokens, ends
}

// Usage implements Store: the fleet-wide counters, read from Redis; the
// fallback's while Redis is unreachable.
func (s *Redis) Usage(id [16]byte, window time.Duration, now time.Time) Usage {
	u, err := s.read(id, window, now)
	if err != nil {
		return s.fallback.Usage(id, window, now)
	}
	if window <= 0 {
		u.WindowStart = time.Time{}
	}
	return u
}
