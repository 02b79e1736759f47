package proxy

import (
	"encoding/json"
	"testing"
	"time"
)

// queuedExchange returns an exchange of proxy p waiting for llama3.2 from
// key, added to p's queue.
func queuedExchange(t *testing.T, p *Proxy, key string) *exchange {
	t.Helper()
	return queuedFor(t, p, key, "llama3.2")
}

// queuedFor returns an exchange of proxy p waiting for model from key,
// added to p's queue.
func queuedFor(t *testing.T, p *Proxy, key, model string) *exchange {
	t.Helper()
	x := &exchange{p: p}
	x.route.set(p.pool, chatRoute, []byte(`{"model":"`+model+`"}`))
	x.route.begin(p.pool)
	x.waiter = waiter{x: x, key: key, ready: make(chan int, 1), hash: x.route.hash, since: time.Now()}
	if !p.queue.add(&x.waiter) {
		t.Fatalf("queue refused a request of %q", key)
	}
	return x
}

// TestQueueFairAcrossKeys: key a queues three requests, then b one; slots
// freeing one at a time go a, b, a, a: b's single request does not wait
// behind a's batch.
func TestQueueFairAcrossKeys(t *testing.T) {
	p := New(modelPool(t, "llama3.2"), Options{QueueSize: 10})
	var order []string
	waiting := map[*exchange]string{}
	for i, k := range []string{"a", "a", "a", "b"} {
		x := queuedExchange(t, p, k)
		waiting[x] = k + string(rune('1'+i))
	}
	for range 4 {
		if !p.queue.handOff(p.pool, 0) {
			t.Fatal("a freed slot was not handed to a waiting request")
		}
		for x, name := range waiting {
			select {
			case <-x.waiter.ready:
				order = append(order, name[:1])
				delete(waiting, x)
			default:
			}
		}
	}
	if got, want := order, []string{"a", "b", "a", "a"}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("dispatch order %v; want %v", got, want)
	}
	if n := p.QueueLen(); n != 0 {
		t.Errorf("QueueLen() = %d after every dispatch; want 0", n)
	}
	if p.queue.handOff(p.pool, 0) {
		t.Error("an empty queue took a slot")
	}
}

// TestQueueBounded: the queue refuses past QueueSize, and a waiter that
// leaves frees its place.
func TestQueueBounded(t *testing.T) {
	p := New(modelPool(t, "llama3.2"), Options{QueueSize: 2})
	x := queuedExchange(t, p, "a")
	queuedExchange(t, p, "b")
	if p.queue.add(&waiter{key: "c", ready: make(chan int, 1)}) {
		t.Fatal("a full queue took a third request")
	}
	p.queue.mu.Lock()
	removed := p.queue.removeLocked(&x.waiter)
	p.queue.mu.Unlock()
	if !removed || p.QueueLen() != 1 {
		t.Fatalf("remove: %v, QueueLen %d; want true, 1", removed, p.QueueLen())
	}
	if !p.queue.add(&waiter{key: "c", ready: make(chan int, 1)}) {
		t.Error("a freed place was not taken")
	}
}

// TestQueueErrorRetryAfter: Retry-After is whole seconds, at least 1.
func TestQueueErrorRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {300 * time.Millisecond, "1"}, {15 * time.Second, "15"}, {15500 * time.Millisecond, "16"}} {
		if got := (&QueueError{Err: ErrQueueTimeout, RetryAfter: tt.d}).retryAfter(); got != tt.want {
			t.Errorf("RetryAfter %v: %q; want %q", tt.d, got, tt.want)
		}
	}
}

// TestQueueWarmWaiterFirst: a slot freeing on a backend goes first to a
// waiter whose model is loaded there, even out of the keys' turn; a
// waiter whose model would have to load there gets the next one. Before,
// the slot went to the key whose turn it was and the backend loaded (and
// maybe evicted) a model while a request for a loaded one waited.
func TestQueueWarmWaiterFirst(t *testing.T) {
	p := New(modelPool(t, "llama3.2 qwen", "llama3.2 qwen"), Options{QueueSize: 10})
	p.pool.Backends()[0].SetLoaded([]json.RawMessage{json.RawMessage(`{"name":"qwen"}`)}, time.Now())
	p.pool.Backends()[1].SetLoaded(nil, time.Now())
	cold := queuedFor(t, p, "a", "llama3.2")
	warm := queuedFor(t, p, "b", "qwen")
	for _, want := range []*exchange{warm, cold} {
		if !p.queue.handOff(p.pool, 0) {
			t.Fatal("a freed slot was not handed to a waiting request")
		}
		select {
		case <-want.waiter.ready:
		default:
			t.Fatalf("slot went to the wrong waiter; want the %s one", map[*exchange]string{warm: "warm (qwen)", cold: "cold (llama3.2)"}[want])
		}
	}
}

