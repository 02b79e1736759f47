package health

import (
	"context"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// loadedTarget is a fakeTarget that keeps /api/ps entries.
type loadedTarget struct {
	*fakeTarget

	mu      sync.Mutex
	entries []json.RawMessage
	fetched time.Time
	known   bool
}

func (l *loadedTarget) SetLoaded(entries []json.RawMessage, fetched time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.fetched, l.known = entries, fetched, true
}

func (l *loadedTarget) ForgetLoaded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.known = nil, false
}

// TestCheckerFetchesLoaded: a successful check fetches /api/ps and hands
// its entries over as sent; three failed fetches forget them.
func TestCheckerFetchesLoaded(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen2.5"), ollamatest.WithLoaded("llama3.2"))
	lt := &loadedTarget{fakeTarget: newFake(fake.URL)}
	c := New([]Target{lt}, Options{Loaded: true, Timeout: 2 * time.Second})
	before := time.Now()
	c.Check(context.Background())
	lt.mu.Lock()
	entries, fetched, known := lt.entries, lt.fetched, lt.known
	lt.mu.Unlock()
	if !known || len(entries) != 1 {
		t.Fatalf("entries %s (known %v); want the one loaded model", entries, known)
	}
	var e struct {
		Name      string    `json:"name"`
		ExpiresAt time.Time `json:"expires_at"`
		SizeVRAM  int64     `json:"size_vram"`
	}
	if err := json.Unmarshal(entries[0], &e); err != nil || e.Name != "llama3.2:latest" || e.ExpiresAt.IsZero() {
		t.Errorf("entry %s: %+v, %v; want llama3.2:latest with expires_at", entries[0], e, err)
	}
	if fetched.Before(before) {
		t.Errorf("fetched %v; want the fetch's start, after %v", fetched, before)
	}
	if n := fake.RequestsTo("/api/ps"); n != 1 {
		t.Errorf("%d /api/ps requests; want 1", n)
	}

	// A target that is not kept: no /api/ps request.
	c = New([]Target{lt}, Options{Timeout: 2 * time.Second})
	c.Check(context.Background())
	if n := fake.RequestsTo("/api/ps"); n != 1 {
		t.Errorf("%d /api/ps requests without Options.Loaded; want 1", n)
	}
}
