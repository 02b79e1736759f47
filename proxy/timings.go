package proxy

import (
	"sync/atomic"
	"time"
)

// Learned times per (model, backend), for the choice between waiting for a
// busy backend that has a model loaded and loading it on another: how long
// the model took to load there (Ollama's load_duration in its final
// NDJSON line) and how long a request for it took there. Until one is
// seen the defaults below apply.
const (
	// DefaultLoadTime is the load time assumed for a model not yet seen
	// loading on a backend: Ollama loads a model in 10 to 30 s or more.
	DefaultLoadTime = 10 * time.Second
	// DefaultGenerationTime is the time assumed for one request of a model
	// on a backend that has not served one yet.
	DefaultGenerationTime = 5 * time.Second
	// timingSlots is the size of each backend's table of learned times,
	// indexed by the model's hash: two models sharing a slot overwrite
	// each other's figures, which then fall back to the defaults.
	timingSlots = 32
	// minLoadTime is the shortest load_duration counted as a load: a
	// loaded model reports a few milliseconds.
	minLoadTime = 250 * time.Millisecond
)

// modelTimings is one slot of a backend's table: atomics, read and written
// without a lock (a torn update only mixes two recent figures).
type modelTimings struct {
	hash atomic.Uint64
	load atomic.Int64 // nanoseconds, moving average; 0: unknown
	gen  atomic.Int64 // nanoseconds, moving average; 0: unknown
}

// timingsFor returns the slot of the model of hash h if it holds that
// model, else nil.
func (b *Backend) timingsFor(h uint64) *modelTimings {
	t := &b.timings[h%timingSlots]
	if t.hash.Load() != h {
		return nil
	}
	return t
}

// loadCost returns the expected cost of loading the model of hash h on
// backend i of p: its load time there, twice when the load evicts another
// model (fit), whose next request then pays a load too. The load time is
// the one learned there; else the one learned on another backend of p (the
// same weights load alike); else, once a request for it was timed there,
// twice that time (DefaultLoadTime is twice DefaultGenerationTime): a
// guess in proportion to what the fleet serves, so that a fleet of short
// requests tries one load and learns its real cost rather than never
// loading against a 10 s default; else DefaultLoadTime.
func (p *Pool) loadCost(i int, h uint64, fit loadFit) time.Duration {
	d := p.learned(i, h, func(t *modelTimings) int64 { return t.load.Load() })
	if d <= 0 {
		d = 2 * p.learned(i, h, func(t *modelTimings) int64 { return t.gen.Load() })
	}
	if d <= 0 {
		d = DefaultLoadTime
	}
	if fit == loadEvicts {
		d *= 2
	}
	return d
}

// learned returns the figure of the model of hash h that get reads, on
// backend i of p if it has one, else on the first backend of p that has;
// 0 if none has.
func (p *Pool) learned(i int, h uint64, get func(*modelTimings) int64) time.Duration {
	if t := p.backends[i].timingsFor(h); t != nil {
		if v := get(t); v > 0 {
			return time.Duration(v)
		}
	}
	for _, b := range p.backends {
		if t := b.timingsFor(h); t != nil {
			if v := get(t); v > 0 {
				return time.Duration(v)
			}
		}
	}
	return 0
}

// generationTime returns the learned time of one request of the model of
// hash h on b, or DefaultGenerationTime.
func (b *Backend) generationTime(h uint64) time.Duration {
	if t := b.timingsFor(h); t != nil {
		if v := t.gen.Load(); v > 0 {
			return time.Duration(v)
		}
	}
	return DefaultGenerationTime
}

// observe learns from one request of the model of hash h on b: its load
// time (0 when it reported none) and its whole duration less the load.
func (b *Backend) observe(h uint64, load, total time.Duration) {
	t := &b.timings[h%timingSlots]
	if t.hash.Swap(h) != h {
		t.load.Store(0)
		t.gen.Store(0)
	}
	if load >= minLoadTime {
		ewma(&t.load, load)
	}
	if gen := total - load; gen > 0 {
		ewma(&t.gen, gen)
	}
}

// ewma moves the average v a quarter of the way to d (the first figure is
// taken as is).
func ewma(v *atomic.Int64, d time.Duration) {
	old := v.Load()
	if old == 0 {
		v.Store(int64(d))
		return
	}
	v.Store(old + (int64(d)-old)/4)
}
