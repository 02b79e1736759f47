package proxy

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// Capacity: a backend may have a cap on the requests routed by model the
// gateway has in flight on it (SetMaxConcurrent, from the config's
// ollamaAddresses[i].maxConcurrent). And a backend that answered Ollama's
// "server busy" (503 before any byte: its own queue is full) counts as
// full at the number of requests the gateway had in flight there besides
// the refused one, until one of them ends or busyHold passes. A full backend gets no new request while another can take it;
// when none can, the request waits in the pool's queue (queue.go).

// SetMaxConcurrent sets the cap on requests in flight; n <= 0 removes it.
// It may be changed at any time (a reload keeps the backend). Safe for
// concurrent use.
func (b *Backend) SetMaxConcurrent(n int) {
	b.maxConc.Store(int64(max(n, 0)))
}

// MaxConcurrent returns the cap on requests in flight, 0 when there is
// none.
func (b *Backend) MaxConcurrent() int { return int(b.maxConc.Load()) }

// full reports whether b has no free slot: at its cap, or at the level at
// which it last answered "server busy".
func (b *Backend) full() bool {
	n := b.inFlight.Load()
	if c := b.maxConc.Load(); c > 0 && n >= c {
		return true
	}
	busy := b.busy.Load()
	return busy > 0 && n >= busy-1 && time.Now().UnixNano() < b.busyUntil.Load()
}

// busyHold is how long a "server busy" answer makes a backend full when
// no request of the gateway's ends there first (the backend's queue may
// be full of other clients' requests).
const busyHold = time.Second

// slots returns how many requests b serves at once, for the expected
// wait: its cap, else the level at which it was last busy, else 1
// (Ollama's default OLLAMA_NUM_PARALLEL).
func (b *Backend) slots() int64 {
	if c := b.maxConc.Load(); c > 0 {
		return c
	}
	if busy := b.busy.Load(); busy > 1 {
		return busy - 1
	}
	return 1
}

// markBusy records that b answered "server busy" with inFlight requests in
// flight (the refused one included): b is full at inFlight-1 (stored plus
// one, 0 meaning not busy) for busyHold.
func (b *Backend) markBusy(inFlight int64) {
	b.busyUntil.Store(time.Now().Add(busyHold).UnixNano())
	b.busy.Store(max(inFlight, 1))
}

// isServerBusy reports whether resp is Ollama's answer to a request its
// queue has no room for: 503 with {"error":"server busy, ..."}. It reads
// the body, which is small, of a streamed answer.
func isServerBusy(resp *fasthttp.Response) bool {
	if resp.StatusCode() != fasthttp.StatusServiceUnavailable {
		return false
	}
	if cl := resp.Header.ContentLength(); cl > 4096 {
		return false
	}
	return bytes.Contains(resp.Body(), []byte("server busy"))
}
