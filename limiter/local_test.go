package limiter_test

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/limiter"
)

// t0 is the instant tests step from.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

var client = limiter.AddrKey(netip.MustParseAddr("192.0.2.1"))

// v4 returns the key of the i-th IPv4 address from 10.0.0.0.
func v4(i int) limiter.ClientKey {
	return limiter.AddrKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
}

// step is one Allow call of a table test: at t0+at, at rate (the case's rate
// when zero), want the decision.
type step struct {
	at   time.Duration
	rate limiter.Rate
	want limiter.Decision
}

func ok(limit, remaining int, reset time.Duration) limiter.Decision {
	return limiter.Decision{Allowed: true, Limit: limit, Remaining: remaining, Reset: reset}
}

func no(limit, remaining int, retry, reset time.Duration) limiter.Decision {
	return limiter.Decision{Limit: limit, Remaining: remaining, RetryAfter: retry, Reset: reset}
}

func TestAllow(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name  string
		rate  limiter.Rate
		steps []step
	}{{
		name: "burst then refusal",
		rate: limiter.Rate{Limit: 3, Window: 3 * time.Second},
		steps: []step{
			{at: 0, want: ok(3, 2, 1*time.Second)},
			{at: 0, want: ok(3, 1, 2*time.Second)},
			{at: 0, want: ok(3, 0, 3*time.Second)},
			{at: 0, want: no(3, 0, 1*time.Second, 3*time.Second)},
			{at: 0, want: no(3, 0, 1*time.Second, 3*time.Second)},
		},
	}, {
		name: "continuous refill",
		rate: limiter.Rate{Limit: 3, Window: 3 * time.Second},
		steps: []step{
			{at: 0, want: ok(3, 2, 1*time.Second)},
			{at: 0, want: ok(3, 1, 2*time.Second)},
			{at: 0, want: ok(3, 0, 3*time.Second)},
			{at: 1 * time.Second, want: ok(3, 0, 3*time.Second)}, // Window/Limit later: one token
			{at: 1500 * ms, want: no(3, 0, 500*ms, 2500*ms)},     // half a token
			{at: 2 * time.Second, want: ok(3, 0, 3*time.Second)},
			{at: 4 * time.Second, want: ok(3, 1, 2*time.Second)},   // two tokens, one taken
			{at: 100 * time.Second, want: ok(3, 2, 1*time.Second)}, // full, no more
		},
	}, {
		name: "remaining and reset mid-bucket",
		rate: limiter.Rate{Limit: 10, Window: time.Second},
		steps: []step{
			{at: 0, want: ok(10, 9, 100*ms)},
			{at: 0, want: ok(10, 8, 200*ms)},
			{at: 0, want: ok(10, 7, 300*ms)},
			{at: 0, want: ok(10, 6, 400*ms)},
			{at: 0, want: ok(10, 5, 500*ms)},
			{at: 250 * ms, want: ok(10, 6, 350*ms)}, // 5+2.5-1 = 6.5 tokens
			{at: 600 * ms, want: ok(10, 9, 100*ms)}, // 6.5+3.5 = 10, capped, -1
			{at: 650 * ms, want: ok(10, 8, 150*ms)}, // 9+0.5-1 = 8.5
		},
	}, {
		name: "uneven refill rounds RetryAfter up, and waiting it suffices",
		rate: limiter.Rate{Limit: 3, Window: time.Second},
		steps: []step{
			{at: 0, want: ok(3, 2, 333333334)},
			{at: 0, want: ok(3, 1, 666666667)},
			{at: 0, want: ok(3, 0, time.Second)},
			{at: 0, want: no(3, 0, 333333334, time.Second)},
			// 1ns short of a token: 2.000000001 tokens short of full.
			{at: 333333333, want: no(3, 0, 1, 666666668)},
			{at: 333333334, want: ok(3, 0, time.Second)},
		},
	}, {
		name: "rate change takes effect at once",
		rate: limiter.Rate{Limit: 10, Window: time.Second},
		steps: []step{
			{at: 0, want: ok(10, 9, 100*ms)},
			{at: 0, want: ok(10, 8, 200*ms)},
			// 8 tokens clamped to the new capacity 5, one taken.
			{at: 0, rate: limiter.Rate{Limit: 5, Window: time.Second}, want: ok(5, 4, 200*ms)},
			// A larger capacity does not mint tokens: 4 held, one taken.
			{at: 0, want: ok(10, 3, 700*ms)},
			// A slower refill: 3 tokens of 10 per 10s.
			{at: 0, rate: limiter.Rate{Limit: 10, Window: 10 * time.Second}, want: ok(10, 2, 8*time.Second)},
			{at: time.Second, rate: limiter.Rate{Limit: 10, Window: 10 * time.Second}, want: ok(10, 2, 8*time.Second)},
		},
	}, {
		name: "time going backwards mints nothing",
		rate: limiter.Rate{Limit: 2, Window: 2 * time.Second},
		steps: []step{
			{at: 10 * time.Second, want: ok(2, 1, 1*time.Second)},
			{at: 10 * time.Second, want: ok(2, 0, 2*time.Second)},
			// now is 5s before the last update: no refill, durations from now.
			{at: 5 * time.Second, want: no(2, 0, 6*time.Second, 7*time.Second)},
			{at: 10 * time.Second, want: no(2, 0, 1*time.Second, 2*time.Second)},
			{at: 11 * time.Second, want: ok(2, 0, 2*time.Second)},
		},
	}, {
		name: "disabled rate",
		rate: limiter.Rate{Limit: 0, Window: time.Second},
		steps: []step{
			{at: 0, want: limiter.Decision{Allowed: true}},
			{at: 0, want: limiter.Decision{Allowed: true}},
			{at: 0, rate: limiter.Rate{Limit: 5}, want: limiter.Decision{Allowed: true, Limit: 5}},
			{at: 0, rate: limiter.Rate{Limit: -1, Window: time.Second}, want: limiter.Decision{Allowed: true, Limit: -1}},
			{at: 0, rate: limiter.Rate{Limit: 5, Window: -time.Second}, want: limiter.Decision{Allowed: true, Limit: 5}},
		},
	}, {
		name: "longest window saturates instead of wrapping",
		rate: limiter.Rate{Limit: 1, Window: math.MaxInt64},
		steps: []step{
			{at: 0, want: ok(1, 0, math.MaxInt64)},
			// An hour refills 419.4 of the 2^30 units of a token: the
			// durations are the exact Window-1h, plus 1ns of rounding up.
			{at: time.Hour, want: no(1, 0, math.MaxInt64-time.Hour+1, math.MaxInt64-time.Hour+1)},
		},
	}, {
		name: "huge limit and window",
		rate: limiter.Rate{Limit: 1 << 40, Window: 1 << 62},
		steps: []step{
			{at: 0, want: ok(1<<40, 1<<32-1, 1<<30)},
			{at: 1 << 62, want: ok(1<<40, 1<<32-1, 1<<30)},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limiter.NewLocal(limiter.Options{})
			for i, s := range tt.steps {
				r := s.rate
				if r == (limiter.Rate{}) {
					r = tt.rate
				}
				if got := l.Allow(client, r, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d: Allow(%v, %v, t0+%v) = %+v; want %+v", i, client, r, s.at, got, s.want)
				}
			}
		})
	}
}

