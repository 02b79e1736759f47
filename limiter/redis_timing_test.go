package limiter

import (
	"runtime"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/redistest"
)

// BenchmarkRedisAllowParallel: one Allow from 64 goroutines, Local against
// Redis (a private redis-server on loopback), 1,024 keys.
func BenchmarkRedisAllowParallel(b *testing.B) {
	srv := redistest.Start(b)
	par := (64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	r := Rate{Limit: 1 << 30, Window: time.Second}
	for _, tt := range []struct {
		name string
		l    Limiter
	}{
		{"local", NewLocal(Options{})},
		{"redis", NewRedis(newStore(b, srv.URL()), FailClosed, nil)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if d := tt.l.Allow(IDKey([16]byte{byte(i), byte(i >> 8 & 3)}), r, time.Now()); !d.Allowed {
						b.Errorf("refused: %+v", d)
						return
					}
				}
			})
		})
	}
}
