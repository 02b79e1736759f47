package gateway

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/internal/redistest"
)

// replicas starts two gateways in front of fake sharing the Redis at url,
// with the rate limit rl and redis settings adjusted by mutate (may be nil).
func replicas(t *testing.T, url string, rl config.RateLimit, mutate func(*config.Redis), fake string) (a, b *testGateway) {
	t.Helper()
	set := func(c *config.Config) {
		c.RateLimit = rl
		c.Redis = &config.Redis{URL: url, KeyPrefix: "test:", FailMode: "open", TimeoutMilliseconds: 2000, LeaseMilliseconds: 30000}
		if mutate != nil {
			mutate(c.Redis)
		}
	}
	return startGateway(t, set, fake), startGateway(t, set, fake)
}

// TestReplicasShareRateLimit: one client alternating between two replicas,
// 64 requests at a time, gets exactly maxRequests per window in all, and
// the X-RateLimit-* headers count down across both.
func TestReplicasShareRateLimit(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t)
	const limit = 50
	a, b := replicas(t, srv.URL(), config.RateLimit{Enabled: true, MaxRequests: limit, TimeWindowSeconds: 3600, AuthFailuresPerMinute: 10}, nil, fake.URL)
	for i, gw := range []*testGateway{a, b, a} {
		resp, body := do(t, gw.URL, "GET", "/api/version", "Bearer "+testKey, nil)
		if want := []string{"49", "48", "47"}[i]; resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != want || resp.Header.Get("X-RateLimit-Limit") != "50" {
			t.Fatalf("request %d: %d %s Limit %q Remaining %q; want 200, 50, %s", i, resp.StatusCode, body,
				resp.Header.Get("X-RateLimit-Limit"), resp.Header.Get("X-RateLimit-Remaining"), want)
		}
	}
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 4 {
				gw := a
				if (g+i)%2 == 1 {
					gw = b
				}
				resp, _ := do(t, gw.URL, "GET", "/api/version", "Bearer "+testKey, nil)
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After")
					}
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit-3 || limited.Load() != 256-(limit-3) {
		t.Errorf("admitted %d, limited %d across two replicas; want exactly %d and %d", ok.Load(), limited.Load(), limit-3, 256-(limit-3))
	}
}