// TestFrequentCallsLoseNoRefill is the regression test for refill rounding
// down on every call: a client asking every second for a token per hour
// lost 0.6 of a 2^-30 unit per call, 7ms over the hour. The time not yet
// turned into tokens is now carried over, so each call loses under 1ns.
func TestFrequentCallsLoseNoRefill(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{})
	r := limiter.Rate{Limit: 1, Window: time.Hour}
	l.Allow(client, r, t0)
	const calls = 3600
	for i := 1; i < calls; i++ {
		if d := l.Allow(client, r, t0.Add(time.Duration(i)*time.Second)); d.Allowed {
			t.Fatalf("allowed after %ds", i)
		}
	}
	d := l.Allow(client, r, t0.Add(time.Hour))
	if !d.Allowed && d.RetryAfter > calls*time.Nanosecond {
		t.Fatalf("an hour after the last token: RetryAfter = %v; want at most %v", d.RetryAfter, calls*time.Nanosecond)
	}
	if !d.Allowed {
		if d := l.Allow(client, r, t0.Add(time.Hour+d.RetryAfter)); !d.Allowed {
			t.Fatalf("refused after RetryAfter: %+v", d)
		}
	}
}

func TestAllowDisabledTouchesNoState(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{})
	l.Allow(client, limiter.Rate{}, t0)
	l.Allow(client, limiter.Rate{Limit: 1}, t0)
	if n := l.Len(); n != 0 {
		t.Errorf("Len() = %d after disabled Allow calls; want 0", n)
	}
}

