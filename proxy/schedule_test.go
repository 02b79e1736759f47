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

// loaded sets the /api/ps list of b to models.
func loaded(b *Backend, models ...string) {
	var entries []json.RawMessage
	for _, m := range models {
		entries = append(entries, json.RawMessage(`{"name":"`+m+`"}`))
	}
	b.SetLoaded(entries, time.Now())
}

// busyWith counts n requests for model in flight on b.
func busyWith(b *Backend, model string, n int) {
	for range n {
		b.noteSent(keyHash([]byte(model+":latest")), time.Now().UnixNano())
		b.inFlight.Add(1)
	}
}

// TestSchedulePerModelSlots: a backend whose NumParallel slots for the
// model are all busy is full for that model, however few requests it has
// in flight: the request goes to the backend with a free slot for it,
// though more of other models run there. Counting requests per backend,
// it went to the first, where Ollama queues it behind the busy slot.
func TestSchedulePerModelSlots(t *testing.T) {
	p := modelPool(t, "llama3.2", "llama3.2 qwen")
	a, b := p.Backends()[0], p.Backends()[1]
	loaded(a, "llama3.2")
	loaded(b, "llama3.2", "qwen")
	a.SetCapacity(Capacity{NumParallel: 1})
	b.SetCapacity(Capacity{NumParallel: 2})
	busyWith(a, "llama3.2", 1)
	busyWith(b, "qwen", 2)
	for range 4 {
		var r route
		r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
		if got, v := r.next(p, new(queue)); v != pickGo || got != b {
			t.Fatalf("went to %v (verdict %d); want %s, where llama3.2 has a free slot", got, v, b.Name())
		}
		r.reset()
	}
	busyWith(b, "llama3.2", 2)
	var r route
	r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
	if _, v := r.next(p, &queue{size: 1}); v != pickWait {
		t.Errorf("every slot for llama3.2 busy: verdict %d; want pickWait", v)
	}
}

// TestScheduleNeverLoadsOverBusyModels: with MaxLoadedModels known, a
// model loaded nowhere is not sent to a backend whose loaded models are
// all busy (Ollama would hold it until one goes idle, and steady requests
// for them may never let it): it goes where an idle model can be evicted,
// though more requests run there, and waits when no backend can load it.
func TestScheduleNeverLoadsOverBusyModels(t *testing.T) {
	p := modelPool(t, "llama3.2 qwen", "llama3.2 phi mistral")
	a, b := p.Backends()[0], p.Backends()[1]
	a.SetCapacity(Capacity{MaxLoadedModels: 1})
	b.SetCapacity(Capacity{MaxLoadedModels: 2})
	loaded(a, "qwen")
	loaded(b, "phi", "mistral")
	busyWith(a, "qwen", 1)
	busyWith(b, "mistral", 3) // phi is idle: Ollama evicts it
	if fa, fb := a.loadFit(), b.loadFit(); fa != loadBlocked || fb != loadEvicts {
		t.Fatalf("loadFit = %d, %d; want blocked (%d), evicts (%d)", fa, fb, loadBlocked, loadEvicts)
	}
	var r route
	r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
	if got, v := r.next(p, new(queue)); v != pickGo || got != b {
		t.Fatalf("went to %v (verdict %d); want %s, which can evict an idle model", got, v, b.Name())
	}
	r.reset()
	busyWith(b, "phi", 1)
	r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
	if got, v := r.next(p, &queue{size: 1}); v != pickWait {
		t.Errorf("every loaded model busy on both: went to %v (verdict %d); want pickWait", got, v)
	}
	// Room on a backend: it loads there without evicting.
	r.reset()
	a.SetCapacity(Capacity{MaxLoadedModels: 2})
	r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
	if got, v := r.next(p, new(queue)); v != pickGo || got != a || a.loadFit() != loadRoom {
		t.Errorf("went to %v (verdict %d); want %s, which has room", got, v, a.Name())
	}
}

// TestSchedulePreloadsWhereThereIsRoom: the model is loaded on a full
// backend and another has room for it: the request waits in the queue
// and names that backend to load the model ahead; without a known
// MaxLoadedModels it waits without a load ahead.
func TestSchedulePreloadsWhereThereIsRoom(t *testing.T) {
	p := modelPool(t, "llama3.2", "llama3.2")
	warm, room := p.Backends()[0], p.Backends()[1]
	loaded(warm, "llama3.2")
	loaded(room)
	warm.SetCapacity(Capacity{NumParallel: 1, MaxLoadedModels: 1})
	busyWith(warm, "llama3.2", 1)
	for _, tt := range []struct {
		maxLoaded int
		ahead     int
	}{{0, 0}, {2, 2}} {
		room.SetCapacity(Capacity{NumParallel: 1, MaxLoadedModels: tt.maxLoaded})
		var r route
		r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
		if _, v := r.next(p, &queue{size: 4}); v != pickWait || r.ahead != tt.ahead {
			t.Errorf("maxLoadedModels %d: verdict %d, ahead %d; want pickWait (%d), ahead %d", tt.maxLoaded, v, r.ahead, pickWait, tt.ahead)
		}
		r.reset()
	}
}
