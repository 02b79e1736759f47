package limiter

import (
	"encoding/hex"
	"math/bits"
	"strconv"
	"time"

	"github.com/ollamagw/ollama-gateway/redisstore"
)

// rateScript is Local's token bucket, kept in one Redis hash per client and
// updated atomically. All numbers are integers below 2^53, so Lua's doubles
// hold them exactly:
//
//	tw   tokens × W (W: the window in units of u µs), 0..L×W
//	last the time tw is as of, Unix µs
//	w    the W tw was kept at (a new rate converts the tokens held)
//
// A call refills elapsed/u whole units × L (carrying the rest of the
// elapsed time in last, as Local carries nanoseconds), clamps to capacity,
// and takes W (one token) if it can. It returns {allowed, tw, last-now}.
// The hash expires when the bucket would be full again: absent = full.
const rateScript = `
local now = tonumber(ARGV[1])
local L = tonumber(ARGV[2])
local W = tonumber(ARGV[3])
local u = tonumber(ARGV[4])
local cap = L * W
local s = redis.call('HMGET', KEYS[1], 'tw', 'last', 'w')
local tw, last = cap, now
if s[1] then
  tw = tonumber(s[1])
  last = tonumber(s[2])
  local ow = tonumber(s[3])
  if ow ~= W then
    tw = math.floor(tw / ow) * W + math.floor((tw % ow) * W / ow)
  end
  if tw > cap then tw = cap end
  if now > last then
    local el = math.floor((now - last) / u)
    if tw == cap or el >= W or el * L >= cap - tw then
      tw = cap
      last = now
    else
      tw = tw + el * L
      last = last + el * u
    end
  end
end
local allowed = 0
if tw >= W then
  tw = tw - W
  allowed = 1
end
local ttl = math.ceil((cap - tw) / L) * u + (last - now)
redis.call('HSET', KEYS[1], 'tw', string.format('%.0f', tw), 'last', string.format('%.0f', last), 'w', string.format('%.0f', W))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(ttl / 1000)) + 1000)
return {allowed, tw, last - now}
`

var rateLua = redisstore.NewScript(rateScript)

// exact is the bound below which Lua's doubles hold integers exactly.
const exact = 1 << 53

// FailMode says what a limiter backed by a shared store does while the
// store cannot be reached.
type FailMode uint8

const (
	// FailOpen decides with this process's own limiter instead.
	FailOpen FailMode = iota
	// FailClosed refuses: Decision.Unavailable, or no concurrency slot.
	FailClosed
)

// Redis is the Limiter shared by gateway replicas: the token bucket of
// Local (bursts of Limit, refilled continuously over Window, the same
// Decision for the same calls), kept in Redis and updated by one Lua script
// per call (EVALSHA, one round trip), so every replica takes tokens from
// the same bucket. Time is the caller's, in microseconds (replicas' clocks
// should be NTP-synced; a clock behind the bucket's refills nothing, as in
// Local). Buckets expire in Redis once full again.
//
// The arithmetic is exact while Limit × Window in µs stays below 2^53
// (e.g. 100,000 requests a day); beyond, time is counted in coarser units
// (10 µs, 100 µs, ... up to 1 s), and if that is not enough the limit is
// lowered to fit (over 285 per second-granular year). Window is rounded
// down to a whole microsecond (at least 1).
//
// When Redis cannot be reached (redisstore.ErrUnavailable), the call is
// decided by Fallback (FailOpen) or refused with Unavailable (FailClosed).
// Safe for concurrent use.
type Redis struct {
	store    *redisstore.Client
	fallback Limiter
	mode     FailMode
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Redis limiter on store; fallback decides when the
// store is unreachable in FailOpen mode (typically a Local).
func NewRedis(store *redisstore.Client, mode FailMode, fallback Limiter) *Redis {
	return &Redis{store: store, fallback: fallback, mode: mode}
}

// Allow takes one token from key's shared bucket at rate r at time now. A
// Limit or Window <= 0 disables limiting and touches no state, as Local.
func (l *Redis) Allow(key ClientKey, r Rate, now time.Time) Decision {
	if r.Limit <= 0 || r.Window <= 0 {
		return Decision{Allowed: true, Limit: r.Limit}
	}
	lim, w, u := redisUnits(r)
	args := []string{
		strconv.FormatInt(now.UnixMicro(), 10),
		strconv.FormatInt(lim, 10),
		strconv.FormatInt(w, 10),
		strconv.FormatInt(u, 10),
	}
	res, err := l.store.RunInts("rate", rateLua, []string{redisKey(l.store.Prefix(), "rl:", key)}, args)
	if err != nil || len(res) != 3 {
		if l.mode == FailOpen && l.fallback != nil {
			return l.fallback.Allow(key, r, now)
		}
		return Decision{Limit: r.Limit, RetryAfter: time.Second, Reset: time.Second, Unavailable: true}
	}
	allowed, tw, off := res[0] == 1, res[1], res[2]*int64(time.Microsecond)
	// Durations in ns, rounded up, as Local: need units of tw refill at
	// lim per u µs.
	ns := func(need int64) int64 {
		hi, lo := bits.Mul64(uint64(need), uint64(u*1000))
		if hi >= uint64(lim) {
			return maxDuration
		}
		q, rem := bits.Div64(hi, lo, uint64(lim))
		if rem != 0 {
			q++
		}
		return int64(min(q, uint64(maxDuration)))
	}
	d := Decision{
		Allowed:   allowed,
		Limit:     r.Limit,
		Remaining: int(tw / w),
		Reset:     time.Duration(max(0, addSat(ns(lim*w-tw), off))),
	}
	if !allowed {
		d.RetryAfter = time.Duration(max(0, addSat(ns(w-tw), off)))
	}
	return d
}

const maxDuration = 1<<63 - 1

// redisUnits returns the limit, the window in units of u µs, and u, such
// that limit × window < 2^53.
func redisUnits(r Rate) (lim, w, u int64) {
	lim = int64(min(r.Limit, maxLimit))
	wus := max(r.Window.Microseconds(), 1)
	u = 1
	for lim*(wus/u) >= exact && u < 1_000_000 {
		u *= 10
	}
	w = max(wus/u, 1)
	if lim*w >= exact {
		lim = (exact - 1) / w
	}
	return lim, w, u
}

// redisKey returns the Redis key of k: prefix, kind, then the key's kind,
// scope and bytes in hex (an API key's ID is already a digest prefix, never
// the key).
func redisKey(prefix, kind string, k ClientKey) string {
	b := make([]byte, 0, len(prefix)+len(kind)+2*18+1)
	b = append(b, prefix...)
	b = append(b, kind...)
	b = hex.AppendEncode(b, []byte{k.kind, k.scope})
	b = append(b, ':')
	b = hex.AppendEncode(b, k.b[:])
	return string(b)
}