func TestScopesAreSeparateBuckets(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{})
	r := limiter.Rate{Limit: 1, Window: time.Minute}
	authFail := client.WithScope(1)
	id := limiter.IDKey([16]byte{192, 0, 2, 1})
	for _, k := range []limiter.ClientKey{client, authFail, id} {
		if d := l.Allow(k, r, t0); !d.Allowed {
			t.Errorf("first Allow(%v) refused", k)
		}
	}
	for _, k := range []limiter.ClientKey{client, authFail, id} {
		if d := l.Allow(k, r, t0); d.Allowed {
			t.Errorf("second Allow(%v) allowed", k)
		}
	}
	if n := l.Len(); n != 3 {
		t.Errorf("Len() = %d; want 3", n)
	}
}

func TestIPv6SharesBucketPer64(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{})
	r := limiter.Rate{Limit: 1, Window: time.Minute}
	key := func(s string) limiter.ClientKey { return limiter.AddrKey(netip.MustParseAddr(s)) }
	if !l.Allow(key("2001:db8::1"), r, t0).Allowed {
		t.Fatal("2001:db8::1 refused")
	}
	if l.Allow(key("2001:db8::2"), r, t0).Allowed {
		t.Error("2001:db8::2 allowed; want it to share 2001:db8::1's bucket")
	}
	if !l.Allow(key("2001:db8:0:1::1"), r, t0).Allowed {
		t.Error("2001:db8:0:1::1 refused; want a bucket of its own")
	}
	if !l.Allow(key("::ffff:192.0.2.1"), r, t0).Allowed {
		t.Fatal("::ffff:192.0.2.1 refused")
	}
	if l.Allow(key("192.0.2.1"), r, t0).Allowed {
		t.Error("192.0.2.1 allowed; want it to share ::ffff:192.0.2.1's bucket")
	}
}

func TestSweep(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{})
	fast := limiter.Rate{Limit: 10, Window: time.Second} // full 100ms after one call
	slow := limiter.Rate{Limit: 1, Window: time.Hour}
	l.Allow(v4(1), fast, t0)
	l.Allow(v4(2), slow, t0)
	l.Allow(v4(3), fast, t0.Add(50*time.Millisecond))
	for _, tt := range []struct {
		at            time.Duration
		dropped, left int
	}{
		{at: 0, dropped: 0, left: 3},
		{at: 99 * time.Millisecond, dropped: 0, left: 3},
		{at: 100 * time.Millisecond, dropped: 1, left: 2},
		{at: 150 * time.Millisecond, dropped: 1, left: 1},
		{at: time.Hour - 1, dropped: 0, left: 1},
		{at: time.Hour, dropped: 1, left: 0},
	} {
		if got := l.Sweep(t0.Add(tt.at)); got != tt.dropped {
			t.Errorf("Sweep(t0+%v) = %d; want %d", tt.at, got, tt.dropped)
		}
		if got := l.Len(); got != tt.left {
			t.Errorf("after Sweep(t0+%v): Len() = %d; want %d", tt.at, got, tt.left)
		}
	}
	// A dropped bucket was full: the client starts full, as before.
	if d := l.Allow(v4(1), fast, t0.Add(time.Hour)); d != ok(10, 9, 100*time.Millisecond) {
		t.Errorf("Allow after Sweep = %+v", d)
	}
}

