package keyusage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/redistest"
	"github.com/ollamagw/ollama-gateway/keyusage"
	"github.com/ollamagw/ollama-gateway/redisstore"
)

func newRedis(t *testing.T, url string, closed bool) (*keyusage.Redis, *keyusage.Memory) {
	t.Helper()
	c, err := redisstore.New(redisstore.Options{URL: url, KeyPrefix: "t:", Timeout: 2 * time.Second, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	fb := new(keyusage.Memory)
	return keyusage.NewRedis(c, fb, closed), fb
}

// Two stores on one Redis, as two replicas: each sees the other's charges,
// in totals, windows and budgets.
func TestRedisSharedAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newRedis(t, srv.URL(), false)
	b, _ := newRedis(t, srv.URL(), false)
	id := [16]byte{1, 2, 3}
	const w = time.Hour
	t0 := time.Unix(1_800_000_000, 0).Add(10 * time.Minute) // inside a window

	a.Charge(id, w, 10, 5, t0)
	b.Charge(id, w, 20, 1, t0.Add(time.Second))
	tests := []struct {
		name string
		s    *keyusage.Redis
		now  time.Time
		want int64
	}{
		{"A stale figure is reread", a, t0.Add(time.Second + keyusage.Fresh), 36},
		{"B from its own charge reply", b, t0.Add(time.Second), 36},
		{"next window starts at zero", a, t0.Add(w), 0},
	}
	for _, tt := range tests {
		got, _, err := tt.s.Budget(id, w, tt.now)
		if err != nil || got != tt.want {
			t.Errorf("%s: Budget = %d, %v; want %d, nil", tt.name, got, err, tt.want)
		}
	}
	u := b.Usage(id, w, t0.Add(2*time.Second))
	want := keyusage.Totals{Requests: 2, PromptTokens: 30, CompletionTokens: 6}
	if u.Total != want || u.Window != want {
		t.Errorf("Usage on B: total %+v window %+v; want both %+v", u.Total, u.Window, want)
	}
	if got := keyusage.WindowStart(t0, w); !u.WindowStart.Equal(got) {
		t.Errorf("WindowStart = %v; want %v", u.WindowStart, got)
	}
	if !u.LastUsed.Equal(t0.Add(time.Second)) {
		t.Errorf("LastUsed = %v; want %v", u.LastUsed, t0.Add(time.Second))
	}
	if u := a.Usage(id, w, t0.Add(w)); u.Window != (keyusage.Totals{}) || u.Total != want {
		t.Errorf("Usage next window: total %+v window %+v; want %+v and zero", u.Total, u.Window, want)
	}
}

// A figure seen within Fresh is used without a read: another replica's
// charge shows once it is older.
func TestRedisBudgetFresh(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newRedis(t, srv.URL(), false)
	b, _ := newRedis(t, srv.URL(), false)
	id := [16]byte{9}
	const w = time.Minute
	t0 := time.Unix(1_800_000_000, 0)
	a.Charge(id, w, 1, 1, t0)
	b.Charge(id, w, 100, 0, t0)
	if got, _, _ := a.Budget(id, w, t0.Add(keyusage.Fresh/2)); got != 2 {
		t.Errorf("within Fresh: Budget = %d; want 2 (A's own reply)", got)
	}
	if got, _, _ := a.Budget(id, w, t0.Add(keyusage.Fresh)); got != 102 {
		t.Errorf("after Fresh: Budget = %d; want 102", got)
	}
}

// With Redis down, charges go to the fallback; open adds the fallback to
// the last figure seen, closed answers ErrUnavailable.
func TestRedisDown(t *testing.T) {
	for _, closed := range []bool{false, true} {
		srv := redistest.Start(t)
		s, fb := newRedis(t, srv.URL(), closed)
		id := [16]byte{7}
		const w = time.Minute
		t0 := time.Unix(1_800_000_000, 0)
		s.Charge(id, w, 5, 5, t0)
		srv.Stop()
		s.Charge(id, w, 3, 0, t0.Add(time.Second))
		if got := fb.Usage(id, w, t0.Add(time.Second)).Window.Tokens(); got != 3 {
			t.Errorf("closed=%v: fallback window = %d; want 3", closed, got)
		}
		got, _, err := s.Budget(id, w, t0.Add(time.Second))
		switch {
		case closed && !errors.Is(err, keyusage.ErrUnavailable):
			t.Errorf("closed: Budget err = %v; want ErrUnavailable", err)
		case !closed && (err != nil || got != 13):
			t.Errorf("open: Budget = %d, %v; want 13, nil", got, err)
		}
		if u := s.Usage(id, w, t0.Add(time.Second)); u.Window.Tokens() != 3 {
			t.Errorf("closed=%v: Usage while down = %+v; want the fallback's", closed, u.Window)
		}
	}
}
