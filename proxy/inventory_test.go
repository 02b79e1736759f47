package proxy

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

func TestSetLoaded(t *testing.T) {
	b := newTestPool(t, 1).Backends()[0]
	if b.Loaded() != nil || b.IsLoaded("llama3.2") {
		t.Fatal("a new backend has loaded models")
	}
	entries := []json.RawMessage{
		json.RawMessage(`{"name":"llama3.2:latest","model":"llama3.2:latest","size":1,"size_vram":2048,"expires_at":"2026-12-01T10:05:00Z","details":{"family":"llama"}}`),
		json.RawMessage(`{"model":"hf.co/x/y:Q4"}`),
		json.RawMessage(`"not an object"`),
		json.RawMessage(`{"name":""}`),
	}
	t0 := time.Now()
	b.SetLoaded(entries, t0)
	l := b.Loaded()
	if l.Len() != 2 || !l.Has("library/llama3.2") || !l.Has("HF.co/x/y:q4") || l.Has("qwen") {
		t.Fatalf("Loaded: %+v; want llama3.2 and hf.co/x/y:q4", l.Entries())
	}
	e := l.Entries()[0]
	if e.Key != "llama3.2:latest" || e.SizeVRAM != 2048 || !e.ExpiresAt.Equal(time.Date(2026, 12, 1, 10, 5, 0, 0, time.UTC)) {
		t.Errorf("entry: %+v", e)
	}
	if string(e.Raw) != string(entries[0]) {
		t.Errorf("Raw = %s; want the entry as sent", e.Raw)
	}
	if !l.FetchedAt().Equal(time.Unix(0, t0.UnixNano())) {
		t.Errorf("FetchedAt = %v; want %v", l.FetchedAt(), t0)
	}
	b.ForgetLoaded()
	if b.Loaded() != nil {
		t.Error("ForgetLoaded kept the list")
	}
}

// TestSentCountsAsLoaded: a model the gateway just sent a request for is
// loaded (or loading) there until an /api/ps fetched later says
// otherwise, and while a request for it is in flight.
func TestSentCountsAsLoaded(t *testing.T) {
	b := newTestPool(t, 1).Backends()[0]
	key := ollamaapi.AppendModelName(nil, []byte("qwen2.5"))
	h := keyHash(key)
	b.SetLoaded(nil, time.Now().Add(-time.Second))
	s := b.noteSent(h, time.Now().UnixNano())
	if !b.IsLoaded("qwen2.5") {
		t.Fatal("a model just sent is not counted as loaded")
	}
	// A later /api/ps without it, the request still in flight: loading.
	b.SetLoaded(nil, time.Now().Add(time.Second))
	if !b.IsLoaded("qwen2.5") {
		t.Error("a model with a request in flight is not counted as loaded")
	}
	s.done()
	if b.IsLoaded("qwen2.5") {
		t.Error("a model sent before the last /api/ps, which lacks it, still counts as loaded")
	}
	if n := b.modelInFlight(h); n != 0 {
		t.Errorf("modelInFlight = %d; want 0", n)
	}
}

func TestLearnedTimes(t *testing.T) {
	p := newTestPool(t, 2)
	b, other := p.Backends()[0], p.Backends()[1]
	h := keyHash([]byte("llama3.2:latest"))
	if p.loadCost(0, h, loadRoom) != DefaultLoadTime || b.generationTime(h) != DefaultGenerationTime {
		t.Fatal("defaults not applied to an unseen model")
	}
	// A request timed, no load seen: a load is guessed at twice it.
	other.observe(h, 0, 300*time.Millisecond)
	if got := p.loadCost(0, h, loadRoom); got != 600*time.Millisecond {
		t.Errorf("loadCost from a request time seen elsewhere = %v; want 600ms", got)
	}
	b.observe(h, 4*time.Second, 6*time.Second)
	if got := p.loadCost(0, h, loadRoom); got != 4*time.Second {
		t.Errorf("loadCost = %v; want 4s", got)
	}
	if got := p.loadCost(1, h, loadRoom); got != 4*time.Second {
		t.Errorf("loadCost on a backend that never loaded it = %v; want the 4s seen on the other", got)
	}
	if got := p.loadCost(0, h, loadEvicts); got != 8*time.Second {
		t.Errorf("loadCost of a load that evicts = %v; want twice the load, 8s", got)
	}
	if got := b.generationTime(h); got != 2*time.Second {
		t.Errorf("generationTime = %v; want 2s", got)
	}
	b.observe(h, time.Millisecond, 2*time.Second) // warm: no load counted
	if got := p.loadCost(0, h, loadRoom); got != 4*time.Second {
		t.Errorf("loadCost after a warm answer = %v; want 4s", got)
	}
}

// TestNoteSentRace: requests for models already in the table and for new
// ones, at once, with every slot stale: each request's count lands in a
// slot of its own model, never in one claimed for another model meanwhile.
func TestNoteSentRace(t *testing.T) {
	b := newTestPool(t, 1).Backends()[0]
	var bad atomic.Int64
	for round := 0; round < 500 && bad.Load() == 0; round++ {
		old := make([]uint64, sentSlots)
		for i := range sentSlots {
			old[i] = uint64(round*100+i)<<8 | 1
			b.sent[i].hash.Store(old[i])
			b.sent[i].inFlight.Store(0)
			b.sent[i].at.Store(1)
		}
		b.SetLoaded(nil, time.Now()) // every slot stale
		var wg sync.WaitGroup
		got := make([]*sentModel, 16)
		want := make([]uint64, 16)
		for g := range 16 {
			want[g] = old[g%sentSlots]
			if g%2 == 1 {
				want[g] = uint64(round*100+50+g)<<8 | 1
			}
			wg.Go(func() { got[g] = b.noteSent(want[g], time.Now().UnixNano()) })
		}
		wg.Wait()
		counted := map[uint64]int64{}
		for g, s := range got {
			if s == nil {
				continue
			}
			counted[want[g]]++
			if s.hash.Load() != want[g] {
				bad.Add(1)
			}
		}
		for h, n := range counted {
			if m := b.modelInFlight(h); m != n {
				t.Fatalf("modelInFlight = %d for a model sent %d requests", m, n)
			}
		}
	}
	if n := bad.Load(); n > 0 {
		t.Errorf("%d requests hold a sent slot counting another model", n)
	}
}
