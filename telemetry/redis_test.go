package telemetry

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRedisCall(t *testing.T) {
	m := New(Options{Namespace: "gw"})
	if out := expose(m); strings.Contains(out, "redis") {
		t.Fatalf("metrics without Redis calls show Redis series:\n%s", out)
	}
	m.RedisCall("rate", 2*time.Millisecond, nil)
	m.RedisCall("rate", 3*time.Millisecond, errors.New("down"))
	m.RedisCall("password=hunter2", time.Millisecond, nil)
	out := expose(m)
	for series, want := range map[string]float64{
		`gw_redis_duration_seconds_count{op="rate"}`:             2,
		`gw_redis_duration_seconds_bucket{op="rate",le="0.001"}`: 0,
		`gw_redis_duration_seconds_bucket{op="rate",le="0.005"}`: 2,
		`gw_redis_errors_total{op="rate"}`:                       1,
		`gw_redis_duration_seconds_count{op="other"}`:            1,
	} {
		if got := value(t, out, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Error("an unknown op became a label value")
	}
}
