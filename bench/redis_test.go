package bench

import (
	"runtime"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/redistest"
)

// BenchmarkRedisLimiter measures what sharing the limits through Redis
// costs a request: GET /api/version through the gateway from 64 parallel
// clients, with the local limiter and with the Redis one (one EVALSHA per
// request; with maxConcurrent also a lease taken and released), against a
// private redis-server on loopback, in the same run.
func BenchmarkRedisLimiter(b *testing.B) {
	backend := startBackend(b)
	srv := redistest.Start(b)
	par := (64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	run := func(name string, mutate func(*config.Config)) {
		b.Run(name, func(b *testing.B) {
			cfg := benchConfig(backend)
			mutate(&cfg)
			addr := serveGateway(b, &cfg, nil)
			b.SetParallelism(par)
			drive(b, addr)
		})
	}
	withRedis := func(c *config.Config) {
		c.Redis = &config.Redis{URL: srv.URL(), KeyPrefix: "bench:", FailMode: "closed", TimeoutMilliseconds: 1000, LeaseMilliseconds: 30000}
	}
	run("local", func(*config.Config) {})
	run("redis", withRedis)
	run("local-maxConcurrent", func(c *config.Config) { c.RateLimit.MaxConcurrent = 1000 })
	run("redis-maxConcurrent", func(c *config.Config) { withRedis(c); c.RateLimit.MaxConcurrent = 1000 })
}
