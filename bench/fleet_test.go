package bench

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/bench/fastollama"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
)

// Fleet workload: three fake Ollamas with Ollama's scheduler (2 parallel
// requests per model, 2 models loaded at most, a 400 ms load), each
// serving the three models and starting with one of them loaded; 120 chat
// streams of 20 tokens 10 ms apart from 12 concurrent clients over 3 API
// keys, half for m1, 30 % for m2, 20 % for m3. The same workload goes
// through the gateway (fleet scheduling, maxConcurrent 4 per backend) and
// through a plain round-robin reverse proxy, in the same run.
const (
	fleetRequests    = 600
	fleetConcurrency = 12
	fleetLoadDelay   = 400 * time.Millisecond
	fleetQuery       = "?tokens=20&gap=10ms"
)

var fleetModels = []string{"m1:latest", "m2:latest", "m3:latest"}

// startFleet runs the three backends; it returns their addresses and
// their schedulers (for the load counts).
func startFleet(b *testing.B) ([]string, []*scheduler.Scheduler) {
	b.Helper()
	var addrs []string
	var scheds []*scheduler.Scheduler
	for i := range 3 {
		cfg := scheduler.DefaultConfig()
		cfg.Parallel, cfg.MaxLoaded = 2, 2
		cfg.LoadDelay = func(string) time.Duration { return fleetLoadDelay }
		be, err := fastollama.NewBackend(fastollama.BackendConfig{
			Models: fleetModels, Loaded: []string{fleetModels[i]}, Scheduler: cfg})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &fasthttp.Server{Handler: be.Handler}
		go srv.Serve(ln) //nolint:errcheck
		b.Cleanup(func() { be.Close(); _ = srv.Shutdown(); ln.Close() })
		addrs = append(addrs, ln.Addr().String())
		scheds = append(scheds, be.Scheduler())
	}
	return addrs, scheds
}

// startRoundRobin runs httputil.ReverseProxy over backends in turn: the
// plain round-robin baseline.
func startRoundRobin(b *testing.B, backends []string) string {
	b.Helper()
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse("http://" + backends[(next.Add(1)-1)%uint64(len(backends))])
			r.SetURL(u)
		},
		FlushInterval: -1,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 1024},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// runFleet sends the workload to addr and reports TTFT p50/p99, req/s,
// model loads and failed requests.
func runFleet(b *testing.B, addr string, keys []string, scheds []*scheduler.Scheduler) {
	loadsBefore := 0
	for _, s := range scheds {
		loadsBefore += s.LoadCount()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: fleetConcurrency}, Timeout: time.Minute}
	ttft := make([]time.Duration, fleetRequests)

	var failed atomic.Int64
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range fleetConcurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= fleetRequests {
					return
				}
				model := fleetModels[0]
				switch i % 10 {
				case 5, 6, 7:
					model = fleetModels[1]
				case 8, 9:
					model = fleetModels[2]
				}
				body := `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
				req, _ := http.NewRequest("POST", "http://"+addr+"/api/chat"+fleetQuery, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+keys[i%len(keys)])
				t0 := time.Now()

				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				br := bufio.NewReader(resp.Body)
				_, err = br.ReadBytes('\n')
				ttft[i] = time.Since(t0)
				last := ""
				for err == nil {
					var line []byte
					line, err = br.ReadBytes('\n')
					if len(line) > 0 {
						last = string(line)
					}
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(last, `"done":true`) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(ttft)
	loads := -loadsBefore
	for _, s := range scheds {
		loads += s.LoadCount()
	}
	b.ReportMetric(float64(ttft[fleetRequests/2].Milliseconds()), "ttft-p50-ms")
	b.ReportMetric(float64(ttft[fleetRequests*99/100].Milliseconds()), "ttft-p99-ms")
	b.ReportMetric(float64(ttft[fleetRequests-1].Milliseconds()), "ttft-max-ms")
	b.ReportMetric(float64(fleetRequests)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(loads), "loads")
	b.ReportMetric(float64(failed.Load()), "failed")
}

// BenchmarkFleet runs the fleet workload once per iteration (use
// -benchtime 1x) through fleet scheduling and through round-robin, each
// over fresh backends. Read the ratios of the metrics.
func BenchmarkFleet(b *testing.B) {
	keys := []string{benchKey, benchKey + "-2", benchKey + "-3"}
	b.Run("fleet", func(b *testing.B) {
		for range b.N {
			addrs, scheds := startFleet(b)
			cfg := benchConfig(addrs...)
			cfg.APIKeys = config.Keys(keys...)
			cfg.AddressOptions = make([]config.AddressOptions, len(addrs))
			for i := range addrs {
				// What the backends run: 2 slots per model, 2 models.
				cfg.AddressOptions[i] = config.AddressOptions{MaxConcurrent: 4, NumParallel: 2, MaxLoadedModels: 2}
			}
			cfg.LoadBalancer.HealthCheckIntervalInSeconds = 1
			gw := serveGateway(b, &cfg, nil)
			waitReady(b, gw)
			runFleet(b, gw, keys, scheds)
		}
	})
	b.Run("round-robin", func(b *testing.B) {
		for range b.N {
			addrs, scheds := startFleet(b)
			runFleet(b, startRoundRobin(b, addrs), keys, scheds)
		}
	})
}

// waitReady waits until the gateway's first health checks ran (its
// inventory is known): /readyz answers 200.
func waitReady(b *testing.B, addr string) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				time.Sleep(100 * time.Millisecond) // /api/tags and /api/ps follow the check
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("gateway at %s not ready", addr)
}