// TestQueueHandOffPerModel: with Ollama's slots counted per model
// (NumParallel), a slot freed by another model's request on a backend
// where the waiter's model has all its slots busy is not handed to it:
// Ollama would only queue it behind them. The waiter takes the next slot
// its model frees, and is counted for its model at once.
func TestQueueHandOffPerModel(t *testing.T) {
	p := New(modelPool(t, "llama3.2 qwen"), Options{QueueSize: 10})
	b := p.pool.Backends()[0]
	b.SetCapacity(Capacity{NumParallel: 1})
	b.SetLoaded([]json.RawMessage{json.RawMessage(`{"name":"llama3.2"}`), json.RawMessage(`{"name":"qwen"}`)}, time.Now())
	h := keyHash([]byte("llama3.2:latest"))
	busy := b.noteSent(h, time.Now().UnixNano()) // llama3.2's one slot
	b.inFlight.Add(2)                            // it and a qwen request
	x := queuedFor(t, p, "a", "llama3.2")
	if n := p.queue.waitingFor(h); n != 1 {
		t.Fatalf("waitingFor(llama3.2) = %d; want 1", n)
	}
	// The qwen request ends.
	if p.queue.handOff(p.pool, 0) {
		t.Fatal("a slot freed by qwen went to a llama3.2 request whose one slot is busy")
	}
	b.inFlight.Add(-1)
	// The llama3.2 request ends: its slot goes to the waiter.
	busy.done()
	if !p.queue.handOff(p.pool, 0) {
		t.Fatal("llama3.2's freed slot was not handed to its waiter")
	}
	select {
	case <-x.waiter.ready:
	default:
		t.Fatal("the waiter was not told")
	}
	if n := b.modelInFlight(h); n != 1 {
		t.Errorf("modelInFlight(llama3.2) = %d after the hand-off; want 1 (counted at once)", n)
	}
	if n := p.queue.waitingFor(h); n != 0 {
		t.Errorf("waitingFor(llama3.2) = %d after the hand-off; want 0", n)
	}
}

// TestQueueStarvedWaiterServed: a waiter for a model not loaded on the
// backend, queued for half the queue timeout, takes the next slot there
// even while waiters for the loaded model keep coming (the warm waiters
// went first at every hand-off, and it waited to the timeout); and a
// request handed a slot where its model is not loaded is told it loads
// it there.
func TestQueueStarvedWaiterServed(t *testing.T) {
	p := New(modelPool(t, "qwen llama3.2", "?"), Options{QueueSize: 100, QueueTimeout: time.Minute})
	b := p.pool.Backends()[0]
	b.SetCapacity(Capacity{NumParallel: 1, MaxLoadedModels: 1})
	b.SetLoaded([]json.RawMessage{json.RawMessage(`{"name":"qwen"}`)}, time.Now())
	cur := b.noteSent(keyHash([]byte("qwen:latest")), time.Now().UnixNano())
	b.inFlight.Add(1)
	starved := queuedFor(t, p, "m", "llama3.2")
	for i := range 3 {
		warm := queuedFor(t, p, "n", "qwen")
		if i == 2 {
			starved.waiter.since = time.Now().Add(-31 * time.Second)
		}
		cur.done() // the running qwen request ends, its slot is handed on
		if !p.queue.handOff(p.pool, 0) {
			t.Fatalf("#%d: no hand-off", i)
		}
		select {
		case <-starved.waiter.ready:
			if i < 2 {
				t.Fatalf("#%d: the llama3.2 waiter took the slot before waiting half the timeout", i)
			}
			if !starved.route.loads {
				t.Error("handed a slot where its model is not loaded, the request is not told it loads it")
			}
			return
		case <-warm.waiter.ready:
			if warm.route.loads {
				t.Errorf("#%d: a qwen waiter handed a qwen slot is told it loads qwen", i)
			}
			cur = warm.route.sent
		}
	}
	t.Error("the llama3.2 waiter, queued half the timeout, did not get the slot")
}
