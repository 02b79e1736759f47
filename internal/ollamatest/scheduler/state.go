package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Model is one loaded model as [Scheduler.Loaded] reports it.
type Model struct {
	// Name is the model as given to Acquire or Preload.
	Name string
	// ExpiresAt is when the model unloads if no request comes: Ollama's
	// /api/ps expires_at (see the package documentation).
	ExpiresAt time.Time
	// Loading is true until the model's load delay has passed.
	Loading bool
}

// Preload makes model loaded and idle, as if a request had loaded it just
// now, without counting a load. It fails if MaxLoaded models are loaded.
func (s *Scheduler) Preload(model string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded[model] != nil {
		return nil
	}
	if len(s.loaded) >= s.cfg.MaxLoaded {
		return fmt.Errorf("scheduler: cannot preload %q: %d models loaded, the maximum", model, len(s.loaded))
	}
	r := &runner{model: model, ready: make(chan struct{}), keepAlive: s.cfg.KeepAlive}
	close(r.ready)
	s.loaded[model] = r
	s.idle(r)
	s.changed()
	return nil
}

// Expire is a request with keep_alive 0 and nothing to generate (Ollama's
// expireRunner): model unloads now if idle, else as soon as it goes idle.
// It does nothing if model is not loaded.
func (s *Scheduler) Expire(model string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.loaded[model]
	if r == nil {
		return
	}
	r.expiresAt = time.Now()
	s.stopTimer(r)
	r.keepAlive = 0
	if r.refs == 0 && !r.loading {
		s.unload(r)
	}
	s.changed()
}

// Loaded returns the loaded models, loading ones included, in /api/ps
// order: the latest expiry first (by the second, as Ollama compares), then
// by name.
func (s *Scheduler) Loaded() []Model {
	s.mu.Lock()
	now := time.Now()
	list := make([]Model, 0, len(s.loaded))
	for _, r := range s.loaded {
		m := Model{Name: r.model, ExpiresAt: r.expiresAt, Loading: r.loading}
		if m.ExpiresAt.IsZero() {
			m.ExpiresAt = now.Add(r.keepAlive)
		}
		list = append(list, m)
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b Model) int {
		return cmp.Or(cmp.Compare(b.ExpiresAt.Unix(), a.ExpiresAt.Unix()), cmp.Compare(a.Name, b.Name))
	})
	return list
}

// IsLoaded reports whether model is loaded and its load has ended.
func (s *Scheduler) IsLoaded(model string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.loaded[model]
	return r != nil && !r.loading
}

// Loads returns how many times model has been loaded (Preload does not
// count).
func (s *Scheduler) Loads(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads[model]
}

// LoadCount returns how many loads there have been, of every model.
func (s *Scheduler) LoadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadCount
}

// Running returns the requests for model holding a slot now; "" counts
// every model.
func (s *Scheduler) Running(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.loaded {
		if model == "" || r.model == model {
			n += r.running
		}
	}
	return n
}

// Queued returns the requests for model waiting inside the scheduler now:
// in the pending queue, for the model's load, or for a slot; "" counts
// every model.
func (s *Scheduler) Queued(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.pending {
		if model == "" || p.model == model {
			n++
		}
	}
	for _, r := range s.loaded {
		if model == "" || r.model == model {
			n += r.refs - r.running
		}
	}
	return n
}

// Pending returns the length of the pending queue, the request being
// scheduled included: the requests for models that were not loaded when
// they came and that have no model yet.
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Changed returns a channel that is closed at the next change of the
// scheduler's state: a request arriving, scheduled, given a slot or done;
// a load starting or ending; an unload. Take it before reading the state
// to miss no change.
func (s *Scheduler) Changed() <-chan struct{} { return s.watch.Wait() }

// WaitFor waits until cond holds, evaluating it now and after every change
// of the state (see Changed); cond must not block. It returns ctx.Err() if
// ctx ends first.
func (s *Scheduler) WaitFor(ctx context.Context, cond func() bool) error {
	return waitFor(ctx, &s.watch, cond)
}

// Close ends every wait (Acquire returns ErrClosed) and stops the expiry
// timers; the loaded models stay as they are. It is idempotent.
func (s *Scheduler) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.closing)
	for _, r := range s.loaded {
		s.stopTimer(r)
	}
	s.changed()
}

// changed wakes the watchers; s.mu is held.
func (s *Scheduler) changed() { s.watch.Notify() }

// Watch is a broadcast of "something changed" that allocates only when
// someone waits. The zero value is ready; it is safe for concurrent use.
// The fake Server uses one too, for its own request counts.
type Watch struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns a channel closed at the next Notify.
func (w *Watch) Wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// Notify closes the channel of the current waiters.
func (w *Watch) Notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// waitFor waits on w until cond holds or ctx ends.
func waitFor(ctx context.Context, w *Watch, cond func() bool) error {
	for {
		ch := w.Wait()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
