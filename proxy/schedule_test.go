package proxy

import (
	"encoding/json"
	"testing"
	"time"
)

// TestScheduleWaitOrLoad: the model is loaded on a full backend only:
// the request waits for it while the expected wait is shorter than a load
// elsewhere, and loads it on the free backend once it is longer.
func TestScheduleWaitOrLoad(t *testing.T) {
	p := modelPool(t, "llama3.2", "llama3.2")
	warm, cold := p.Backends()[0], p.Backends()[1]
	warm.SetLoaded([]json.RawMessage{json.RawMessage(`{"name":"llama3.2:latest"}`)}, time.Now())
	cold.SetLoaded(nil, time.Now())
	warm.SetCapacity(Capacity{MaxConcurrent: 1})
	warm.inFlight.Add(1)
	for _, tt := range []struct {
		name   string
		queued int64
		want   verdict
	}{
		// DefaultGenerationTime 5 s × (queued+1) ÷ 1 slot vs DefaultLoadTime 10 s.
		{"short wait", 0, pickWait},
		{"equal", 1, pickWait},
		{"long wait", 2, pickGo},
	} {
		var r route
		r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
		q := new(queue)
		q.depth.Store(tt.queued)
		b, v := r.next(p, q)
		if v != tt.want || (v == pickGo && b != cold) {
			t.Errorf("%s: verdict %d backend %v; want %d (cold backend if it goes)", tt.name, v, b, tt.want)
		}
		r.reset()
	}
}

// TestScheduleColdPrefersFewerLoaded: loaded nowhere, among free backends
// with as many requests in flight, the one holding fewer loaded models.
func TestScheduleColdPrefersFewerLoaded(t *testing.T) {
	p := modelPool(t, "llama3.2 qwen", "llama3.2", "llama3.2 qwen")
	now := time.Now()
	p.Backends()[0].SetLoaded([]json.RawMessage{json.RawMessage(`{"name":"qwen"}`)}, now)
	p.Backends()[1].SetLoaded(nil, now)
	p.Backends()[2].SetLoaded([]json.RawMessage{json.RawMessage(`{"name":"qwen"}`)}, now)
	for range 5 {
		var r route
		r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
		if b, v := r.next(p, new(queue)); v != pickGo || b != p.Backends()[1] {
			t.Fatalf("went to %v (verdict %d); want the backend with no model loaded", b, v)
		}
		r.reset()
	}
	// All full: wait.
	for _, b := range p.Backends() {
		b.SetCapacity(Capacity{MaxConcurrent: 1})
		b.inFlight.Add(1)
	}
	var r route
	r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
	if _, v := r.next(p, new(queue)); v != pickWait {
		t.Errorf("every backend full: verdict %d; want pickWait", v)
	}
}

// TestScheduleColdClaim: requests for a model loaded nowhere that are
// chosen before any of them is sent (a burst) agree on one backend.
func TestScheduleColdClaim(t *testing.T) {
	p := modelPool(t, "llama3.2", "llama3.2", "llama3.2")
	for _, b := range p.Backends() {
		b.SetLoaded(nil, time.Now())
	}
	var first *Backend
	for i := range 6 {
		var r route
		r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
		b, v := r.next(p, new(queue))
		if v != pickGo {
			t.Fatalf("#%d: verdict %d; want pickGo", i, v)
		}
		if first == nil {
			first = b
		} else if b != first {
			t.Fatalf("#%d went to %s, #0 to %s; want one backend for the burst", i, b.Name(), first.Name())
		}
	}
}
