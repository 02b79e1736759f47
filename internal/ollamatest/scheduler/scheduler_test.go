package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitState(t *testing.T, s *Scheduler, what string, cond func() bool) {
	t.Helper()
	if err := s.WaitFor(testContext(t), cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// acquireAsync runs Acquire in a goroutine.
func acquireAsync(ctx context.Context, s *Scheduler, model string) <-chan error {
	ch := make(chan error, 1)
	go func() {
		l, err := s.Acquire(ctx, model, nil)
		if err == nil {
			l.Release()
		}
		ch <- err
	}()
	return ch
}

func TestConfigFloors(t *testing.T) {
	s := New(Config{Parallel: 0, MaxLoaded: -1, MaxQueue: -5, KeepAlive: -1})
	if got := s.cfg; got.Parallel != 1 || got.MaxLoaded != 1 || got.MaxQueue != 0 || got.KeepAlive != Forever {
		t.Errorf("cfg = %+v; want Parallel 1, MaxLoaded 1, MaxQueue 0, KeepAlive Forever", got)
	}
}

// TestPendingCancelFreesPlace: a request that gives up while pending
// leaves the queue at once, making room for another.
func TestPendingCancelFreesPlace(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxLoaded, cfg.MaxQueue = 1, 1
	s := New(cfg)
	defer s.Close()
	busy, err := s.Acquire(testContext(t), "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	head := acquireAsync(testContext(t), s, "b")
	waitState(t, s, "head pending", func() bool { return s.Pending() == 1 })
	ctx, cancel := context.WithCancel(testContext(t))
	behind := acquireAsync(ctx, s, "c")
	waitState(t, s, "second pending", func() bool { return s.Pending() == 2 })
	if _, err := s.Acquire(testContext(t), "c", nil); !errors.Is(err, ErrMaxQueue) {
		t.Fatalf("third: err = %v; want ErrMaxQueue", err)
	}
	cancel()
	if err := <-behind; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v; want context.Canceled", err)
	}
	if got := s.Pending(); got != 1 {
		t.Fatalf("Pending after the cancel = %d; want 1", got)
	}
	again := acquireAsync(testContext(t), s, "c")
	waitState(t, s, "room again", func() bool { return s.Pending() == 2 })
	busy.Release()
	for _, ch := range []<-chan error{head, again} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.LoadCount(); got != 3 {
		t.Errorf("LoadCount = %d; want 3 (a, b, c)", got)
	}
}

// TestManualLoad: requests for a loading model join the one load.
func TestManualLoad(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Parallel = 4
	cfg.LoadDelay = func(string) time.Duration { return Manual }
	s := New(cfg)
	defer s.Close()
	var chs []<-chan error
	for range 4 {
		chs = append(chs, acquireAsync(testContext(t), s, "m"))
	}
	waitState(t, s, "all waiting", func() bool { return s.Queued("m") == 4 })
	if got := s.Loaded(); len(got) != 1 || !got[0].Loading {
		t.Fatalf("Loaded = %+v; want m, loading", got)
	}
	if !s.EndLoad("m") {
		t.Fatal("EndLoad = false")
	}
	for _, ch := range chs {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Loads("m"); got != 1 {
		t.Errorf("Loads = %d; want 1", got)
	}
}

func TestPreloadFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxLoaded = 1
	s := New(cfg)
	defer s.Close()
	if err := s.Preload("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Preload("b"); err == nil {
		t.Error("Preload past MaxLoaded: no error")
	}
}

// TestCloseEndsWaits: Close wakes every waiting request with ErrClosed.
func TestCloseEndsWaits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LoadDelay = func(string) time.Duration { return Manual }
	s := New(cfg)
	ch := acquireAsync(testContext(t), s, "m")
	waitState(t, s, "waiting", func() bool { return s.Queued("m") == 1 })
	s.Close()
	if err := <-ch; !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v; want ErrClosed", err)
	}
	if _, err := s.Acquire(testContext(t), "m", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err = %v; want ErrClosed", err)
	}
}
