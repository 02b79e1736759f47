package proxy

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The queue: a request whose every candidate backend is full (schedule.go)
// waits here, up to Options.QueueSize requests over the whole pool, for
// at most Options.QueueTimeout. A slot that frees (a request ends, on
// release) is handed at once to a waiting request that may use that
// backend, its in-flight count passing from one to the other, so no new
// arrival can take it first; a waiter whose model is loaded on that
// backend goes before one whose model would load there. Waiting requests are grouped by client
// (Queuer: the API key), and the groups take turns: a client's batch of
// 500 requests does not make another client's single request wait behind
// it; within a group, first come first served.
//
// fasthttp gives no signal when a client leaves (NOTES.md), so a waiting
// request peeks at its client's connection every clientPollInterval
// without reading (a non-blocking MSG_PEEK, as the pooled-connection check
// does, peek_unix.go): an end of file or a socket error means the client
// is gone, and the request leaves the queue. Bytes waiting (a pipelined
// request) are not a departure. Where no peek is possible (other systems,
// a connection that is not a socket) a departed client is seen at the
// end of its wait only.
//
// The queue is locked only by requests that wait and by releases while
// some request waits (one atomic load otherwise).

// clientPollInterval is how often a waiting request checks its client.
const clientPollInterval = 20 * time.Millisecond

// Queue errors, answered 503 with Retry-After (QueueError).
var (
	// ErrQueueFull: every candidate backend is full and the queue holds
	// Options.QueueSize requests already (or is off).
	ErrQueueFull = errors.New("proxy: every backend is at capacity and the queue is full")
	// ErrQueueTimeout: the request waited Options.QueueTimeout without a
	// slot freeing.
	ErrQueueTimeout = errors.New("proxy: no backend slot freed within the queue timeout")
	// ErrClientGone: the client closed its connection while queued.
	ErrClientGone = errors.New("proxy: client left while queued")
)

// QueueError is a request refused by the queue; it chooses the 503 and
// carries the Retry-After.
type QueueError struct {
	Err        error // ErrQueueFull or ErrQueueTimeout
	RetryAfter time.Duration
}

func (e *QueueError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *QueueError) Unwrap() error { return e.Err }

// HTTPStatus returns 503 and a message for the client. It makes
// QueueError a StatusError.
func (e *QueueError) HTTPStatus() (int, string) {
	switch {
	case errors.Is(e.Err, ErrQueueTimeout):
		return fasthttp.StatusServiceUnavailable, "server busy: no Ollama backend had a free slot in time, please try again"
	case errors.Is(e.Err, errBusyAnswer):
		// What Ollama itself says: its clients know it.
		return fasthttp.StatusServiceUnavailable, "server busy, please try again.  maximum pending requests exceeded"
	}
	return fasthttp.StatusServiceUnavailable, "server busy: every Ollama backend is at capacity and the queue is full, please try again"
}

// retryAfter returns the Retry-After value in whole seconds, at least 1.
func (e *QueueError) retryAfter() string {
	return strconv.Itoa(max(1, int((e.RetryAfter+time.Second-1)/time.Second)))
}

// Queuer may be implemented by the Finisher given to Proxy.Handle to name
// the client a queued request belongs to, for fairness: requests of one
// QueueKey wait behind each other, and keys take turns. The default key
// is "" (one group).
type Queuer interface {
	QueueKey() string
}

// waiter is one queued request. It lives in its exchange (no allocation
// but its channel, made once per pooled exchange).
type waiter struct {
	x     *exchange
	key   string
	ready chan int  // the pool index handed over
	idx   int       // handed index, -1 until then (under queue.mu)
	since time.Time // when it was queued
	hash  uint64    // its model's keyHash; 0: none
}

// group is the FIFO of one key's waiters.
type group struct {
	key     string
	waiters []*waiter
}

// waitingSlots is the size of the queue's table of waiters per model,
// indexed by the model's hash: models sharing a slot add up, which only
// makes the expected wait of fleet scheduling longer.
const waitingSlots = 64

// queue is the fair queue of a Proxy.
type queue struct {
	size    int
	timeout time.Duration
	depth   atomic.Int64               // waiters, read without the lock
	waiting [waitingSlots]atomic.Int64 // waiters per model hash, read without the lock

	mu     sync.Mutex
	groups []*group // keys with waiters, in turn order
	turn   int      // index in groups of the next key to serve
	byKey  map[string]*group
	spare  []*group // emptied groups, for reuse
}

