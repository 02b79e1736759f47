package ollamatest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
)

// The options below turn on the model scheduler of Ollama v0.17.4 (see the
// package scheduler for what it reproduces). Without any of them the fake
// has no scheduler: every request runs at once, every served model is
// listed by /api/ps, and load_duration is a constant. With any of them,
// the unset ones take Ollama's defaults: 1 parallel request per model, 3
// loaded models, a pending queue of 512, a keep-alive of 5m, no load
// delay, and no model loaded at start.
//
// The scheduler applies to /api/chat, /api/generate, /api/embed and
// /v1/chat/completions once the request is valid and names a served model,
// before any byte of the answer (WithImmediateHeaders then sends the
// headers once the request has its slot).

// WithScheduler turns on the scheduler with Ollama's defaults.
func WithScheduler() Option {
	return func(s *Server) { s.schedConfig() }
}

// WithParallel sets OLLAMA_NUM_PARALLEL: requests generating at once per
// loaded model (at least 1). The others wait for a slot in arrival order,
// without bound, as in Ollama: a request for a loaded model is never
// refused.
func WithParallel(n int) Option {
	return func(s *Server) { s.schedConfig().Parallel = n }
}

// WithMaxQueue sets OLLAMA_MAX_QUEUE: requests for models that were not
// loaded when they came that may wait behind the one being scheduled.
// Past it a request gets 503 {"error":"server busy, please try again.
// maximum pending requests exceeded"} before any other byte (the OpenAI
// route in its error shape). 0 refuses every such request while another
// one waits for an eviction.
func WithMaxQueue(n int) Option {
	return func(s *Server) { s.schedConfig().MaxQueue = n }
}

// WithMaxLoadedModels sets OLLAMA_MAX_LOADED_MODELS (at least 1). Loading
// another model evicts an idle one, the one with the shortest keep-alive,
// then by name (not the least recently used: Ollama's order); when every
// loaded model is busy the request waits, with those behind it, until the
// first in that order goes idle.
func WithMaxLoadedModels(n int) Option {
	return func(s *Server) { s.schedConfig().MaxLoaded = n }
}

// WithLoadDelay sets how long loading takes (a real timer, or
// [ManualLoad]): for the named models, or for every model without one of
// its own when no name is given. Requests
// arriving during a load wait for that one load; load_duration in the final
// NDJSON line (and the non-streamed answer) is each request's own wait for
// its model, a few microseconds when it was loaded already.
func WithLoadDelay(d time.Duration, models ...string) Option {
	return func(s *Server) {
		s.schedConfig()
		if len(models) == 0 {
			s.loadDelayAll = d
			return
		}
		for _, m := range models {
			s.loadDelay[canonicalName(m)] = d
		}
	}
}

// ManualLoad is a load delay for [WithLoadDelay]: the load lasts until
// [Server.EndLoad], so that a test can act while a model loads.
const ManualLoad = scheduler.Manual

// EndLoad ends the model's load now, whatever its delay; it reports
// whether the model was loading. It is how a test ends a [ManualLoad].
func (s *Server) EndLoad(model string) bool {
	return s.sched != nil && s.sched.EndLoad(canonicalName(model))
}

// WithKeepAlive sets OLLAMA_KEEP_ALIVE: how long a model stays loaded
// after its last request when the request names no keep_alive (0 unloads
// at once, negative never).
func WithKeepAlive(d time.Duration) Option {
	return func(s *Server) { s.schedConfig().KeepAlive = d }
}

// WithLoaded starts the server with these models loaded and idle, their
// keep-alive running from New; they count for no load. Each must be
// served, and no more than the maximum of loaded models.
func WithLoaded(names ...string) Option {
	return func(s *Server) {
		s.schedConfig()
		s.preload = append(s.preload, names...)
	}
}

// schedConfig returns the scheduler's configuration, creating it with
// Ollama's defaults on first use.
func (s *Server) schedConfig() *scheduler.Config {
	if s.schedCfg == nil {
		cfg := scheduler.DefaultConfig()
		s.schedCfg = &cfg
		s.loadDelay = make(map[string]time.Duration)
	}
	return s.schedCfg
}

// startScheduler creates the scheduler, if an option asked for one.
func (s *Server) startScheduler(t interface{ Fatalf(string, ...any) }) {
	if s.schedCfg == nil {
		return
	}
	cfg := *s.schedCfg
	cfg.LoadDelay = func(model string) time.Duration {
		if d, ok := s.loadDelay[model]; ok {
			return d
		}
		return s.loadDelayAll
	}
	s.sched = scheduler.New(cfg)
	for _, name := range s.preload {
		m, ok := s.findModel(name)
		if !ok {
			t.Fatalf("ollamatest: WithLoaded(%q): the model is not served", name)
		}
		if err := s.sched.Preload(m.key); err != nil {
			t.Fatalf("ollamatest: WithLoaded(%q): %v", name, err)
		}
	}
}

// admission is a request's right to generate: its scheduler lease, nil
// without a scheduler.
type admission struct{ lease *scheduler.Lease }

// release ends the admission.
func (a admission) release() {
	if a.lease != nil {
		a.lease.Release()
	}
}

// acquire waits, with a scheduler, until the request may generate with m. It
// reports false when the request must stop: the 503 of a full queue is
// then written with fail; a client that left is reported as an abort.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request, m modelInfo, keepAlive json.RawMessage,
	fail func(http.ResponseWriter, int, string)) (admission, bool) {
	return s.schedule(w, r, m, keepAlive, true, fail)
}

