package gateway

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// bodyBudget accounts the request bodies buffered in memory (for replay on
// another backend): a total over all requests and a share per API key. It
// outlives snapshots: a reload changes the limits, not what is held. The
// zero value is ready; it is safe for concurrent use.
type bodyBudget struct {
	total atomic.Int64
	mu    sync.Mutex
	byKey map[[16]byte]int64 // guarded by mu; no zero entries
}

// reserve takes n bytes for key id if the key's share stays within perKey
// and the total within total; else it takes nothing and returns the
// refusal.
func (b *bodyBudget) reserve(id [16]byte, n, total, perKey int64) *bodyRefusal {
	b.mu.Lock()
	held := b.byKey[id]
	if n > perKey-held {
		b.mu.Unlock()
		return errKeyBodyBudget
	}
	for {
		cur := b.total.Load()
		if n > total-cur {
			b.mu.Unlock()
			return errBodyBudget
		}
		if b.total.CompareAndSwap(cur, cur+n) {
			break
		}
	}
	if b.byKey == nil {
		b.byKey = make(map[[16]byte]int64)
	}
	b.byKey[id] = held + n
	b.mu.Unlock()
	return nil
}

// fits reports, without reserving, why n more bytes for key id would be
// refused now (nil if they would not).
func (b *bodyBudget) fits(id [16]byte, n, total, perKey int64) *bodyRefusal {
	b.mu.Lock()
	held := b.byKey[id]
	b.mu.Unlock()
	switch {
	case n > perKey-held:
		return errKeyBodyBudget
	case n > total-b.total.Load():
		return errBodyBudget
	}
	return nil
}

// release gives back n bytes reserved for key id.
func (b *bodyBudget) release(id [16]byte, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	if left := b.byKey[id] - n; left > 0 {
		b.byKey[id] = left
	} else {
		delete(b.byKey, id)
	}
	b.mu.Unlock()
	b.total.Add(-n)
}

// held returns the bytes reserved over all requests.
func (b *bodyBudget) held() int64 { return b.total.Load() }

// BufferedBodyBytes returns the request body bytes the gateway holds
// reserved at this instant, summed over all requests: at most
// proxy.maxBufferedBodyBytes. Safe for concurrent use.
func (g *Gateway) BufferedBodyBytes() int64 { return g.bodies.held() }

// bodyRefusal is why a buffered request body was refused; it is a
// proxy.StatusError, so the proxy answers with its status and message.
type bodyRefusal struct {
	status     int
	msg        string
	retryAfter bool // a budget: worth retrying in a moment
}

func (e *bodyRefusal) Error() string                        { return "gateway: " + e.msg }
func (e *bodyRefusal) HTTPStatus() (status int, msg string) { return e.status, e.msg }

// The refusals of a buffered request body.
var (
	errBodyBudget = &bodyRefusal{status: fasthttp.StatusServiceUnavailable, retryAfter: true,
		msg: "the gateway holds too many request bodies in memory (proxy.maxBufferedBodyBytes): retry later"}
	errKeyBodyBudget = &bodyRefusal{status: fasthttp.StatusTooManyRequests, retryAfter: true,
		msg: "too many request bodies in flight for this key (proxy.maxBufferedBodyBytesPerKey): retry later"}
	errBodyTooSlow = &bodyRefusal{status: fasthttp.StatusRequestTimeout,
		msg: "request body arrived too slowly (proxy.minRequestBodyBytesPerSecond)"}
)
