package scheduler

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// ErrMaxQueue is Ollama's error, word for word, for a request refused
// because the pending queue is full; Ollama answers it with status 503 and
// body {"error":"<this message>"} before any other byte.
var ErrMaxQueue = errors.New("server busy, please try again.  maximum pending requests exceeded")

// ErrClosed is returned by [Scheduler.Acquire] once the scheduler is
// closed, also to requests that were waiting.
var ErrClosed = errors.New("scheduler: closed")

// Forever is the keep-alive of a negative keep_alive: the model is never
// unloaded for being idle (Ollama's api.Duration maps negative values to
// math.MaxInt64).
const Forever = time.Duration(math.MaxInt64)

// Config is the configuration of a Scheduler, Ollama's environment
// variables. Start from [DefaultConfig]: the zero Config is not Ollama's
// default.
type Config struct {
	// Parallel is OLLAMA_NUM_PARALLEL: requests generating at once per
	// loaded model. Values below 1 mean 1.
	Parallel int
	// MaxLoaded is OLLAMA_MAX_LOADED_MODELS: models loaded at once. Values
	// below 1 mean 1.
	MaxLoaded int
	// MaxQueue is OLLAMA_MAX_QUEUE: requests that may wait in the pending
	// queue behind the one being scheduled. 0 refuses every request that
	// cannot be scheduled at once; negative values mean 0.
	MaxQueue int
	// KeepAlive is OLLAMA_KEEP_ALIVE: how long a model stays loaded after
	// its last request when the requests name no keep_alive. 0 unloads at
	// once; negative values mean Forever.
	KeepAlive time.Duration
	// LoadDelay returns how long loading a model takes; nil means no time
	// at all (the model is still counted as loaded by [Scheduler.Loads]).
	// A negative delay ([Manual]) makes the load last until
	// [Scheduler.EndLoad].
	LoadDelay func(model string) time.Duration
}

// Manual is the load delay of a load that ends only when
// [Scheduler.EndLoad] is called: a test can then act while it lasts.
const Manual time.Duration = -1

// DefaultConfig returns Ollama v0.17.4's defaults for one GPU: Parallel 1,
// MaxLoaded 3, MaxQueue 512, KeepAlive 5m, no load delay.
func DefaultConfig() Config {
	return Config{Parallel: 1, MaxLoaded: 3, MaxQueue: 512, KeepAlive: 5 * time.Minute}
}

// Scheduler decides when each request may run, as Ollama's scheduler does
// (see the package documentation). Create it with [New]; it starts no
// goroutine (timers only), and [Scheduler.Close] ends every wait.
type Scheduler struct {
	cfg Config

	mu        sync.Mutex
	loaded    map[string]*runner
	pending   []*pendingReq // pending[0] is the one being scheduled
	blocked   bool          // pending[0] waits for an unload
	loads     map[string]int
	loadCount int
	closed    bool
	closing   chan struct{}

	watch Watch
}

// runner is a loaded (or loading) model: Ollama's runnerRef.
type runner struct {
	model     string
	ready     chan struct{} // closed when the load has ended
	loading   bool
	refs      int // requests holding it: waiting for the load or a slot, or running
	running   int // requests holding a slot
	slots     []*slotWaiter
	keepAlive time.Duration
	expiresAt time.Time
	timer     *time.Timer
	timerGen  int // identifies the timer that may unload it
}

// pendingReq is a request waiting in the pending queue.
type pendingReq struct {
	model     string
	keepAlive *time.Duration
	r         *runner       // set when it is scheduled
	placed    chan struct{} // closed when it is scheduled
}

// slotWaiter is a request waiting for a slot of its runner.
type slotWaiter struct {
	granted bool
	ch      chan struct{} // closed when granted
}

// New returns a Scheduler with no model loaded.
func New(cfg Config) *Scheduler {
	cfg.Parallel = max(cfg.Parallel, 1)
	cfg.MaxLoaded = max(cfg.MaxLoaded, 1)
	cfg.MaxQueue = max(cfg.MaxQueue, 0)
	if cfg.KeepAlive < 0 {
		cfg.KeepAlive = Forever
	}
	return &Scheduler{
		cfg:     cfg,
		loaded:  make(map[string]*runner),
		loads:   make(map[string]int),
		closing: make(chan struct{}),
	}
}

// Lease is a request's slot on a loaded model, from [Scheduler.Acquire]
// until [Lease.Release].
type Lease struct {
	s    *Scheduler
	r    *runner
	slot bool // holds a slot (Acquire, not Load)
	load time.Duration
	once sync.Once
}

