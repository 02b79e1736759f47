package health

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Target is what the checker needs of a backend, which keeps its own health:
// the Checker holds no copy of it, so the state a Target reports is the one
// every reader sees (the proxy's selection, /readyz, metrics), whoever set
// it last (this Checker, the one before a reload, ReportFailure).
// *proxy.Backend implements it.
type Target interface {
	// Name returns the backend's base URL as configured, e.g.
	// "http://gpu1:11434/" or "http://h/ollama" (it may have a path
	// prefix and may or may not end in "/").
	Name() string
	// Down reports whether the backend is recorded as down.
	Down() bool
	// SetHealthy records the backend's health and reports whether it
	// changed. It is called from the Checker's goroutines and from
	// ReportFailure's caller, one call at a time per target.
	SetHealthy(up bool) (changed bool)
}

// Options configure a Checker. The zero value of a field selects the default
// in its comment.
type Options struct {
	// Interval is the time between two checks of one backend. Default
	// 30 s. A value below 1 s is raised to 1 s, so Run never busy-loops.
	Interval time.Duration
	// Timeout bounds one check, connect to last body byte read. Default
	// 5 s; a negative value also selects 5 s.
	Timeout time.Duration
	// Path is requested on each backend, joined to its base URL with
	// exactly one slash ("http://h:11434/" + "/" is "http://h:11434/",
	// "http://h/ollama" + "/api/version" is "http://h/ollama/api/version").
	// Default "/", which Ollama answers with "Ollama is running".
	Path string
	// FailThreshold is how many consecutive failed checks mark an up (or
	// unknown) backend down, so one blip does not flap it. Default 2; a
	// negative value also selects 2.
	FailThreshold int
	// RiseThreshold is how many consecutive successful checks mark a down
	// backend up again. A backend whose state is still unknown is up after
	// its first success. Default 1; a negative value also selects 1.
	RiseThreshold int
	// Client sends the checks. Default: a client of the package's own that
	// follows no redirects (a 3xx is a failure), ignores proxy environment
	// variables and has no Client.Timeout (each check's deadline comes from
	// its context). A given client is used as is; if it sets Timeout, the
	// shorter of the two applies.
	Client *http.Client
	// Logger receives one record per state change: Warn "backend down"
	// with backend=<name> err=<reason>, Info "backend up" with
	// backend=<name>. Nothing is logged for a check that changes nothing.
	// Default slog.Default().
	Logger *slog.Logger
	// OnChange, if set, is called after each state change, once logged.
	// Calls for one target are made in the order of its changes, with
	// that target's state locked: OnChange must be quick and must not call
	// back into the Checker (ReportFailure would deadlock on the same
	// target).
	OnChange func(name string, up bool)
	// OnCheck, if set, is called after each active check that was not cut
	// short, with how long it took and why it failed ("" for a success),
	// before the result is counted and without any lock held. It runs on
	// the target's check goroutine: it must be quick.
	OnCheck func(name string, took time.Duration, reason string)
	// Models, if set, keeps the model list of every target that is a
	// ModelTarget: after each successful check of it, the Checker requests
	// Ollama's GET /api/tags (ollamaapi.LocalModelsPath; bounded by
	// Timeout and 8 MiB) and passes the names listed, with the raw
	// entries, to SetModelList. A failed fetch keeps the last list; after
	// three failures in a row, ForgetModels makes it unknown until a fetch
	// succeeds. A check that fails fetches nothing and keeps the list.
	// Default false: no request but the checks.
	Models bool
	// Loaded, if set, keeps what every target that is a LoadedTarget has
	// loaded: after each successful check of it, the Checker requests
	// Ollama's GET /api/ps (ollamaapi.RunningModelsPath; bounded by
	// Timeout and 8 MiB) and passes its entries to SetLoaded; after three
	// failed fetches in a row, ForgetLoaded. Default false.
	Loaded bool
}

// target is the Checker's bookkeeping for one Target: the evidence, not the
// state, which is the Target's. Checks of one target run one at a time from
// Run, but a synchronous round (tests) and ReportFailure may overlap them,
// so everything but the immutable fields is guarded by mu.
type target struct {
	t    Target
	name string // t.Name(), read once
	url  string // joinURL(name, Options.Path)

	mt        ModelTarget // t, when its models are kept; else nil
	modelsURL string      // joinURL(name, ollamaapi.LocalModelsPath)

	mu    sync.Mutex
	fails int    // consecutive failures, saturated at the fail threshold
	rises int    // consecutive successes, saturated at the rise threshold
	epoch uint64 // bumped by ReportFailure; older check results are stale

	modelFails int // consecutive failed model list fetches, saturated

	lt      LoadedTarget // t, when its loaded models are kept; else nil
	psURL   string       // joinURL(name, ollamaapi.RunningModelsPath)
	psFails int          // consecutive failed /api/ps fetches, saturated
}

// Checker actively checks a fixed set of targets and takes passive reports
// of failures from the proxy. It keeps a failure and a success streak per
// target and marks the target up or down when a threshold is reached.
//
// A Checker must be created with New. Its methods are safe for concurrent
// use. Run is meant to be called once, for the life of the targets.
type Checker struct {
	targets  []*target
	byTarget map[Target]*target

	interval time.Duration
	timeout  time.Duration
	fail     int
	rise     int
	client   *http.Client
	ownsConn bool // client was built by New: Run closes its idle conns
	log      *slog.Logger
	onChange func(name string, up bool)
	onCheck  func(name string, took time.Duration, reason string)
}

