package telemetry

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// redisOps are the `op` label values of the Redis metrics; any other
// operation is counted as "other".
var redisOps = [...]string{"rate", "acquire", "renew", "release", "other"}

// redisBuckets, in seconds: a round trip on a LAN is well under a
// millisecond; the call timeout is at most a minute.
var redisBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 60}

// redisMetrics are the handles of one operation, created at its first
// call: a gateway without Redis exposes none.
type redisMetrics struct {
	duration *metrics.PrometheusHistogram
	errors   *metrics.Counter
}

type redisTable [len(redisOps)]atomic.Pointer[redisMetrics]

func redisOpIndex(op string) int {
	for i, o := range redisOps[:len(redisOps)-1] {
		if o == op {
			return i
		}
	}
	return len(redisOps) - 1
}

// RedisCall records one call to the shared Redis: its round-trip time in
// <ns>_redis_duration_seconds{op} and, when err is not nil, one
// <ns>_redis_errors_total{op}.
func (m *Metrics) RedisCall(op string, d time.Duration, err error) {
	i := redisOpIndex(op)
	r := m.redis[i].Load()
	if r == nil {
		m.mu.Lock()
		if r = m.redis[i].Load(); r == nil {
			label := fmt.Sprintf(`{op=%q}`, redisOps[i])
			r = &redisMetrics{
				duration: m.set.NewPrometheusHistogramExt(m.ns+"_redis_duration_seconds"+label, redisBuckets),
				errors:   m.set.NewCounter(m.ns + "_redis_errors_total" + label),
			}
			m.redis[i].Store(r)
		}
		m.mu.Unlock()
	}
	r.duration.Update(d.Seconds())
	if err != nil {
		r.errors.Inc()
	}
}