func TestSweepAfterFloodKeepsWorking(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{Shards: 4, MaxClients: 100_000})
	r := limiter.Rate{Limit: 5, Window: time.Second}
	for i := range 50_000 {
		l.Allow(v4(i), r, t0)
	}
	l.Allow(client, r, t0.Add(time.Second))
	if got := l.Sweep(t0.Add(time.Second)); got != 50_000 {
		t.Fatalf("Sweep = %d; want 50000", got)
	}
	if got := l.Len(); got != 1 {
		t.Fatalf("Len() = %d; want 1", got)
	}
	if d := l.Allow(client, r, t0.Add(time.Second)); d != ok(5, 3, 400*time.Millisecond) {
		t.Errorf("Allow after Sweep = %+v", d)
	}
}

func TestEvictionBound(t *testing.T) {
	const max = 10_000
	l := limiter.NewLocal(limiter.Options{MaxClients: max})
	r := limiter.Rate{Limit: 10, Window: time.Minute}
	for i := range 1_000_000 {
		l.Allow(v4(i), r, t0.Add(time.Duration(i)*time.Microsecond))
		if i%100_000 == 0 {
			if n := l.Len(); n > max {
				t.Fatalf("after %d keys: Len() = %d; want <= %d", i+1, n, max)
			}
		}
	}
	if n := l.Len(); n > max || n < max/2 {
		t.Errorf("Len() = %d; want <= %d (and near it)", n, max)
	}
}

func TestEvictionDropsFullBucketsFirst(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{Shards: 1, MaxClients: 4})
	r := limiter.Rate{Limit: 2, Window: time.Second}
	for i := range 4 {
		l.Allow(v4(i), r, t0)
	}
	l.Allow(v4(0), r, t0) // v4(0) is empty, the others are half full
	// At t0+500ms buckets 1..3 are full again and go; 0 holds one token.
	l.Allow(v4(9), r, t0.Add(500*time.Millisecond))
	if n := l.Len(); n != 2 {
		t.Errorf("Len() = %d; want 2", n)
	}
	if d := l.Allow(v4(0), r, t0.Add(500*time.Millisecond)); d != ok(2, 0, time.Second) {
		t.Errorf("v4(0) lost its state: %+v", d)
	}
}

func TestEvictionPrefersLeastRecentlyUpdated(t *testing.T) {
	// With one shard of 4 the sample (8) covers the whole shard, so the
	// least recently updated bucket is the one evicted.
	l := limiter.NewLocal(limiter.Options{Shards: 1, MaxClients: 4})
	r := limiter.Rate{Limit: 1, Window: time.Hour}
	for i := range 4 {
		l.Allow(v4(i), r, t0.Add(time.Duration(i)*time.Millisecond))
	}
	l.Allow(v4(0), r, t0.Add(4*time.Millisecond)) // refused, but now recent
	l.Allow(v4(9), r, t0.Add(5*time.Millisecond)) // evicts v4(1)
	if n := l.Len(); n != 4 {
		t.Errorf("Len() = %d; want 4", n)
	}
	// The survivors keep their empty buckets; v4(1) (checked last, since
	// its return evicts again) starts full.
	now := t0.Add(6 * time.Millisecond)
	for _, tt := range []struct {
		i       int
		allowed bool
	}{{0, false}, {2, false}, {3, false}, {9, false}, {1, true}} {
		if d := l.Allow(v4(tt.i), r, now); d.Allowed != tt.allowed {
			t.Errorf("Allow(%v).Allowed = %v; want %v", v4(tt.i), d.Allowed, tt.allowed)
		}
	}
}