// LoadDuration is the time the request waited for its model to be loaded,
// from Acquire's call: Ollama's load_duration. It includes the pending
// queue and the wait for an eviction, not the wait for a slot; it is a few
// microseconds for a model that was loaded already.
func (l *Lease) LoadDuration() time.Duration { return l.load }

// Release gives the slot back; the model goes idle when it was the last
// request holding it. Release is idempotent.
func (l *Lease) Release() {
	l.once.Do(func() {
		s := l.s
		s.mu.Lock()
		defer s.mu.Unlock()
		if l.slot {
			s.freeSlot(l.r)
		}
		s.leave(l.r)
		s.changed()
	})
}

// Acquire waits until a request for model may generate: until the model is
// loaded and one of its slots is free. keepAlive is the request's
// keep_alive (nil when it names none; negative means Forever). It returns
// [ErrMaxQueue] at once when the pending queue is full, ctx.Err() if ctx
// ends first, and [ErrClosed] if the scheduler is closed.
func (s *Scheduler) Acquire(ctx context.Context, model string, keepAlive *time.Duration) (*Lease, error) {
	return s.acquire(ctx, model, keepAlive, true)
}

// Load is Acquire without the slot: it waits until model is loaded and
// holds it, as Ollama does for a request with nothing to generate (an
// empty prompt, an embed without input), which never waits for a slot.
func (s *Scheduler) Load(ctx context.Context, model string, keepAlive *time.Duration) (*Lease, error) {
	return s.acquire(ctx, model, keepAlive, false)
}