// TestReplicasShareConcurrency: a stream held through A takes the client's
// only slot on B too.
func TestReplicasShareConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t, ollamatest.WithPaced())
	a, b := replicas(t, srv.URL(), config.RateLimit{Enabled: true, MaxRequests: 1000, TimeWindowSeconds: 60, MaxConcurrent: 1, AuthFailuresPerMinute: 10}, nil, fake.URL)
	fake.Release()
	resp, err := httpClient().Post(a.URL+"/api/chat", "application/json",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r2, body := do(t, b.URL, "GET", "/api/version", "Bearer "+testKey, nil); r2.StatusCode != 429 || !strings.Contains(body, "concurrent") {
		t.Errorf("request on B while A streams: %d %s; want 429 too many concurrent requests", r2.StatusCode, body)
	}
	for range 5 {
		fake.Release()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	eventually(t, "A's lease released", func() bool { return a.gw.conc.Len() == 0 })
	if r3, body := do(t, b.URL, "GET", "/api/version", "Bearer "+testKey, nil); r3.StatusCode != 200 {
		t.Errorf("on B after A's stream ended: %d %s; want 200", r3.StatusCode, body)
	}
}

// TestReplicaDeathReleasesSlots: a replica that stops renewing (it died)
// while holding the client's slot: the slot comes back after the lease
// TTL.
func TestReplicaDeathReleasesSlots(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t, ollamatest.WithPaced())
	a, b := replicas(t, srv.URL(), config.RateLimit{Enabled: true, MaxRequests: 1000, TimeWindowSeconds: 60, MaxConcurrent: 1, AuthFailuresPerMinute: 10},
		func(r *config.Redis) { r.LeaseMilliseconds = 300 }, fake.URL)
	fake.Release()
	resp, err := httpClient().Post(a.URL+"/api/chat", "application/json",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for range 5 {
			fake.Release()
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	// Held and renewed: still refused after more than one TTL.
	time.Sleep(400 * time.Millisecond) // the lease TTL; expiry has no signal
	if r, body := do(t, b.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 429 {
		t.Fatalf("on B while A holds (and renews) the slot: %d %s; want 429", r.StatusCode, body)
	}
	// A "dies": it stops renewing and never talks to Redis again.
	s := a.gw.conc.shared.Load()
	s.stop()
	<-s.done
	s.store.Close()
	start := time.Now()
	eventually(t, "the dead replica's slot comes back", func() bool {
		r, _ := do(t, b.URL, "GET", "/api/version", "Bearer "+testKey, nil)
		return r.StatusCode == 200
	})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("slot came back after %v; want about one lease TTL (300ms)", el)
	}
}

// TestReplicasRedisDown: with Redis killed, "closed" answers 503 and
// "open" admits under the replica's own limits, neither past the timeout;
// shared limits resume once Redis is back.
func TestReplicasRedisDown(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t)
			fake := ollamatest.New(t)
			a, b := replicas(t, srv.URL(), config.RateLimit{Enabled: true, MaxRequests: 2, TimeWindowSeconds: 3600, AuthFailuresPerMinute: 10},
				func(r *config.Redis) { r.FailMode = mode; r.TimeoutMilliseconds = 50 }, fake.URL)
			do(t, a.URL, "GET", "/api/version", "Bearer "+testKey, nil)
			srv.Stop()
			wantDown := map[string]int{"closed": 503, "open": 200}[mode]
			for i := range 3 {
				start := time.Now()
				r, body := do(t, b.URL, "GET", "/api/version", "Bearer "+testKey, nil)
				if el := time.Since(start); el > time.Second {
					t.Errorf("request %d with Redis down took %v; want under a second", i, el)
				}
				if i < 2 && r.StatusCode != wantDown {
					t.Errorf("request %d with Redis down: %d %s; want %d", i, r.StatusCode, body, wantDown)
				}
				if mode == "closed" && r.Header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
				if mode == "open" && i == 2 && r.StatusCode != 429 {
					t.Errorf("3rd request on B with Redis down, open: %d; want 429 from B's own limit of 2", r.StatusCode)
				}
			}
			srv.Restart() // empty: the shared bucket starts full
			// Each replica tries Redis again once its backoff (10 ×
			// the timeout) is over.
			eventually(t, "both replicas' backoff over", func() bool {
				return a.gw.conc.shared.Load().store.Available() && b.gw.conc.shared.Load().store.Available()
			})
			if r, _ := do(t, a.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "1" {
				t.Errorf("on A after Redis is back: %d Remaining %q; want 200 and 1 (a fresh shared bucket)", r.StatusCode, r.Header.Get("X-RateLimit-Remaining"))
			}
			if r, _ := do(t, b.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("on B after Redis is back: %d Remaining %q; want 200 and 0 (one shared bucket)", r.StatusCode, r.Header.Get("X-RateLimit-Remaining"))
			}
			if r, _ := do(t, a.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 429 {
				t.Errorf("third shared request: %d; want 429", r.StatusCode)
			}
		})
	}
}

// TestReloadAddsAndRemovesRedis: a reload that adds the redis block makes
// the limits shared; one that removes it makes them local again.
func TestReloadAddsAndRemovesRedis(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t)
	rl := config.RateLimit{Enabled: true, MaxRequests: 1, TimeWindowSeconds: 3600, AuthFailuresPerMinute: 10}
	a := startGateway(t, func(c *config.Config) { c.RateLimit = rl }, fake.URL)
	b := startGateway(t, func(c *config.Config) {
		c.RateLimit = rl
		c.Redis = &config.Redis{URL: srv.URL(), KeyPrefix: "test:", FailMode: "closed", TimeoutMilliseconds: 100, LeaseMilliseconds: 30000}
	}, fake.URL)
	if r, _ := do(t, a.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 200 {
		t.Fatalf("A alone: %d", r.StatusCode)
	}
	cfg := *b.gw.Snapshot().Config
	if _, err := a.gw.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	if r, _ := do(t, b.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 200 {
		t.Fatalf("B: %d; want 200 (shared bucket still full)", r.StatusCode)
	}
	if r, _ := do(t, a.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 429 {
		t.Errorf("A after the reload added redis: %d; want 429 (B took the shared token)", r.StatusCode)
	}
	local := *a.gw.Snapshot().Config
	local.Redis = nil
	if _, err := a.gw.apply(&local); err != nil {
		t.Fatal(err)
	}
	if a.gw.conc.shared.Load() != nil {
		t.Error("redis still in use after a reload removed it")
	}
	if r, _ := do(t, a.URL, "GET", "/api/version", "Bearer "+testKey, nil); r.StatusCode != 429 {
		t.Errorf("A after the reload removed redis: %d; want 429 (its own bucket, spent before)", r.StatusCode)
	}
}
