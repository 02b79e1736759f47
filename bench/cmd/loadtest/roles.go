package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/bench/fastollama"
	"github.com/ollamagw/ollama-gateway/bench/fleetload"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/gateway"
)

// loadKey is the API key the load sends to every target (only the gateway
// checks it).
const loadKey = "loadtest-key-0123456789abcdefghijklmnopqrstu"

// fleetKeys are the API keys of the fleet scenario, taken in turn.
var fleetKeys = []string{loadKey, loadKey + "-2", loadKey + "-3"}

// runRole serves one process of the harness and prints its address on
// stdout once it listens.
// Role gateway-redis is the gateway with its limits in the Redis at
// redisURL. The fleet scenario's roles: fleet-backend (upstream is its
// index in the fleet, fleetload.Backend), gateway-fleet and round-robin
// (upstream is the backends' addresses, comma-separated).
func runRole(role, listen, upstream, redisURL string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	switch role {
	case "backend":
		srv := &fasthttp.Server{Handler: fastollama.Handler, Concurrency: 1 << 20}
		return srv.Serve(ln)
	case "gateway", "gateway-redis":
		cfg := config.Default()
		cfg.OllamaAddresses = []string{"http://" + upstream}
		cfg.APIKeys = config.Keys(loadKey)
		cfg.Logging = false
		cfg.Proxy.MaxConnsPerBackend = 20000
		// Features on, as in production: a rate no client reaches.
		cfg.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 1 << 30, TimeWindowSeconds: 1, AuthFailuresPerMinute: 10}
		if role == "gateway-redis" {
			// The same limits, shared through Redis: one EVALSHA per request.
			cfg.Redis = &config.Redis{URL: redisURL, KeyPrefix: "loadtest:", FailMode: "closed", TimeoutMilliseconds: 1000, LeaseMilliseconds: 30000}
		}
		gw, err := gateway.New(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		return gw.NewServer().Serve(gateway.KeepAccepting(ln, slog.Default()))
	case "fleet-backend":
		i, err := strconv.Atoi(upstream)
		if err != nil {
			return fmt.Errorf("fleet-backend: index %q: %w", upstream, err)
		}
		be, err := fastollama.NewBackend(fleetload.Backend(i))
		if err != nil {
			return err
		}
		return (&fasthttp.Server{Handler: be.Handler, Concurrency: 1 << 20}).Serve(ln)
	case "gateway-fleet":
		cfg := config.Default()
		for a := range strings.SplitSeq(upstream, ",") {
			cfg.OllamaAddresses = append(cfg.OllamaAddresses, "http://"+a)
			cfg.AddressOptions = append(cfg.AddressOptions, fleetload.AddressOptions())
		}
		cfg.APIKeys = config.Keys(fleetKeys...)
		cfg.Logging = false
		cfg.LoadBalancer.HealthCheckIntervalInSeconds = 1
		gw, err := gateway.New(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		return gw.NewServer().Serve(gateway.KeepAccepting(ln, slog.Default()))
	case "round-robin":
		return (&http.Server{Handler: fleetload.RoundRobin(strings.Split(upstream, ","))}).Serve(ln)
	case "httputil":
		target, _ := url.Parse("http://" + upstream)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 20000}
		rp.FlushInterval = -1 // flush every write: streams pass unbuffered
		return (&http.Server{Handler: rp}).Serve(ln)
	}
	return fmt.Errorf("unknown role %q", role)
}
