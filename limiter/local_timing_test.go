package limiter

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks take time as a parameter: each goroutine advances its own
// clock by benchStep per call instead of calling time.Now, which costs about
// as much as Allow itself (see BenchmarkTimeNow). One step refills exactly
// the token a call takes, so a single goroutine is always allowed, as most
// requests are; two goroutines on one key are refused about half the time.

var benchRate = Rate{Limit: 100, Window: time.Second}

const benchStep = 10 * time.Millisecond

// benchKeys returns n distinct IPv4 keys; n is a power of two.
func benchKeys(n int) []ClientKey {
	keys := make([]ClientKey, n)
	for i := range keys {
		keys[i] = AddrKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	return keys
}

func BenchmarkLimiterAllow(b *testing.B) {
	for _, n := range []int{1, 1 << 10, 1 << 16} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			l := NewLocal(Options{})
			keys := benchKeys(n)
			now := time.Now()
			for _, k := range keys { // the clients are known: no growth in the loop
				l.Allow(k, benchRate, now)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				now = now.Add(benchStep)
				l.Allow(keys[i&(n-1)], benchRate, now)
				i++
			}
		})
	}
}

// BenchmarkLimiterAllowParallel calls Allow from GOMAXPROCS goroutines, each
// with its own clock, on one key and on many, beside the same buckets under
// one global mutex. The loops call Allow directly: a func value would add an
// indirect call and a copy of the key to every iteration.
func BenchmarkLimiterAllowParallel(b *testing.B) {
	run := func(b *testing.B, n int) {
		l := NewLocal(Options{})
		keys, start := benchKeys(n), time.Now()
		for _, k := range keys { // the clients are known: no growth in the loop
			l.Allow(k, benchRate, start)
		}
		var seq atomic.Uint32
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(7919)) // goroutines start at different keys
			now := start
			for pb.Next() {
				now = now.Add(benchStep)
				l.Allow(keys[i&(n-1)], benchRate, now)
				i++
			}
		})
	}
	baseline := func(b *testing.B, n int) {
		g := &globalMutex{m: make(map[ClientKey]bucket)}
		keys, start := benchKeys(n), time.Now()
		for _, k := range keys {
			g.allow(k, benchRate, start)
		}
		var seq atomic.Uint32
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(7919))
			now := start
			for pb.Next() {
				now = now.Add(benchStep)
				g.allow(keys[i&(n-1)], benchRate, now)
				i++
			}
		})
	}
	b.Run("hot-key", func(b *testing.B) { run(b, 1) })
	for _, n := range []int{1 << 10, 1 << 16} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) { run(b, n) })
		b.Run(fmt.Sprintf("keys=%d/global-mutex-baseline", n), func(b *testing.B) { baseline(b, n) })
	}
}

// globalMutex is the baseline Local is measured against: the same buckets
// under one mutex and one map for every client, as in oxy's ratelimit.
type globalMutex struct {
	mu sync.Mutex
	m  map[ClientKey]bucket
}

func (g *globalMutex) allow(key ClientKey, r Rate, now time.Time) {
	capacity := int64(r.Limit) << unitShift
	t := now.UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	bk, ok := g.m[key]
	if !ok {
		bk = bucket{tokens: capacity, last: t}
	}
	bk.advance(t, capacity, int64(r.Window))
	if bk.tokens >= unit {
		bk.tokens -= unit
	}
	g.m[key] = bk
}

// BenchmarkLimiterNewClients measures admitting clients never seen before
// into a full table, as in a flood of addresses: each call evicts.
func BenchmarkLimiterNewClients(b *testing.B) {
	l := NewLocal(Options{MaxClients: 100_000})
	keys := benchKeys(1 << 20)
	now := time.Now()
	for _, k := range keys[:200_000] {
		l.Allow(k, benchRate, now)
	}
	b.ReportAllocs()
	i := 200_000
	for b.Loop() {
		now = now.Add(time.Nanosecond)
		l.Allow(keys[i&(len(keys)-1)], benchRate, now)
		i++
	}
}

// BenchmarkLimiterMemory reports the heap one tracked client costs
// (HeapAlloc growth over 100,000 new clients, default options).
func BenchmarkLimiterMemory(b *testing.B) {
	const n = 100_000
	keys := benchKeys(1 << 17)[:n]
	var perClient float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := NewLocal(Options{})
		now := time.Now()
		for _, k := range keys {
			l.Allow(k, benchRate, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(l)
		perClient = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	}
	b.ReportMetric(perClient, "B/client")
}

// BenchmarkConcurrencyAcquireRelease takes and returns a slot per call, over
// 1024 clients that hold nothing in between (so each Acquire allocates the
// client's Slot), and for one client that keeps holding a slot.
func BenchmarkConcurrencyAcquireRelease(b *testing.B) {
	run := func(b *testing.B, c *Concurrency, keys []ClientKey) {
		var seq atomic.Uint32
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(7919))
			for pb.Next() {
				s, _ := c.Acquire(keys[i&(len(keys)-1)], 1<<20)
				s.Release()
				i++
			}
		})
	}
	b.Run("idle-clients", func(b *testing.B) {
		run(b, NewConcurrency(Options{}), benchKeys(1<<10))
	})
	b.Run("holding-client", func(b *testing.B) {
		c := NewConcurrency(Options{})
		keys := benchKeys(1)
		held, _ := c.Acquire(keys[0], 1<<20)
		defer held.Release()
		run(b, c, keys)
	})
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}
