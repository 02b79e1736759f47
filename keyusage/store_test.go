package keyusage

import (
	"testing"
	"time"
)

func TestMemoryWindows(t *testing.T) {
	var m Memory
	id := [16]byte{1}
	const w = time.Hour
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		at                 time.Duration
		prompt, completion int64
		wantWindow         int64
		wantTotal          int64
	}{
		{0, 10, 20, 30, 30},
		{59 * time.Minute, 1, 2, 33, 33},
		{time.Hour, 5, 5, 10, 43}, // a new window
		{3 * time.Hour, 0, 0, 0, 43},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		m.Charge(id, w, s.prompt, s.completion, now)
		got, ends := m.WindowTokens(id, w, now)
		if got != s.wantWindow || !ends.Equal(WindowStart(now, w).Add(w)) {
			t.Errorf("step %d: WindowTokens = %d, %v; want %d", i, got, ends, s.wantWindow)
		}
		u := m.Usage(id, w, now)
		if u.Total.Tokens() != s.wantTotal || u.Total.Requests != int64(i+1) || !u.LastUsed.Equal(now) {
			t.Errorf("step %d: Usage = %+v; want %d tokens, %d requests", i, u, s.wantTotal, i+1)
		}
	}
	if n, _ := m.WindowTokens([16]byte{2}, w, t0); n != 0 {
		t.Errorf("unknown key spent %d; want 0", n)
	}
}

func TestMemoryChargeAllocs(t *testing.T) {
	var m Memory
	id := [16]byte{3}
	now := time.Now()
	m.Charge(id, time.Minute, 1, 1, now)
	if n := testing.AllocsPerRun(100, func() { m.Charge(id, time.Minute, 1, 1, now) }); n != 0 {
		t.Errorf("Charge allocates %v times; want 0", n)
	}
}