// add queues w, or reports false when the queue is full.
func (q *queue) add(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if int(q.depth.Load()) >= q.size {
		return false
	}
	g := q.byKey[w.key]
	if g == nil {
		if n := len(q.spare); n > 0 {
			g, q.spare = q.spare[n-1], q.spare[:n-1]
		} else {
			g = new(group)
		}
		g.key = w.key
		if q.byKey == nil {
			q.byKey = make(map[string]*group)
		}
		q.byKey[w.key] = g
		q.groups = append(q.groups, g)
	}
	w.idx = -1
	w.since = time.Now()
	g.waiters = append(g.waiters, w)
	q.depth.Add(1)
	q.waiting[w.hash%waitingSlots].Add(1)
	return true
}

// waitingFor returns how many requests wait for the model of hash h (or
// one sharing its slot).
func (q *queue) waitingFor(h uint64) int64 {
	return q.waiting[h%waitingSlots].Load()
}

// remove takes w out of the queue if it is still there and reports
// whether it was; q.mu must be held.
func (q *queue) removeLocked(w *waiter) bool {
	g := q.byKey[w.key]
	if g == nil {
		return false
	}
	for i, o := range g.waiters {
		if o == w {
			q.dropLocked(g, i)
			return true
		}
	}
	return false
}

// dropLocked removes the waiter at i from g, and g from the turn order
// when it is empty.
func (q *queue) dropLocked(g *group, i int) {
	q.waiting[g.waiters[i].hash%waitingSlots].Add(-1)
	copy(g.waiters[i:], g.waiters[i+1:])
	g.waiters[len(g.waiters)-1] = nil
	g.waiters = g.waiters[:len(g.waiters)-1]
	q.depth.Add(-1)
	if len(g.waiters) > 0 {
		return
	}
	delete(q.byKey, g.key)
	for k, o := range q.groups {
		if o == g {
			q.groups = append(q.groups[:k], q.groups[k+1:]...)
			if q.turn > k {
				q.turn--
			}
			break
		}
	}
	if q.turn >= len(q.groups) {
		q.turn = 0
	}
	q.spare = append(q.spare, g)
}

// handOff gives the slot of backend i of p to the next waiter, in turn
// order over keys, that may use it, and reports whether one took it (its
// in-flight count then stays with the backend). A waiter whose model is
// loaded there goes first (route.warmSlot), if the backend has a slot for
// that model (Backend.fitsModel); only when none does may the slot go to
// one whose model would load there (route.mayLoad).
func (q *queue) handOff(p *Pool, i int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.handOffLocked(p, i, passStarved, true) || q.handOffLocked(p, i, passWarm, true) ||
		q.handOffLocked(p, i, passCold, true)
}

// A pass of handOffLocked: which waiters it considers.
type pass int

const (
	// passStarved: waiters that have waited half the queue timeout, for
	// any slot their model fits (route.mayLoad lets them load it): before
	// the warm waiters, or a steady flow of requests for the models
	// loaded there would keep them waiting to the end.
	passStarved pass = iota
	// passWarm: waiters whose model is loaded there.
	passWarm
	// passCold: the others, when loading their model there pays.
	passCold
)

// offer gives the free slots of backend i of p, where a model just
// finished loading, to the waiters whose model is loaded there, and
// returns how many took one. Unlike handOff no in-flight count is passed
// on: each waiter takes one, while the backend is not full.
func (q *queue) offer(p *Pool, i int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for q.handOffLocked(p, i, passWarm, false) {
		n++
	}
	return n
}

// handOffLocked is one pass of handOff (passed) or offer over the
// waiters, in turn order over keys; q.mu must be held.
func (q *queue) handOffLocked(p *Pool, i int, which pass, passed bool) bool {
	b := p.backends[i]
	if !passed && b.full() {
		return false
	}
	now := time.Now()
	n := len(q.groups)
	for k := range n {
		gi := (q.turn + k) % n
		g := q.groups[gi]
		for wi, w := range g.waiters {
			r := &w.x.route
			if !r.eligibleSlot(p, i) {
				continue
			}
			warm := r.warmSlot(p, i)
			switch which {
			case passStarved:
				if now.Sub(w.since) < q.timeout/2 {
					continue
				}
			case passWarm:
				if !warm {
					continue
				}
			case passCold:
				if warm || !r.mayLoad(p, q, i, now.Sub(w.since)) {
					continue
				}
			}
			if r.named && !b.fitsModel(r.hash) {
				continue
			}
			w.idx = i
			// The next turn goes to the key after this one.
			q.turn = gi + 1
			q.dropLocked(g, wi)
			if !passed {
				b.inFlight.Add(1)
			}
			if r.named {
				// Counted for its model now, so that no arrival takes
				// the model's slot there before it is sent; and a model
				// it loads there is marked loading when it is sent.
				r.sent = b.noteSent(r.hash, now.UnixNano())
				r.loads = !warm
			}
			w.ready <- i
			return true
		}
	}
	return false
}