func (s *Scheduler) acquire(ctx context.Context, model string, keepAlive *time.Duration, slot bool) (*Lease, error) {
	start := time.Now()
	if keepAlive != nil && *keepAlive < 0 {
		forever := Forever
		keepAlive = &forever
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	r := s.loaded[model]
	if r != nil {
		s.join(r, keepAlive)
		s.changed()
		s.mu.Unlock()
	} else {
		if len(s.pending) > 0 && len(s.pending)-1 >= s.cfg.MaxQueue {
			s.mu.Unlock()
			return nil, ErrMaxQueue
		}
		p := &pendingReq{model: model, keepAlive: keepAlive, placed: make(chan struct{})}
		s.pending = append(s.pending, p)
		s.schedule()
		s.changed()
		s.mu.Unlock()
		var err error
		if r, err = s.waitPlaced(ctx, p); err != nil {
			return nil, err
		}
	}
	if err := s.waitReady(ctx, r); err != nil {
		return nil, err
	}
	l := &Lease{s: s, r: r, slot: slot, load: time.Since(start)}
	if slot {
		if err := s.waitSlot(ctx, r); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// await waits for ch to close: nil, or ctx.Err() or ErrClosed if the
// caller's context or the scheduler ends first.
func (s *Scheduler) await(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}

// waitPlaced waits for p to leave the pending queue with a runner.
func (s *Scheduler) waitPlaced(ctx context.Context, p *pendingReq) (*runner, error) {
	err := s.await(ctx, p.placed)
	if err == nil {
		return p.r, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.r != nil { // placed meanwhile
		s.leave(p.r)
	} else {
		if s.pending[0] == p {
			s.blocked = false
		}
		s.pending = slices.DeleteFunc(s.pending, func(q *pendingReq) bool { return q == p })
		s.schedule()
	}
	s.changed()
	return nil, err
}

// waitReady waits for r's load to end; r is joined, and left on failure.
func (s *Scheduler) waitReady(ctx context.Context, r *runner) error {
	err := s.await(ctx, r.ready)
	if err == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leave(r)
	s.changed()
	return err
}

// waitSlot takes one of r's slots, first come first served; r is joined,
// and left on failure.
func (s *Scheduler) waitSlot(ctx context.Context, r *runner) error {
	s.mu.Lock()
	if r.running < s.cfg.Parallel && len(r.slots) == 0 {
		r.running++
		s.changed()
		s.mu.Unlock()
		return nil
	}
	w := &slotWaiter{ch: make(chan struct{})}
	r.slots = append(r.slots, w)
	s.changed()
	s.mu.Unlock()
	err := s.await(ctx, w.ch)
	if err == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		s.freeSlot(r)
	} else {
		r.slots = slices.DeleteFunc(r.slots, func(x *slotWaiter) bool { return x == w })
	}
	s.leave(r)
	s.changed()
	return err
}

// freeSlot gives a slot of r back, to the first waiter if there is one.
func (s *Scheduler) freeSlot(r *runner) {
	r.running--
	if len(r.slots) > 0 && r.running < s.cfg.Parallel {
		w := r.slots[0]
		r.slots = r.slots[1:]
		w.granted = true
		r.running++
		close(w.ch)
	}
}

// join makes one more request hold r (Ollama's useLoadedRunner): the expiry
// timer stops, and the request's keep_alive becomes the model's.
func (s *Scheduler) join(r *runner, keepAlive *time.Duration) {
	r.refs++
	s.stopTimer(r)
	if keepAlive != nil {
		r.keepAlive = *keepAlive
	}
}

// leave drops one request's hold on r; the last one makes it idle.
func (s *Scheduler) leave(r *runner) {
	r.refs--
	if r.refs == 0 && !r.loading {
		s.idle(r)
	}
}

// idle starts r's keep-alive: unload at once for 0, never for Forever,
// else after the keep-alive.
func (s *Scheduler) idle(r *runner) {
	if s.closed {
		return
	}
	switch now := time.Now(); {
	case r.keepAlive <= 0:
		s.unload(r)
	case r.keepAlive == Forever:
		r.expiresAt = now.Add(Forever)
	default:
		r.expiresAt = now.Add(r.keepAlive)
		r.timerGen++
		gen := r.timerGen
		r.timer = time.AfterFunc(r.keepAlive, func() { s.expire(r, gen) })
	}
}

// expire is r's expiry timer firing.
func (s *Scheduler) expire(r *runner, gen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded[r.model] != r || r.timerGen != gen || r.refs > 0 || s.closed {
		return
	}
	s.unload(r)
	s.changed()
}

// stopTimer stops r's expiry timer, if any.
func (s *Scheduler) stopTimer(r *runner) {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.timerGen++
}

// unload removes an idle r, then lets the pending queue move on.
func (s *Scheduler) unload(r *runner) {
	s.stopTimer(r)
	delete(s.loaded, r.model)
	s.blocked = false
	s.schedule()
}

// startLoad loads model, counted by Loads, ready after its load delay.
func (s *Scheduler) startLoad(model string, keepAlive *time.Duration) *runner {
	r := &runner{model: model, ready: make(chan struct{}), loading: true, keepAlive: s.cfg.KeepAlive}
	if keepAlive != nil {
		r.keepAlive = *keepAlive
	}
	s.loaded[model] = r
	s.loads[model]++
	s.loadCount++
	var d time.Duration
	if s.cfg.LoadDelay != nil {
		d = s.cfg.LoadDelay(model)
	}
	switch {
	case d == 0:
		r.loading = false
		close(r.ready)
	case d > 0:
		time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.endLoad(r)
		})
	}
	return r // the caller joins it
}

// endLoad ends r's load.
func (s *Scheduler) endLoad(r *runner) {
	if !r.loading {
		return
	}
	r.loading = false
	close(r.ready)
	if r.refs == 0 { // every request for it left during the load
		s.idle(r)
	}
	s.changed()
}

// EndLoad ends the load of model now, whatever its delay; it reports
// whether model was loading.
func (s *Scheduler) EndLoad(model string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.loaded[model]
	if r == nil || !r.loading {
		return false
	}
	s.endLoad(r)
	return true
}

// schedule works through the pending queue in order, as Ollama's
// processPending does, until it is empty or its head must wait for a busy
// model to go idle. A blocked head moves only after an unload (of any
// model), as Ollama's loop waits on its unloaded channel: a model going
// idle without unloading does not help it.
func (s *Scheduler) schedule() {
	for len(s.pending) > 0 && !s.closed && !s.blocked {
		p := s.pending[0]
		r := s.loaded[p.model]
		if r == nil && len(s.loaded) < s.cfg.MaxLoaded {
			r = s.startLoad(p.model, p.keepAlive)
		}
		if r != nil {
			s.pending = s.pending[1:]
			s.join(r, p.keepAlive)
			p.r = r
			close(p.placed)
			continue
		}
		v := s.victim()
		if v.refs == 0 && !v.loading {
			s.unload(v)
			return // unload scheduled the rest
		}
		// Every model is busy: the victim unloads when it goes idle.
		s.stopTimer(v)
		v.keepAlive = 0
		s.blocked = true
		return
	}
}

// victim is the model Ollama unloads to make room (findRunnerToUnload):
// in order of keep-alive, then name, the first idle one, else the first.
func (s *Scheduler) victim() *runner {
	list := make([]*runner, 0, len(s.loaded))
	for _, r := range s.loaded {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, b *runner) int {
		return cmp.Or(cmp.Compare(a.keepAlive, b.keepAlive), cmp.Compare(a.model, b.model))
	})
	for _, r := range list {
		if r.refs == 0 && !r.loading {
			return r
		}
	}
	return list[0]
}