// load is acquire for a request with nothing to generate: it waits for the
// model, not for a slot.
func (s *Server) load(w http.ResponseWriter, r *http.Request, m modelInfo, keepAlive json.RawMessage) (admission, bool) {
	return s.schedule(w, r, m, keepAlive, false, writeError)
}

// schedule is acquire (slot true) or load.
func (s *Server) schedule(w http.ResponseWriter, r *http.Request, m modelInfo, keepAlive json.RawMessage, slot bool,
	fail func(http.ResponseWriter, int, string)) (admission, bool) {
	if s.sched == nil {
		return admission{}, true
	}
	get := s.sched.Load
	if slot {
		get = s.sched.Acquire
	}
	lease, err := get(r.Context(), m.key, parseKeepAlive(keepAlive))
	switch {
	case err == nil:
		return admission{lease: lease}, true
	case errors.Is(err, scheduler.ErrMaxQueue):
		fail(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.reportAbort()
	}
	return admission{}, false
}

// loadOnly handles a request with nothing to generate (no messages,
// no prompt), which Ollama answers after loading the model, or after
// marking it to unload for keep_alive 0. It returns the done_reason, or
// false if the request must stop (see acquire).
func (s *Server) loadOnly(w http.ResponseWriter, r *http.Request, m modelInfo, keepAlive json.RawMessage) (string, bool) {
	if keepAliveZero(keepAlive) {
		if s.sched != nil {
			s.sched.Expire(m.key)
		}
		return "unload", true
	}
	a, ok := s.load(w, r, m, keepAlive)
	a.release()
	return "load", ok
}

// parseKeepAlive reads a request's keep_alive as Ollama's api.Duration
// does: a number of seconds or a Go duration string, negative meaning
// forever. nil when absent or unreadable.
func parseKeepAlive(raw json.RawMessage) *time.Duration {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	var d time.Duration
	switch t := v.(type) {
	case float64:
		d = time.Duration(t * float64(time.Second))
	case string:
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			n, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return nil
			}
			d = time.Duration(n * float64(time.Second))
		}
	default:
		return nil
	}
	if d < 0 {
		d = scheduler.Forever
	}
	return &d
}

// Loads returns how many times the model has been loaded (WithLoaded does
// not count); 0 without a scheduler.
func (s *Server) Loads(model string) int {
	if s.sched == nil {
		return 0
	}
	return s.sched.Loads(canonicalName(model))
}

// LoadCount returns how many model loads there have been, of every model;
// 0 without a scheduler.
func (s *Server) LoadCount() int {
	if s.sched == nil {
		return 0
	}
	return s.sched.LoadCount()
}

// Running returns the requests for the model generating now, holding one
// of its slots; "" counts every model. 0 without a scheduler.
func (s *Server) Running(model string) int {
	if s.sched == nil {
		return 0
	}
	return s.sched.Running(schedName(model))
}

// Queued returns the requests for the model waiting inside the server now:
// for the scheduler, for the model's load or for a slot; "" counts every
// model. 0 without a scheduler.
func (s *Server) Queued(model string) int {
	if s.sched == nil {
		return 0
	}
	return s.sched.Queued(schedName(model))
}

// Pending returns the length of the scheduler's pending queue, the request
// being scheduled included: requests for models that were not loaded when
// they came and that wait for a load or an eviction. WithMaxQueue bounds
// it, less the one being scheduled. 0 without a scheduler.
func (s *Server) Pending() int {
	if s.sched == nil {
		return 0
	}
	return s.sched.Pending()
}

// Loaded returns the names of the models loaded now, loading ones
// included, in /api/ps order. Without a scheduler it is nil.
func (s *Server) Loaded() []string {
	if s.sched == nil {
		return nil
	}
	var names []string
	for _, m := range s.sched.Loaded() {
		names = append(names, s.listedName(m.Name))
	}
	return names
}

// IsLoaded reports whether the model is loaded and its load has ended;
// false without a scheduler.
func (s *Server) IsLoaded(model string) bool {
	return s.sched != nil && s.sched.IsLoaded(canonicalName(model))
}

// WaitFor waits until cond holds: it evaluates cond now and again after
// every change of the server's state (a request starting or ending, and
// with a scheduler a request queued, scheduled, given a slot or done, a
// load starting or ending, an unload). cond must not block; it typically
// reads Running, Queued, Loaded, InFlight or Requests. It returns
// ctx.Err() if ctx ends first.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		ch := s.watch.Wait()
		var sc <-chan struct{}
		if s.sched != nil {
			sc = s.sched.Changed()
		}
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-sc:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// schedName is the scheduler's name for a model, "" for every model.
func schedName(model string) string {
	if model == "" {
		return ""
	}
	return canonicalName(model)
}

// listedName is the name a model is listed by, from its canonical name.
func (s *Server) listedName(key string) string {
	if m, ok := s.findModel(key); ok {
		return m.name
	}
	return key
}

// psModels is the /api/ps list of a server with a scheduler.
func (s *Server) psModels() []processModel {
	loaded := s.sched.Loaded()
	models := make([]processModel, 0, len(loaded))
	for _, l := range loaded {
		m, ok := s.findModel(l.Name)
		if !ok {
			m = newModelInfo(l.Name)
		}
		models = append(models, processModel{
			Name:          m.name,
			Model:         m.name,
			Size:          modelSize,
			Digest:        m.digest,
			Details:       m.details(),
			ExpiresAt:     l.ExpiresAt,
			SizeVRAM:      modelSize,
			ContextLength: 4096,
		})
	}
	return models
}