func TestOptionsLayout(t *testing.T) {
	// More shards than clients: every shard still holds one, and the bound
	// holds.
	for _, o := range []limiter.Options{
		{Shards: 256, MaxClients: 3},
		{Shards: 3, MaxClients: 10},
		{Shards: 1 << 20, MaxClients: 1 << 20},
		{Shards: -1, MaxClients: -1},
	} {
		l := limiter.NewLocal(o)
		r := limiter.Rate{Limit: 1, Window: time.Hour}
		for i := range 1000 {
			l.Allow(v4(i), r, t0)
		}
		want := o.MaxClients
		if want <= 0 {
			want = 1000
		}
		if n := l.Len(); n > want || n == 0 {
			t.Errorf("%+v: Len() = %d; want 1..%d", o, n, want)
		}
	}
}

// TestConcurrentExactAdmits checks that, with a fixed now, exactly Limit
// calls are allowed however many goroutines race for one key.
func TestConcurrentExactAdmits(t *testing.T) {
	const (
		goroutines = 64
		calls      = 200
		limit      = 1000
	)
	l := limiter.NewLocal(limiter.Options{})
	r := limiter.Rate{Limit: limit, Window: time.Hour}
	var admits atomic.Int64
	var start, done sync.WaitGroup
	start.Add(1)
	for range goroutines {
		done.Go(func() {
			start.Wait()
			for range calls {
				if l.Allow(client, r, t0).Allowed {
					admits.Add(1)
				}
			}
		})
	}
	start.Done()
	done.Wait()
	if got := admits.Load(); got != limit {
		t.Errorf("%d goroutines x %d calls: %d admitted; want exactly %d", goroutines, calls, got, limit)
	}
}

func TestAllowNoAllocs(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{})
	r := limiter.Rate{Limit: 10, Window: time.Second}
	l.Allow(client, r, t0)
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		l.Allow(client, r, now)
	})
	if allocs != 0 {
		t.Errorf("Allow of an existing key: %v allocs per run; want 0", allocs)
	}
	addr := netip.MustParseAddr("2001:db8::1")
	allocs = testing.AllocsPerRun(1000, func() {
		l.Allow(limiter.AddrKey(addr).WithScope(2), r, now)
	})
	if allocs != 0 {
		t.Errorf("AddrKey+Allow: %v allocs per run; want 0", allocs)
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	l := limiter.NewLocal(limiter.Options{})
	// Full again long ago: the first sweep drops it.
	l.Allow(client, limiter.Rate{Limit: 1, Window: time.Second}, t0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.Run(ctx, time.Millisecond)
		close(done)
	}()
	deadline := time.After(10 * time.Second)
	for l.Len() != 0 {
		select {
		case <-deadline:
			t.Fatal("Run did not sweep within 10s")
		default:
			runtime.Gosched()
		}
	}
	cancel()
	<-done
}

// TestBytesPerClient reports the heap a tracked client costs.
func TestBytesPerClient(t *testing.T) {
	const n = 100_000
	perClient := bytesPerClient(n)
	t.Logf("%.1f B/client (%d clients, default shards)", perClient, n)
	if perClient > 200 {
		t.Errorf("%.1f B/client; want a compact layout (<= 200)", perClient)
	}
}

func bytesPerClient(n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := limiter.NewLocal(limiter.Options{})
	r := limiter.Rate{Limit: 10, Window: time.Minute}
	for i := range n {
		l.Allow(v4(i), r, t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if l.Len() != n {
		panic(fmt.Sprintf("Len() = %d; want %d", l.Len(), n))
	}
	runtime.KeepAlive(l)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}
