package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// countingListener records how many bytes the server read from each
// connection it accepted.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countingConn
}

type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	cc := &countingConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

// readAtLeast counts the connections the server read at least n bytes from.
func (l *countingListener) readAtLeast(n int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := 0
	for _, c := range l.conns {
		if c.n.Load() >= n {
			k++
		}
	}
	return k
}

// bodyClient is a raw connection that sent a request head and part of its
// body and reads the answer in the background.
type bodyClient struct {
	c      net.Conn
	status chan int // the response status; 0 when the connection ended without one
}

// startBody sends a POST /api/chat announcing declared bytes, then sends
// the first sent bytes of the body (from fill) and stalls.
func startBody(t *testing.T, addr, key string, declared int, sent []byte) *bodyClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	bc := &bodyClient{c: c, status: make(chan int, 1)}
	head := fmt.Sprintf("POST /api/chat HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", key, declared)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			bc.status <- 0
			return
		}
		resp.Body.Close()
		bc.status <- resp.StatusCode
	}()
	go func() {
		// A refused client may see its writes fail: the gateway closes.
		if _, err := io.WriteString(c, head); err == nil {
			_, _ = c.Write(sent)
		}
	}()
	return bc
}

// TestStalledBodiesStayWithinBudget is the regression test of issue 10
// item 5: clients that each send most of a large declared /api/chat body
// and stall made the gateway buffer every one of them (20 × 60 MB grew it to
// 2 GB). The budget admits only what fits; the others are refused at once,
// and the bytes held stay within proxy.maxBufferedBodyBytes. Scaled down
// (20 × 6 MB against a 16 MiB budget) to run quickly.
func TestStalledBodiesStayWithinBudget(t *testing.T) {
	const (
		clients  = 20
		sent     = 6_000_000
		declared = 6_100_000
		budget   = 16 << 20
	)
	fake := ollamatest.New(t)
	cfg := config.Default()
	cfg.OllamaAddresses = []string{fake.URL}
	for i := range clients {
		cfg.APIKeys = append(cfg.APIKeys, config.KeyEntry{Key: fmt.Sprintf("stall-key-%02d-0123456789", i)})
	}
	cfg.Proxy.MaxRequestBodyBytes = 8 << 20
	cfg.Proxy.MaxBufferedBodyBytes = budget
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: listen(t)}
	gw := serve(t, ln, &cfg, nil)
	addr := strings.TrimPrefix(gw.URL, "http://")

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	body := []byte(strings.Repeat("x", sent))
	bcs := make([]*bodyClient, clients)
	for i := range bcs {
		bcs[i] = startBody(t, addr, cfg.APIKeys[i].Key, declared, body)
	}
	// Two bodies fit the budget; every other client is refused at once:
	// a 503, or a reset when it was still sending as the gateway closed.
	refused := 0
	deadline := time.After(20 * time.Second)
	for refused < clients-2 {
		select {
		case <-deadline:
			t.Fatalf("%d clients refused within 20s; want %d (bytes held %d)", refused, clients-2, gw.gw.BufferedBodyBytes())
		default:
		}
		for _, bc := range bcs {
			select {
			case st := <-bc.status:
				if st != 503 && st != 0 {
					t.Errorf("a client over budget got %d; want 503", st)
				}
				refused++
			default:
			}
		}
		if held := gw.gw.BufferedBodyBytes(); held > budget {
			t.Fatalf("bytes held %d > budget %d", held, budget)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The admitted two are read up to their stall.
	eventually(t, "the admitted bodies read", func() bool { return ln.readAtLeast(sent) >= 2 })
	if held := gw.gw.BufferedBodyBytes(); held != 2*declared {
		t.Errorf("bytes held %d; want %d (two admitted bodies at their announced length)", held, 2*declared)
	}
	if n := ln.readAtLeast(sent); n != 2 {
		t.Errorf("%d bodies read whole; want 2", n)
	}
	// A coarse check of the heap: the two bodies, not twenty.
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d MB with the bodies stalled", grown>>20)
	if grown > 4*budget {
		t.Errorf("heap grew by %d MB with the bodies stalled; want under %d MB", grown>>20, 4*budget>>20)
	}

	// A well-behaved client over budget (it waits for the answer) sees
	// the 503 with Retry-After in Ollama's error shape. It sends what
	// fasthttp reads with the headers before any handler runs.
	wait := "{" + strings.Repeat(" ", 10_000)
	resp := rawRequestNoFatal(t, addr, fmt.Sprintf("POST /api/chat HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", cfg.APIKeys[0].Key, declared, wait))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(errorOf(t, string(b)), "maxBufferedBodyBytes") {
		t.Errorf("over budget: %d Retry-After %q %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}

	// The stalled clients leave: their share comes back.
	for _, bc := range bcs {
		bc.c.Close()
	}
	eventually(t, "the budget given back", func() bool { return gw.gw.BufferedBodyBytes() == 0 })
	if fake.RequestsTo("/api/chat") != 0 {
		t.Error("an incomplete body reached Ollama")
	}
}

// rawRequestNoFatal writes req to addr and reads one response.
func rawRequestNoFatal(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestBodyBudgetPerKey: one key cannot hold more than its share of the
// budget, with rate limiting (and so maxConcurrent) off; other keys still
// get theirs.
func TestBodyBudgetPerKey(t *testing.T) {
	const (
		keyA     = "share-key-a-0123456789"
		keyB     = "share-key-b-0123456789"
		declared = 600_000
	)
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = config.Keys(keyA, keyB)
		c.Proxy.MaxRequestBodyBytes = 1 << 20 // per key: 2 MiB, total 4 MiB
	}, fake.URL)
	addr := strings.TrimPrefix(gw.URL, "http://")
	part := []byte("{" + strings.Repeat(" ", 10_000))

	a1 := startBody(t, addr, keyA, declared, part)
	a2 := startBody(t, addr, keyA, declared, part)
	a3 := startBody(t, addr, keyA, declared, part)
	eventually(t, "three bodies of key A held", func() bool { return gw.gw.BufferedBodyBytes() == 3*declared })

	resp := rawRequestNoFatal(t, addr, fmt.Sprintf("POST /api/chat HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", keyA, declared, part))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(errorOf(t, string(b)), "maxBufferedBodyBytesPerKey") {
		t.Errorf("key over its share: %d Retry-After %q %s; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	b1 := startBody(t, addr, keyB, declared, part)
	eventually(t, "key B's body held", func() bool { return gw.gw.BufferedBodyBytes() == 4*declared })

	for _, bc := range []*bodyClient{a1, a2, a3, b1} {
		select {
		case st := <-bc.status:
			t.Errorf("a body within its share was answered %d", st)
		default:
		}
		bc.c.Close()
	}
	eventually(t, "the budget given back", func() bool { return gw.gw.BufferedBodyBytes() == 0 })
}

// TestChunkedBodyOverBudget: a chunked body, of unknown length, reserves
// step by step and is refused with 503 when the budget runs out mid-body.
func TestChunkedBodyOverBudget(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = config.Keys(testKey, "other-key-0123456789")
		c.Proxy.MaxRequestBodyBytes = 1 << 20
		c.Proxy.MaxBufferedBodyBytes = 1 << 20
	}, fake.URL)
	addr := strings.TrimPrefix(gw.URL, "http://")
	// One stalled body of another key holds most of the budget.
	startBody(t, addr, "other-key-0123456789", 900_000, []byte("{"+strings.Repeat(" ", 10_000)))
	eventually(t, "the first body held", func() bool { return gw.gw.BufferedBodyBytes() == 900_000 })

	chunk := strings.Repeat(" ", 50_000)
	var req strings.Builder
	req.WriteString("POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + authHeader +
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 6 { // 300 kB: past the 124 kB left
		fmt.Fprintf(&req, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	req.WriteString("0\r\n\r\n")
	resp := rawRequestNoFatal(t, addr, req.String())
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(errorOf(t, string(b)), "maxBufferedBodyBytes") {
		t.Errorf("chunked body over budget: %d %s; want 503", resp.StatusCode, b)
	}
	if held := gw.gw.BufferedBodyBytes(); held != 900_000 {
		t.Errorf("bytes held %d after the refusal; want 900000 (the stalled body's)", held)
	}
}

// TestSlowBodyCut: a body that trickles (1 byte every 50 ms after 9 kB)
// or stalls is cut by the minimum average rate with 408, long before the
// idle timeout between reads (5 min) would notice.
func TestSlowBodyCut(t *testing.T) {
	fake := ollamatest.New(t)
	cfg := config.Default()
	cfg.OllamaAddresses = []string{fake.URL}
	cfg.APIKeys = config.Keys(testKey)
	cfg.Proxy.MinRequestBodyBytesPerSecond = 8192
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gw := serve(t, listen(t), &cfg, nil, withBodyGrace(200*time.Millisecond))
	for _, tc := range []struct {
		name  string
		every time.Duration // 0: stall
	}{
		{"trickle", 50 * time.Millisecond},
		{"stall", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			start := time.Now()
			if _, err := io.WriteString(c, "POST /api/chat HTTP/1.1\r\nHost: gw\r\n"+authHeader+
				"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"+strings.Repeat(" ", 9000)); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tc.every > 0 {
				go func() {
					tick := time.NewTicker(tc.every)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if _, err := c.Write([]byte(" ")); err != nil {
								return
							}
						}
					}
				}()
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if resp.StatusCode != 408 || !strings.Contains(errorOf(t, string(b)), "too slowly") {
				t.Errorf("%s: %d %s; want 408", tc.name, resp.StatusCode, b)
			}
			// 9 kB at 8 kB/s is due 1.1 s after the 0.2 s grace.
			if took > 10*time.Second {
				t.Errorf("cut after %v; want about 1.3 s", took)
			}
			eventually(t, "the budget given back", func() bool { return gw.gw.BufferedBodyBytes() == 0 })
		})
	}
	if fake.RequestsTo("/api/chat") != 0 {
		t.Error("a cut body reached Ollama")
	}
}
