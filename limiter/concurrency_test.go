package limiter_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ollamagw/ollama-gateway/limiter"
)

func TestConcurrency(t *testing.T) {
	c := limiter.NewConcurrency(limiter.Options{})
	acquire := func(k limiter.ClientKey, max int, want bool) *limiter.Slot {
		t.Helper()
		s, ok := c.Acquire(k, max)
		if ok != want {
			t.Fatalf("Acquire(%v, %d) ok = %v; want %v", k, max, ok, want)
		}
		if !ok && s != nil {
			t.Fatalf("Acquire(%v, %d) refused with a non-nil slot", k, max)
		}
		return s
	}
	a := acquire(client, 2, true)
	b := acquire(client, 2, true)
	acquire(client, 2, false)
	other := acquire(v4(1), 2, true) // clients are independent
	if n := c.Len(); n != 2 {
		t.Errorf("Len() = %d; want 2", n)
	}
	a.Release()
	d := acquire(client, 2, true) // a released slot can be taken again
	acquire(client, 2, false)
	acquire(client, 3, true).Release() // a higher max applies at once
	acquire(client, 1, false)          // so does a lower one
	b.Release()
	d.Release()
	other.Release()
	if n := c.Len(); n != 0 {
		t.Errorf("Len() = %d after releasing every slot; want 0", n)
	}

	// Unlimited: always ok, nothing tracked, the nil slot releases.
	for range 10 {
		s := acquire(client, 0, true)
		if s != nil {
			t.Fatal("Acquire(max 0) returned a slot")
		}
		defer s.Release()
	}
	acquire(client, -1, true)
	if n := c.Len(); n != 0 {
		t.Errorf("Len() = %d after unlimited acquisitions; want 0", n)
	}
	var nilSlot *limiter.Slot
	nilSlot.Release()
}

func TestConcurrencyFullTableFailsClosed(t *testing.T) {
	c := limiter.NewConcurrency(limiter.Options{Shards: 1, MaxClients: 2})
	s1, _ := c.Acquire(v4(1), 5)
	s2, _ := c.Acquire(v4(2), 5)
	if _, ok := c.Acquire(v4(3), 5); ok {
		t.Error("Acquire of a third client in a table of 2 succeeded")
	}
	if _, ok := c.Acquire(v4(1), 5); !ok {
		t.Error("Acquire of a tracked client refused")
	}
	s2.Release()
	s3, ok := c.Acquire(v4(3), 5)
	if !ok {
		t.Error("Acquire refused after a client left the table")
	}
	s1.Release()
	s1.Release()
	s3.Release()
	if n := c.Len(); n != 0 {
		t.Errorf("Len() = %d; want 0", n)
	}
}

// TestConcurrencyExact checks that racing goroutines never hold more than
// max slots of one client at once, and that exactly max of them get one
// when nobody releases.
func TestConcurrencyExact(t *testing.T) {
	const (
		goroutines = 64
		max        = 5
	)
	c := limiter.NewConcurrency(limiter.Options{})

	var got atomic.Int64
	var held sync.WaitGroup
	slots := make(chan *limiter.Slot, goroutines)
	for range goroutines {
		held.Go(func() {
			if s, ok := c.Acquire(client, max); ok {
				got.Add(1)
				slots <- s
			}
		})
	}
	held.Wait()
	close(slots)
	if got.Load() != max {
		t.Fatalf("%d goroutines: %d acquired; want exactly %d", goroutines, got.Load(), max)
	}
	for s := range slots {
		s.Release()
	}

	var inFlight, peak atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range 500 {
				s, ok := c.Acquire(client, max)
				if !ok {
					continue
				}
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				inFlight.Add(-1)
				s.Release()
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > max || p == 0 {
		t.Errorf("peak in flight = %d; want 1..%d", p, max)
	}
	if n := c.Len(); n != 0 {
		t.Errorf("Len() = %d after all released; want 0", n)
	}
}

func TestConcurrencyNoAllocs(t *testing.T) {
	c := limiter.NewConcurrency(limiter.Options{})
	hold, _ := c.Acquire(client, 10) // an existing holder
	defer hold.Release()
	allocs := testing.AllocsPerRun(1000, func() {
		s, _ := c.Acquire(client, 10)
		s.Release()
	})
	if allocs != 0 {
		t.Errorf("Acquire+Release of an existing holder: %v allocs per run; want 0", allocs)
	}
}
