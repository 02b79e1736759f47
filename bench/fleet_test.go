package bench

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/bench/fastollama"
	"github.com/ollamagw/ollama-gateway/bench/fleetload"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
)

// The fleet workload (bench/fleetload): 600 chat streams from 12 clients
// over 3 keys and 3 models, on three fake Ollamas with Ollama's scheduler.
// The same workload goes through the gateway (fleet scheduling, told what
// the backends run) and through a plain round-robin reverse proxy, in the
// same run, each over fresh backends. 600 requests because a p99 over
// fewer is the second worst sample or so.
const (
	fleetRequests    = 600
	fleetConcurrency = 12
)

// startFleet runs the backends; it returns their addresses and their
// schedulers (for the load counts).
func startFleet(b *testing.B) ([]string, []*scheduler.Scheduler) {
	b.Helper()
	var addrs []string
	var scheds []*scheduler.Scheduler
	for i := range fleetload.Backends {
		be, err := fastollama.NewBackend(fleetload.Backend(i))
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

// startRoundRobin serves the round-robin baseline over backends.
func startRoundRobin(b *testing.B, backends []string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: fleetload.RoundRobin(backends)}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// runFleet sends the workload to addr and reports TTFT p50/p99/max,
// req/s, model loads and failed requests.
func runFleet(b *testing.B, addr string, keys []string, scheds []*scheduler.Scheduler) {
	loadsBefore := 0
	for _, s := range scheds {
		loadsBefore += s.LoadCount()
	}
	r := fleetload.Run(addr, fleetload.Workload{Requests: fleetRequests, Concurrency: fleetConcurrency, Keys: keys})
	loads := -loadsBefore
	for _, s := range scheds {
		loads += s.LoadCount()
	}
	b.ReportMetric(float64(r.Quantile(0.50).Milliseconds()), "ttft-p50-ms")
	b.ReportMetric(float64(r.Quantile(0.99).Milliseconds()), "ttft-p99-ms")
	b.ReportMetric(float64(r.Quantile(1).Milliseconds()), "ttft-max-ms")
	b.ReportMetric(r.PerSecond(), "req/s")
	b.ReportMetric(float64(loads), "loads")
	b.ReportMetric(float64(r.Failed), "failed")
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
				cfg.AddressOptions[i] = fleetload.AddressOptions()
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
