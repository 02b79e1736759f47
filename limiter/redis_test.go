package limiter

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/redistest"
	"github.com/ollamagw/ollama-gateway/redisstore"
)

func newStore(t testing.TB, url string) *redisstore.Client {
	t.Helper()
	s, err := redisstore.New(redisstore.Options{URL: url, KeyPrefix: "t:", Timeout: 200 * time.Millisecond, Backoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestRedisMatchesLocal drives Local and Redis through the same calls at
// the same instants and wants the same Decisions: bursts, refill, rate
// changes, time going backwards. Instants lie on a 15.625 ms grid (× the
// window in seconds), where Local's fixed point is exact, so both must
// agree to the nanosecond.
func TestRedisMatchesLocal(t *testing.T) {
	srv := redistest.Start(t)
	store := newStore(t, srv.URL())
	rates := []Rate{{5, time.Second}, {3, time.Second}, {10, 2 * time.Second}, {1, time.Second}, {7, 4 * time.Second}}
	base := time.Unix(1_800_000_000, 0)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		local, shared := NewLocal(Options{}), NewRedis(store, FailClosed, nil)
		key := IDKey([16]byte{byte(seed), 1})
		now := base.Add(time.Duration(seed) * time.Hour)
		r := rates[rng.IntN(len(rates))]
		for step := range 60 {
			if rng.IntN(10) == 0 {
				r = rates[rng.IntN(len(rates))]
			}
			grid := 15625 * time.Microsecond * 4 // the largest window's grid
			switch rng.IntN(6) {
			case 0: // same instant: a burst
			case 1:
				now = now.Add(-grid * time.Duration(rng.IntN(3))) // backwards
			default:
				now = now.Add(grid * time.Duration(rng.IntN(20)))
			}
			want := local.Allow(key, r, now)
			got := shared.Allow(key, r, now)
			if got != want {
				t.Fatalf("seed %d step %d rate %v at +%v:\n got %+v\nwant %+v", seed, step, r, now.Sub(base), got, want)
			}
		}
	}
}

func TestRedisDisabledRate(t *testing.T) {
	l := NewRedis(nil, FailClosed, nil) // never reaches the store
	if d := l.Allow(IDKey([16]byte{1}), Rate{}, time.Now()); !d.Allowed {
		t.Errorf("Allow with a zero rate = %+v; want allowed", d)
	}
}

// TestRedisScriptReloaded: after SCRIPT FLUSH (what a restart does),
// EVALSHA answers NOSCRIPT and the call still works.
func TestRedisScriptReloaded(t *testing.T) {
	srv := redistest.Start(t)
	store := newStore(t, srv.URL())
	l := NewRedis(store, FailClosed, nil)
	r := Rate{2, time.Minute}
	now := time.Now()
	for i, want := range []bool{true, true, false} {
		if i == 1 {
			if err := store.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if d := l.Allow(IDKey([16]byte{9}), r, now); d.Allowed != want || d.Unavailable {
			t.Fatalf("call %d: %+v; want Allowed %v", i, d, want)
		}
	}
}

// TestRedisFailModes: with Redis gone, open decides locally and closed
// refuses with Unavailable; both answer within the timeout, and shared
// limits apply again once Redis is back.
func TestRedisFailModes(t *testing.T) {
	srv := redistest.Start(t)
	store := newStore(t, srv.URL())
	r := Rate{1, time.Minute}
	key := IDKey([16]byte{7})
	open := NewRedis(store, FailOpen, NewLocal(Options{}))
	closed := NewRedis(store, FailClosed, nil)
	if d := closed.Allow(key, r, time.Now()); !d.Allowed {
		t.Fatalf("first call: %+v; want allowed", d)
	}
	srv.Stop()
	start := time.Now()
	if d := closed.Allow(key, r, time.Now()); d.Allowed || !d.Unavailable {
		t.Errorf("closed, Redis down: %+v; want Unavailable", d)
	}
	if d := open.Allow(key, r, time.Now()); !d.Allowed || d.Unavailable {
		t.Errorf("open, Redis down: %+v; want allowed by the local fallback", d)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("calls with Redis down took %v; want under the timeout", el)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := closed.Allow(key, r, time.Now())
		if !d.Unavailable {
			if !d.Allowed {
				t.Errorf("after restart: %+v; want a fresh (allowed) bucket", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("limits did not resume within 5s of Redis coming back")
		}
		time.Sleep(10 * time.Millisecond) // the breaker's backoff has no signal
	}
	if d := closed.Allow(key, r, time.Now()); d.Allowed {
		t.Errorf("second call after restart: %+v; want refused (shared bucket again)", d)
	}
}

func TestRedisConcurrencyLeases(t *testing.T) {
	srv := redistest.Start(t)
	a := NewRedisConcurrency(newStore(t, srv.URL()), FailClosed, nil, 300*time.Millisecond)
	b := NewRedisConcurrency(newStore(t, srv.URL()), FailClosed, nil, 300*time.Millisecond)
	key := IDKey([16]byte{3})
	s1, ok1 := a.Acquire(key, 2)
	s2, ok2 := b.Acquire(key, 2)
	_, ok3 := a.Acquire(key, 2)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire on A, B, A with max 2: %v %v %v; want true true false", ok1, ok2, ok3)
	}
	s1.Release()
	s1.Release() // a second release is a no-op for a lease
	s3, ok := b.Acquire(key, 2)
	if !ok {
		t.Fatal("acquire after a release: refused")
	}
	// B "dies" holding s2 and s3 (no renewal): the slots come back after
	// the TTL. A renews its own.
	_ = s2
	_ = s3
	if _, ok := a.Acquire(key, 2); ok {
		t.Fatal("third slot granted while B holds two")
	}
	var s4 *Slot
	deadline := time.Now().Add(3 * time.Second)
	for {
		if s4, ok = a.Acquire(key, 2); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a dead replica's slots did not come back after the lease TTL")
		}
		time.Sleep(20 * time.Millisecond) // expiry is Redis's clock, no signal
	}
	// A's lease survives past its TTL while Run renews it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	time.Sleep(700 * time.Millisecond) // over two TTLs
	cancel()
	<-done
	_ = s4
	if got := srv.Command("ZCARD t:cc:0400:03000000000000000000000000000000"); got != ":1" {
		t.Errorf("ZCARD after renew = %s; want :1", got)
	}
}

// TestRedisConcurrencyLeaseRestored: a lease that expired while its
// request still ran (Redis could not be reached for a TTL, here the key
// deleted) is put back by the next renewal, so another replica does not
// take the slot; a released lease is never put back.
func TestRedisConcurrencyLeaseRestored(t *testing.T) {
	srv := redistest.Start(t)
	a := NewRedisConcurrency(newStore(t, srv.URL()), FailClosed, nil, time.Minute)
	b := NewRedisConcurrency(newStore(t, srv.URL()), FailClosed, nil, time.Minute)
	key := IDKey([16]byte{5})
	const set = "t:cc:0400:05000000000000000000000000000000"
	s, ok := a.Acquire(key, 1)
	if !ok {
		t.Fatal("first acquire refused")
	}
	if got := srv.Command("ZCARD " + set); got != ":1" {
		t.Fatalf("ZCARD = %s; want :1 (is the key name right?)", got)
	}
	srv.Command("DEL " + set) // the lease expired during an outage
	if err := a.Renew(); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if got := srv.Command("ZCARD " + set); got != ":1" {
		t.Errorf("ZCARD after the renewal = %s; want :1, the running request's lease back", got)
	}
	if _, ok := b.Acquire(key, 1); ok {
		t.Error("another replica took the slot of a request still running")
	}
	s.Release()
	if err := a.Renew(); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if got := srv.Command("ZCARD " + set); got != ":0" {
		t.Errorf("ZCARD after release and renewal = %s; want :0 (a released lease put back)", got)
	}
	if _, ok := b.Acquire(key, 1); !ok {
		t.Error("the released slot was not free for another replica")
	}
}
