package proxy

import (
	"sync"
	"testing"
)

func newTestPool(t testing.TB, n int) *Pool {
	t.Helper()
	bs := make([]*Backend, n)
	for i := range bs {
		b, err := NewBackend("http://127.0.0.1:"+string(rune('1'+i))+"1434", BackendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = b
	}
	p, err := NewPool(bs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPoolRoundRobinEven(t *testing.T) {
	p := newTestPool(t, 3)
	counts := map[*Backend]int{}
	for range 300 {
		counts[p.Next()]++
	}
	for _, b := range p.Backends() {
		if counts[b] != 100 {
			t.Errorf("backend %s picked %d times; want 100", b.Name(), counts[b])
		}
	}
}

func TestPoolSkipsDown(t *testing.T) {
	p := newTestPool(t, 3)
	down := p.Backends()[1]
	down.SetHealth(HealthDown)
	for range 30 {
		if b := p.Next(); b == down {
			t.Fatalf("picked backend %s marked down", b.Name())
		}
	}
	// Coming back up returns it to rotation.
	down.SetHealth(HealthUp)
	seen := false
	for range 3 {
		seen = seen || p.Next() == down
	}
	if !seen {
		t.Error("backend back up was not picked in a full round")
	}
}

func TestPoolAllDownStillPicks(t *testing.T) {
	p := newTestPool(t, 2)
	for _, b := range p.Backends() {
		b.SetHealth(HealthDown)
	}
	counts := map[*Backend]int{}
	for range 10 {
		b := p.Next()
		if b == nil {
			t.Fatal("Next returned nil with every backend down")
		}
		counts[b]++
	}
	if len(counts) != 2 {
		t.Errorf("all-down round-robin used %d backends; want 2", len(counts))
	}
}

func TestPoolConcurrentEven(t *testing.T) {
	p := newTestPool(t, 4)
	const workers, each = 8, 1000
	var mu sync.Mutex
	counts := map[*Backend]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[*Backend]int{}
			for range each {
				local[p.Next()]++
			}
			mu.Lock()
			for b, n := range local {
				counts[b] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, b := range p.Backends() {
		if counts[b] != workers*each/4 {
			t.Errorf("backend %s picked %d times; want %d", b.Name(), counts[b], workers*each/4)
		}
	}
}

func TestNewPoolEmpty(t *testing.T) {
	if _, err := NewPool(nil); err != ErrNoBackends {
		t.Fatalf("NewPool(nil) error = %v; want ErrNoBackends", err)
	}
}

func TestNewBackend(t *testing.T) {
	tests := []struct {
		raw, addr, host, prefix string
		tls                     bool
	}{
		{"http://localhost:11434/", "localhost:11434", "localhost:11434", "", false},
		{"http://localhost:11434", "localhost:11434", "localhost:11434", "", false},
		{"https://ollama.example.com/", "ollama.example.com:443", "ollama.example.com", "", true},
		{"http://gpu1/ollama/", "gpu1:80", "gpu1", "/ollama", false},
		{"http://[::1]:11434", "[::1]:11434", "[::1]:11434", "", false},
	}
	for _, tt := range tests {
		b, err := NewBackend(tt.raw, BackendOptions{})
		if err != nil {
			t.Errorf("NewBackend(%q): %v", tt.raw, err)
			continue
		}
		if b.client.Addr != tt.addr || b.host != tt.host || b.prefix != tt.prefix || b.client.IsTLS != tt.tls {
			t.Errorf("NewBackend(%q) = addr %q host %q prefix %q tls %v; want %q %q %q %v",
				tt.raw, b.client.Addr, b.host, b.prefix, b.client.IsTLS, tt.addr, tt.host, tt.prefix, tt.tls)
		}
	}
	for _, bad := range []string{"", "localhost:11434", "ftp://x", "http://"} {
		if _, err := NewBackend(bad, BackendOptions{}); err == nil {
			t.Errorf("NewBackend(%q) succeeded; want error", bad)
		}
	}
}

func BenchmarkRoundRobinParallel(b *testing.B) {
	p := newTestPool(b, 4)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = p.Next()
		}
	})
}
