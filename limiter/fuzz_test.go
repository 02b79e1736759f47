package limiter_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/limiter"
)

// FuzzAllow drives one key through a sequence of calls at a fixed rate, the
// clock moving by arbitrary steps (some backwards), and checks the bucket's
// promises: admissions never exceed Limit plus what the time elapsed
// refills, the decision's numbers are in range, and a call made RetryAfter
// later is allowed.
func FuzzAllow(f *testing.F) {
	f.Add(3, int64(time.Second), []byte{0, 0, 0, 0, 1, 200, 7})
	f.Add(10, int64(time.Minute), []byte{255, 0, 128, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Add(1, int64(1), []byte{1, 1, 1, 0, 0})
	f.Add(7, int64(3*time.Second+1), []byte{100, 50, 25, 12, 6, 3, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, limit int, window int64, steps []byte) {
		if limit <= 0 || limit > 1000 || window <= 0 || window > int64(time.Hour) {
			t.Skip()
		}
		r := limiter.Rate{Limit: limit, Window: time.Duration(window)}
		l := limiter.NewLocal(limiter.Options{Shards: 1, MaxClients: 1})
		now := t0
		var first, latest time.Time // the bucket's start, and the clock's maximum
		admitted := 0
		for i, s := range steps {
			// A step moves the clock by s-16 (in units of Window/64):
			// mostly forwards, sometimes backwards.
			now = now.Add(time.Duration(int64(s)-16) * time.Duration(window) / 64)
			if i == 0 {
				first, latest = now, now
			}
			if now.After(latest) {
				latest = now
			}
			d := l.Allow(client, r, now)
			if d.Allowed {
				admitted++
			}
			// admitted <= limit + elapsed*limit/window, exactly.
			elapsed := latest.Sub(first)
			bound := new(big.Int).Mul(big.NewInt(int64(elapsed)), big.NewInt(int64(limit)))
			bound.Quo(bound, big.NewInt(window))
			bound.Add(bound, big.NewInt(int64(limit)))
			if big.NewInt(int64(admitted)).Cmp(bound) > 0 {
				t.Fatalf("%d admitted in %v at %v; at most %v allowed", admitted, elapsed, r, bound)
			}
			if d.Limit != limit || d.Remaining < 0 || d.Remaining >= limit || d.Reset < 0 || d.RetryAfter < 0 {
				t.Fatalf("decision out of range: %+v", d)
			}
			if d.Allowed != (d.RetryAfter == 0) {
				t.Fatalf("Allowed = %v with RetryAfter = %v", d.Allowed, d.RetryAfter)
			}
			if !d.Allowed {
				// Waiting RetryAfter suffices.
				now = now.Add(d.RetryAfter)
				if now.After(latest) {
					latest = now
				}
				if d2 := l.Allow(client, r, now); !d2.Allowed {
					t.Fatalf("refused again after waiting RetryAfter %v: %+v", d.RetryAfter, d2)
				}
				admitted++
			}
		}
	})
}
