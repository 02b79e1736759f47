package bench

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/bench/fastollama"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/gateway"
)

// benchKey is the API key the benchmark clients send (to every target: the
// baselines ignore it).
const benchKey = "ahP7DieD7rNpTUa6No--iJpOaXY3TDK8dIjKg0cp-hI"

// startBackend runs the fast fake Ollama, so the backend is never the
// bottleneck.
func startBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: fastollama.Handler}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Shutdown(); ln.Close() })
	return ln.Addr().String()
}

// startGateway runs the real gateway handler in front of backend, with
// auth, rate limiting, the access log off and metrics on or off.
func startGateway(b *testing.B, backend string, metricsOn bool) string {
	b.Helper()
	cfg := benchConfig(backend)
	cfg.Metrics.Enabled = metricsOn
	return serveGateway(b, &cfg, nil)
}

// benchConfig is the configuration the benchmarks run the gateway with:
// features on, as in production (an API key, a rate limit no client
// reaches, metrics), the access log off.
func benchConfig(backends ...string) config.Config {
	cfg := config.Default()
	cfg.Logging = false
	cfg.APIKeys = config.Keys(benchKey)
	cfg.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 1 << 30, TimeWindowSeconds: 1, AuthFailuresPerMinute: 10}
	for _, be := range backends {
		cfg.OllamaAddresses = append(cfg.OllamaAddresses, "http://"+be)
	}
	return cfg
}

// serveGateway builds a gateway from cfg and serves it on a loopback
// listener until the benchmark ends; ready, if not nil, is called before
// it serves. It returns the listener's address.
func serveGateway(b *testing.B, cfg *config.Config, ready func(*gateway.Gateway)) string {
	b.Helper()
	gw, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.Close)
	if ready != nil {
		ready(gw)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := gw.NewServer()
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Shutdown(); ln.Close() })
	return ln.Addr().String()
}

// startHTTPUtil runs the standard library's reverse proxy in front of
// backend: the baseline a Go gateway is usually built on.
func startHTTPUtil(b *testing.B, backend string) string {
	b.Helper()
	target, _ := url.Parse("http://" + backend)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 1024}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// drive sends GET /api/version to addr from parallel clients and checks
// every answer.
func drive(b *testing.B, addr string) {
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: 1024}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + "/api/version")
		req.Header.Set("Authorization", "Bearer "+benchKey)
		for pb.Next() {
			if err := hc.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 || string(resp.Body()) != fastollama.VersionBody {
				b.Errorf("answer %d %q", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
}

// BenchmarkProxySmall compares a small JSON response straight from the
// backend, through the gateway, and through httputil.ReverseProxy. Read
// gateway/direct and gateway/httputil as ratios.
func BenchmarkProxySmall(b *testing.B) {
	backend := startBackend(b)
	b.Run("direct", func(b *testing.B) { drive(b, backend) })
	b.Run("gateway", func(b *testing.B) { drive(b, startGateway(b, backend, true)) })
	b.Run("gateway-metrics-off", func(b *testing.B) { drive(b, startGateway(b, backend, false)) })
	b.Run("gateway-console-on", func(b *testing.B) {
		// The console's traffic ring is fed by every request (issue 15).
		cfg := benchConfig(backend)
		cfg.Console.Enabled = true
		drive(b, serveGateway(b, &cfg, nil))
	})
	b.Run("httputil", func(b *testing.B) { drive(b, startHTTPUtil(b, backend)) })
}