// wait queues x until a backend slot is handed to it and returns that
// backend, its in-flight count already taken; or a *QueueError, or
// ErrClientGone.
func (x *exchange) wait() (*Backend, error) {
	q := &x.p.queue
	start := time.Now()
	if q.size <= 0 {
		x.queued(0, ErrQueueFull)
		return nil, &QueueError{Err: ErrQueueFull, RetryAfter: time.Second}
	}
	w := &x.waiter
	if w.ready == nil {
		w.ready = make(chan int, 1)
	}
	w.x = x
	w.hash = 0
	if x.route.named {
		w.hash = x.route.hash
	}
	w.key = ""
	if k, ok := x.fin.(Queuer); ok {
		w.key = k.QueueKey()
	}
	if !q.add(w) {
		x.queued(0, ErrQueueFull)
		return nil, &QueueError{Err: ErrQueueFull, RetryAfter: time.Second}
	}
	if i := x.route.ahead - 1; i >= 0 {
		// Queued first: a load that ends at once still finds it there
		// to offer its slots to.
		x.p.preload(i, &x.route)
	}
	timer := time.NewTimer(q.timeout)
	defer timer.Stop()
	poll := time.NewTicker(clientPollInterval)
	defer poll.Stop()
	var pk peeker
	if c := x.ctx.Conn(); c != nil {
		pk.init(c)
	}
	var err error
	for err == nil {
		select {
		case i := <-w.ready:
			x.queued(time.Since(start), nil)
			return x.p.pool.backends[i], nil
		case <-timer.C:
			err = &QueueError{Err: ErrQueueTimeout, RetryAfter: q.timeout / 4}
		case <-poll.C:
			if pk.gone() {
				err = ErrClientGone
			}
		}
	}
	q.mu.Lock()
	removed := q.removeLocked(w)
	q.mu.Unlock()
	if !removed {
		// Handed a slot as the wait ended: take it after all.
		i := <-w.ready
		x.queued(time.Since(start), nil)
		return x.p.pool.backends[i], nil
	}
	x.queued(time.Since(start), err)
	return nil, err
}

// queued reports the end of a request's wait to Options.OnQueue.
func (x *exchange) queued(d time.Duration, err error) {
	if f := x.p.opts.OnQueue; f != nil {
		f(d, err)
	}
}

// gone reports whether the connection's peer closed it (or it failed):
// an end of file or an error waits to be read.
func (p *peeker) gone() bool {
	if !p.have {
		return false
	}
	if err := p.rc.Read(p.fn); err != nil {
		return true
	}
	return p.n == 0
}

// release ends one request in flight on backend b of p: its slot goes to
// a waiting request that may use it, else it frees.
func (p *Proxy) release(b *Backend) {
	if p.queue.depth.Load() > 0 {
		if b.busy.Load() != 0 {
			b.busy.Store(0)
		}
		if i := p.pool.index(b); i >= 0 && p.queue.handOff(p.pool, i) {
			return
		}
	}
	b.inFlight.Add(-1)
	// A request ended there: the backend has room again.
	if b.busy.Load() != 0 {
		b.busy.Store(0)
	}
}

// loaded ends the load of a model on backend b that the request counted
// by s started (route.loads): the backend answered, so the model is in
// memory, and its free slots go to the requests waiting for it.
func (p *Proxy) loaded(b *Backend, s *sentModel) {
	if s == nil || s.loading.Load() == 0 {
		return
	}
	s.loading.Store(0)
	if p.queue.depth.Load() > 0 {
		if i := p.pool.index(b); i >= 0 {
			p.queue.offer(p.pool, i)
		}
	}
}

// QueueLen returns how many requests wait in the queue.
func (p *Proxy) QueueLen() int { return int(p.queue.depth.Load()) }

// index returns the position of b in p, or -1.
func (p *Pool) index(b *Backend) int {
	for i, o := range p.backends {
		if o == b {
			return i
		}
	}
	return -1
}
