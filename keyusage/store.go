// Package keyusage counts what each API key used: requests and tokens,
// since start and in the key's current budget window. The gateway charges
// a request when its response has ended and asks before forwarding one
// whether the key still has tokens left.
//
// [Store] is the interface the gateway uses; [Memory] keeps the counters
// in this process. Counters in a shared store (Redis, for several
// replicas) implement the same interface.
package keyusage

import (
	"sync"
	"time"
)

// Totals are a key's counters over some span.
type Totals struct {
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
}

// Tokens returns PromptTokens + CompletionTokens.
func (t Totals) Tokens() int64 { return t.PromptTokens + t.CompletionTokens }

// Usage is what a Store knows about one key.
type Usage struct {
	// Total is counted since the store started.
	Total Totals
	// Window is counted in the current budget window, which started at
	// WindowStart; zero when the key has no window.
	Window      Totals
	WindowStart time.Time
	// LastUsed is when the key's last request was charged; zero if never.
	LastUsed time.Time
}

// Store counts requests and tokens per key, the key named by its id (the
// first 16 bytes of its digest). A budget window of length w is a fixed
// span: the windows of a key start at the multiples of w since the Unix
// epoch, so every replica agrees on them without talking. window 0 means
// the key has no window. Implementations are safe for concurrent use.
type Store interface {
	// Charge records one finished request of key id and its tokens at now.
	Charge(id [16]byte, window time.Duration, prompt, completion int64, now time.Time)
	// WindowTokens returns the tokens key id has spent in its window at
	// now, and when that window ends.
	WindowTokens(id [16]byte, window time.Duration, now time.Time) (tokens int64, ends time.Time)
	// Usage returns the counters of key id at now.
	Usage(id [16]byte, window time.Duration, now time.Time) Usage
}

// WindowStart returns the start of the window of length w that holds now.
func WindowStart(now time.Time, w time.Duration) time.Time {
	if w <= 0 {
		return time.Time{}
	}
	return time.Unix(0, now.UnixNano()-now.UnixNano()%int64(w))
}

// Memory is a Store in this process's memory. The zero value is ready to
// use. It keeps one small record per key ever charged.
type Memory struct {
	mu   sync.RWMutex
	keys map[[16]byte]*record
}

var _ Store = (*Memory)(nil)

// record is one key's counters.
type record struct {
	mu          sync.Mutex
	total       Totals
	window      Totals
	windowStart time.Time
	lastUsed    time.Time
}

// get returns the record of id, creating it when create.
func (m *Memory) get(id [16]byte, create bool) *record {
	m.mu.RLock()
	r := m.keys[id]
	m.mu.RUnlock()
	if r != nil || !create {
		return r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r = m.keys[id]; r == nil {
		if m.keys == nil {
			m.keys = make(map[[16]byte]*record)
		}
		r = new(record)
		m.keys[id] = r
	}
	return r
}

// roll moves r to the window of length w holding now. r.mu is held.
func (r *record) roll(w time.Duration, now time.Time) {
	start := WindowStart(now, w)
	if !start.Equal(r.windowStart) {
		r.window, r.windowStart = Totals{}, start
	}
}

// Charge implements Store.
func (m *Memory) Charge(id [16]byte, window time.Duration, prompt, completion int64, now time.Time) {
	r := m.get(id, true)
	r.mu.Lock()
	r.roll(window, now)
	for _, t := range []*Totals{&r.total, &r.window} {
		t.Requests++
		t.PromptTokens += prompt
		t.CompletionTokens += completion
	}
	r.lastUsed = now
	r.mu.Unlock()
}

// WindowTokens implements Store.
func (m *Memory) WindowTokens(id [16]byte, window time.Duration, now time.Time) (int64, time.Time) {
	ends := WindowStart(now, window).Add(window)
	r := m.get(id, false)
	if r == nil {
		return 0, ends
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roll(window, now)
	return r.window.Tokens(), ends
}

// Usage implements Store.
func (m *Memory) Usage(id [16]byte, window time.Duration, now time.Time) Usage {
	r := m.get(id, false)
	if r == nil {
		return Usage{WindowStart: WindowStart(now, window)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roll(window, now)
	return Usage{Total: r.total, Window: r.window, WindowStart: r.windowStart, LastUsed: r.lastUsed}
}