// New returns a Checker of targets, with opts completed by their defaults.
// It does not call SetHealthy: every target keeps the state it has (unknown
// for a new backend, its last state for one kept across a reload). A nil
// target is skipped, and a target given twice is checked once. The targets
// should be comparable (pointers are) for ReportFailure to find them.
func New(targets []Target, opts Options) *Checker {
	c := &Checker{
		byTarget: make(map[Target]*target, len(targets)),
		interval: opts.Interval,
		timeout:  opts.Timeout,
		fail:     opts.FailThreshold,
		rise:     opts.RiseThreshold,
		client:   opts.Client,
		log:      opts.Logger,
		onChange: opts.OnChange,
		onCheck:  opts.OnCheck,
	}
	switch {
	case c.interval == 0:
		c.interval = 30 * time.Second
	case c.interval < time.Second:
		c.interval = time.Second
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.fail <= 0 {
		c.fail = 2
	}
	if c.rise <= 0 {
		c.rise = 1
	}
	if c.client == nil {
		c.client = newClient()
		c.ownsConn = true
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	path := opts.Path
	if path == "" {
		path = "/"
	}
	for _, t := range targets {
		if t == nil {
			continue
		}
		comparable := reflect.TypeOf(t).Comparable()
		if comparable {
			if _, dup := c.byTarget[t]; dup {
				continue
			}
		}
		ts := &target{t: t, name: t.Name()}
		ts.url = joinURL(ts.name, path)
		if mt, ok := t.(ModelTarget); ok && opts.Models {
			ts.mt = mt
			ts.modelsURL = joinURL(ts.name, ollamaapi.LocalModelsPath)
		}
		if lt, ok := t.(LoadedTarget); ok && opts.Loaded {
			ts.lt = lt
			ts.psURL = joinURL(ts.name, ollamaapi.RunningModelsPath)
		}
		c.targets = append(c.targets, ts)
		if comparable {
			c.byTarget[t] = ts
		}
	}
	return c
}

// Run checks every target at once, then every Interval, until ctx is done.
// Each target is checked by its own goroutine with its own ticker, so a hung
// backend (bounded anyway by Timeout) never delays the others' checks. A
// check cut short by ctx is not counted. Run returns after all its
// goroutines have stopped.
func (c *Checker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ts := range c.targets {
		wg.Go(func() { c.loop(ctx, ts) })
	}
	<-ctx.Done()
	wg.Wait()
	if c.ownsConn {
		c.client.CloseIdleConnections()
	}
}

// loop checks ts now and then on every tick until ctx is done. A check that
// outlasts Interval makes the ticker drop ticks, not queue them.
func (c *Checker) loop(ctx context.Context, ts *target) {
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		c.check(ctx, ts)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// check probes ts once and records the result, unless ctx ended first (the
// failure would be ours, not the backend's) or a passive report arrived
// while the check was in flight (the report is newer evidence). After a
// success it refreshes the target's model list and loaded models, if kept.
func (c *Checker) check(ctx context.Context, ts *target) {
	ts.mu.Lock()
	epoch := ts.epoch
	ts.mu.Unlock()

	start := time.Now()
	reason := c.probe(ctx, ts.url)
	if ctx.Err() != nil {
		return
	}
	if c.onCheck != nil {
		c.onCheck(ts.name, time.Since(start), reason)
	}
	if !c.record(ts, epoch, reason) {
		return
	}
	if ts.mt != nil {
		c.refreshModels(ctx, ts)
	}
	if ts.lt != nil {
		c.refreshLoaded(ctx, ts)
	}
}

// record counts the result of a check started at epoch (reason "" is a
// success) and reports whether it was a success that counted. A target
// that is not down (up, or unknown) is up after one success; a down one
// after RiseThreshold.
func (c *Checker) record(ts *target, epoch uint64, reason string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.epoch != epoch {
		return false
	}
	if reason == "" {
		ts.fails = 0
		ts.rises = min(ts.rises+1, c.rise)
		if ts.rises >= c.rise || !ts.t.Down() {
			c.setLocked(ts, true, "")
		}
		return true
	}
	ts.rises = 0
	ts.fails = min(ts.fails+1, c.fail)
	if ts.fails >= c.fail {
		c.setLocked(ts, false, reason)
	}
	return false
}

// ReportFailure is a passive observation from the proxy: t could not be
// connected to. It marks t down at once (no threshold: a refused connection
// is conclusive) and resets its success streak; a check already in flight is
// not counted, and the next active check may bring t back (RiseThreshold).
// A target not given to New is ignored, since no check would ever bring it
// back. Safe for concurrent use; it is a map lookup and a lock, plus a log
// record when the state changes.
func (c *Checker) ReportFailure(t Target, err error) {
	if t == nil || !reflect.TypeOf(t).Comparable() {
		return
	}
	ts := c.byTarget[t]
	if ts == nil {
		return
	}
	reason := "reported failure"
	if err != nil {
		reason = err.Error()
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.epoch++
	ts.rises = 0
	ts.fails = c.fail
	c.setLocked(ts, false, reason)
}

// setLocked tells the target its health. It logs and calls OnChange only
// if the target reports a change. ts.mu must be held.
func (c *Checker) setLocked(ts *target, up bool, reason string) {
	if !ts.t.SetHealthy(up) {
		return
	}
	if up {
		c.log.Info("backend up", "backend", ts.name)
	} else {
		c.log.Warn("backend down", "backend", ts.name, "err", reason)
	}
	if c.onChange != nil {
		c.onChange(ts.name, up)
	}
}
