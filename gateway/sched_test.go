package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// Fleet scheduling end to end: real gateway, fake Ollamas with Ollama's
// scheduler (internal/ollamatest), loopback sockets.

const chatBody = `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`

// waitInventory waits until the gateway knows every backend's model list
// and /api/ps (the first health check fetches both).
func waitInventory(t testing.TB, gw *testGateway) {
	t.Helper()
	eventually(t, "model lists and /api/ps fetched", func() bool {
		for _, b := range gw.gw.Snapshot().Proxy.Pool().Backends() {
			if b.Models() == nil || b.Loaded() == nil {
				return false
			}
		}
		return true
	})
}

// poolInFlight returns the requests the gateway has in flight.
func poolInFlight(gw *testGateway) int64 {
	var n int64
	for _, b := range gw.gw.Snapshot().Proxy.Pool().Backends() {
		n += b.InFlight()
	}
	return n
}

// hold starts a streamed chat on the gateway that stays open (a paced
// backend sends nothing until released) and waits until the gateway
// counts it in flight. The connection closes with the test.
func hold(t *testing.T, gw *testGateway) net.Conn {
	t.Helper()
	before := poolInFlight(gw)
	c := sendChat(t, gw, testKey)
	eventually(t, "the held stream in flight", func() bool { return poolInFlight(gw) > before })
	return c
}

// sendChat writes a streamed chat request for llama3.2 with key on a new
// connection, without reading the answer.
func sendChat(t *testing.T, gw *testGateway, key string) net.Conn {
	t.Helper()
	return sendChatFor(t, gw, key, "llama3.2")
}

// holdModel is hold for a chat with model.
func holdModel(t *testing.T, gw *testGateway, model string) net.Conn {
	t.Helper()
	before := poolInFlight(gw)
	c := sendChatFor(t, gw, testKey, model)
	eventually(t, "the held "+model+" stream in flight", func() bool { return poolInFlight(gw) > before })
	return c
}

// sendChatFor is sendChat for model.
func sendChatFor(t *testing.T, gw *testGateway, key, model string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	body := `{"model":"` + model + `","messages":[{"role":"user","content":"hold"}]}`
	fmt.Fprintf(c, "POST /api/chat HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		key, len(body), body)
	return c
}

// TestWarmBackendPreferred: two backends have the model, one has it
// loaded: every request goes to the loaded one, none pays a load.
func TestWarmBackendPreferred(t *testing.T) {
	cold := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithScheduler())
	warm := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithLoaded("llama3.2"))
	gw := startGateway(t, nil, cold.URL, warm.URL)
	waitInventory(t, gw)
	for i := range 6 {
		if status, _, body := post(t, gw.URL+"/api/chat", chatBody); status != 200 {
			t.Fatalf("#%d: %d %s", i, status, body)
		}
	}
	if got, stray := warm.RequestsTo("/api/chat"), cold.RequestsTo("/api/chat"); got != 6 || stray != 0 {
		t.Errorf("warm backend got %d, cold %d; want 6, 0", got, stray)
	}
	if n := cold.LoadCount() + warm.LoadCount(); n != 0 {
		t.Errorf("%d model loads; want 0", n)
	}
}

// TestBusyBackendSkipped: both backends have the model loaded; while one
// serves a long stream, requests go to the idle one (round-robin sent
// every other one to the busy backend, behind the stream).
func TestBusyBackendSkipped(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithLoaded("llama3.2"), ollamatest.WithPaced())
	b := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithLoaded("llama3.2"), ollamatest.WithPaced())
	gw := startGateway(t, nil, a.URL, b.URL)
	t.Cleanup(a.Close) // first: ends the held stream
	t.Cleanup(b.Close)
	waitInventory(t, gw)
	hold(t, gw)
	busy, idle := a, b
	if backendOf(t, gw, b.URL).InFlight() > 0 {
		busy, idle = b, a
	}
	for i := range 6 {
		if status, _, body := post(t, gw.URL+"/api/chat", chatBody); status != 200 {
			t.Fatalf("#%d: %d %s", i, status, body)
		}
	}
	if got, stray := idle.RequestsTo("/api/chat"), busy.RequestsTo("/api/chat")-1; got != 6 || stray != 0 {
		t.Errorf("idle backend got %d, busy one %d more; want 6, 0", got, stray)
	}
}

// TestColdBurstLoadsOnce: a burst for a model no backend has loaded loads
// it on one backend, not on each (the first request marks it loading
// there until the next /api/ps).
func TestColdBurstLoadsOnce(t *testing.T) {
	var fakes []*ollamatest.Server
	var urls []string
	for range 3 {
		f := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithParallel(8),
			ollamatest.WithLoadDelay(ollamatest.ManualLoad))
		fakes = append(fakes, f)
		urls = append(urls, f.URL)
	}
	gw := startGateway(t, nil, urls...)
	waitInventory(t, gw)
	const burst = 6
	var wg sync.WaitGroup
	statuses := make([]int, burst)
	for i := range burst {
		wg.Go(func() {
			statuses[i], _, _ = post(t, gw.URL+"/api/chat", chatBody)
		})
	}
	eventually(t, "the burst at the backends", func() bool {
		var n int64
		for _, f := range fakes {
			n += f.RequestsTo("/api/chat")
		}
		return n == burst
	})
	for _, f := range fakes {
		f.EndLoad("llama3.2")
	}
	wg.Wait()
	loads := 0
	for i, f := range fakes {
		loads += f.Loads("llama3.2")
		t.Logf("backend %d: %d requests, %d loads", i, f.RequestsTo("/api/chat"), f.Loads("llama3.2"))
	}
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("request %d: status %d; want 200", i, s)
		}
	}
	if loads != 1 {
		t.Errorf("the burst loaded the model %d times; want 1", loads)
	}
}

// capped sets every backend's cap to n and the queue.
func capped(n, queue, timeout int) func(*config.Config) {
	return func(c *config.Config) {
		c.AddressOptions = make([]config.AddressOptions, len(c.OllamaAddresses))
		for i := range c.AddressOptions {
			c.AddressOptions[i].MaxConcurrent = n
		}
		c.LoadBalancer.QueueSize = queue
		c.LoadBalancer.QueueTimeoutSeconds = timeout
	}
}

// TestQueueRefusals: with the only backend at its cap, a full queue (here
// off) answers 503 at once and an expired wait 503, both JSON with
// Retry-After.
func TestQueueRefusals(t *testing.T) {
	for _, tt := range []struct {
		name         string
		queue        int
		wantFragment string
	}{
		{"queue off", 0, "queue is full"},
		{"timeout", 4, "in time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithPaced())
			gw := startGateway(t, capped(1, tt.queue, 1), f.URL)
			t.Cleanup(f.Close) // first: ends the held stream
			hold(t, gw)
			status, h, body := post(t, gw.URL+"/api/chat", chatBody)
			if status != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, `"error"`) || !strings.Contains(body, tt.wantFragment) {
				t.Errorf("got %d Retry-After=%q %s; want 503 with Retry-After and a JSON error saying %q",
					status, h.Get("Retry-After"), body, tt.wantFragment)
			}
			if n := f.RequestsTo("/api/chat"); n != 1 {
				t.Errorf("backend saw %d chats; want 1 (the held one)", n)
			}
		})
	}
}

// TestQueueClientGoneLeaves: a queued client that hangs up leaves the
// queue at once, freeing its place for another.
func TestQueueClientGoneLeaves(t *testing.T) {
	f := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithPaced())
	gw := startGateway(t, capped(1, 1, 60), f.URL)
	t.Cleanup(f.Close) // first: ends the held streams
	hold(t, gw)
	c := sendChat(t, gw, testKey)
	p := gw.gw.Snapshot().Proxy
	eventually(t, "the second request queued", func() bool { return p.QueueLen() == 1 })
	c.Close()
	eventually(t, "the departed client out of the queue", func() bool { return p.QueueLen() == 0 })
	// Its place is free: a third request queues (and is not refused).
	sendChat(t, gw, testKey)
	eventually(t, "the third request queued", func() bool { return p.QueueLen() == 1 })
}

// TestServerBusyRetried: a backend answering Ollama's 503 "server busy"
// never passes it to the client while another backend with the model can
// take the request.
func TestServerBusyRetried(t *testing.T) {
	var busyHits sync.Map
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/tags":
			fmt.Fprint(w, `{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest"}]}`)
		case "/api/ps":
			fmt.Fprint(w, `{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","size_vram":1}]}`)
		case "/api/chat":
			busyHits.Store(r.RemoteAddr, true)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(503)
			fmt.Fprint(w, `{"error":"server busy, please try again.  maximum pending requests exceeded"}`)
		default:
			fmt.Fprint(w, "Ollama is running")
		}
	}))
	t.Cleanup(busy.Close)
	ok := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithLoaded("llama3.2"))
	gw := startGateway(t, nil, busy.URL, ok.URL)
	waitInventory(t, gw)
	for i := range 6 {
		if status, _, body := post(t, gw.URL+"/api/chat", chatBody); status != 200 {
			t.Fatalf("#%d: %d %s; want 200 from the other backend", i, status, body)
		}
	}
	if n := ok.RequestsTo("/api/chat"); n != 6 {
		t.Errorf("the free backend served %d; want 6", n)
	}
}

// withOllamaLimits tells the gateway each backend's OLLAMA_NUM_PARALLEL
// and OLLAMA_MAX_LOADED_MODELS (0: not told), in order. A queued request
// waits 15 s at most, so that a test whose request is never dispatched
// fails in bounded time.
func withOllamaLimits(limits ...[2]int) func(*config.Config) {
	return func(c *config.Config) {
		c.LoadBalancer.QueueTimeoutSeconds = 15
		c.AddressOptions = make([]config.AddressOptions, len(c.OllamaAddresses))
		for i, l := range limits {
			c.AddressOptions[i] = config.AddressOptions{NumParallel: l[0], MaxLoadedModels: l[1]}
		}
	}
}

// TestNumParallelPerModel: told each backend's OLLAMA_NUM_PARALLEL, the
// gateway sends a model no more requests at once than that: the second
// llama3.2 request goes to the backend with a free llama3.2 slot, though
// two qwen streams run there. Counting requests per backend it went to
// the first, where Ollama queued it behind the held stream.
func TestNumParallelPerModel(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithLoaded("llama3.2"),
		ollamatest.WithParallel(1), ollamatest.WithPaced())
	b := ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen"), ollamatest.WithLoaded("llama3.2", "qwen"),
		ollamatest.WithParallel(2), ollamatest.WithPaced())
	gw := startGateway(t, withOllamaLimits([2]int{1, 0}, [2]int{2, 0}), a.URL, b.URL)
	t.Cleanup(a.Close) // first: ends the held streams
	t.Cleanup(b.Close)
	waitInventory(t, gw)
	holdModel(t, gw, "qwen")
	holdModel(t, gw, "qwen")
	holdModel(t, gw, "llama3.2")
	if n := a.RequestsTo("/api/chat"); n != 1 {
		t.Fatalf("the first llama3.2 stream went to %s; want the backend with fewer requests in flight", b.URL)
	}
	// Not paced: a non-streamed answer.
	if status, _, body := post(t, gw.URL+"/api/chat", chatBody); status != 200 {
		t.Fatalf("second llama3.2 request: %d %s", status, body)
	}
	if na, nb := a.RequestsTo("/api/chat"), b.RequestsTo("/api/chat"); na != 1 || nb != 3 {
		t.Errorf("chats: %d on the 1-slot backend, %d on the other; want 1, 3", na, nb)
	}
}

// TestLoadAheadWhereThereIsRoom: the only loaded copy of the model is
// busy and another backend has room for it (maxLoadedModels told): the
// request waits in the gateway's queue while the gateway has that backend
// load the model (Ollama's load request, POST /api/generate naming only
// the model), and goes there the moment the load ends. Without it, the
// request waited for the busy copy (5 s of expected wait against a 10 s
// load, the defaults), here for ever.
func TestLoadAheadWhereThereIsRoom(t *testing.T) {
	busy := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithLoaded("llama3.2"),
		ollamatest.WithParallel(1), ollamatest.WithPaced())
	room := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithParallel(1),
		ollamatest.WithMaxLoadedModels(2), ollamatest.WithLoadDelay(ollamatest.ManualLoad))
	gw := startGateway(t, withOllamaLimits([2]int{1, 2}, [2]int{1, 2}), busy.URL, room.URL)
	t.Cleanup(busy.Close)
	waitInventory(t, gw)
	hold(t, gw)
	t.Cleanup(func() { // first: ends the held stream and any load, then what waits for them
		for range 6 {
			busy.Release()
		}
		room.EndLoad("llama3.2")
	})
	type answer struct {
		status int
		body   string
	}
	done := make(chan answer, 1)
	go func() {
		status, _, body := post(t, gw.URL+"/api/chat", chatBody)
		done <- answer{status, body}
	}()
	p := gw.gw.Snapshot().Proxy
	eventually(t, "the request queued and the model loading ahead", func() bool {
		return p.QueueLen() == 1 && room.RequestsTo("/api/generate") == 1 && room.Loads("llama3.2") == 1
	})
	if n := room.RequestsTo("/api/chat"); n != 0 {
		t.Fatalf("%d chats sent to the loading backend; want 0 while it loads", n)
	}
	room.EndLoad("llama3.2")
	a := <-done
	if a.status != 200 {
		t.Fatalf("queued request: %d %s", a.status, a.body)
	}
	if nb, nr := busy.RequestsTo("/api/chat"), room.RequestsTo("/api/chat"); nb != 1 || nr != 1 {
		t.Errorf("chats: busy backend %d, the one loaded ahead %d; want 1, 1", nb, nr)
	}
	if n := room.Loads("llama3.2"); n != 1 {
		t.Errorf("%d loads on the backend with room; want 1", n)
	}
	eventually(t, "the load ahead counted", func() bool {
		return strings.Contains(scrape(t, gw.URL, "/metrics"),
			`gateway_backend_model_preloads_total{backend="`+room.URL+`",result="loaded"} 1`)
	})
}

// TestNoLoadAheadWithoutMaxLoaded: not told a backend's
// OLLAMA_MAX_LOADED_MODELS, the gateway never loads a model ahead there
// (it might evict one in use): the request waits for the busy copy.
func TestNoLoadAheadWithoutMaxLoaded(t *testing.T) {
	busy := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithLoaded("llama3.2"),
		ollamatest.WithParallel(1), ollamatest.WithPaced())
	other := ollamatest.New(t, ollamatest.WithModels("llama3.2"), ollamatest.WithParallel(1))
	gw := startGateway(t, withOllamaLimits([2]int{1, 0}, [2]int{1, 0}), busy.URL, other.URL)
	t.Cleanup(busy.Close)
	waitInventory(t, gw)
	hold(t, gw)
	done := make(chan int, 1)
	go func() {
		status, _, _ := post(t, gw.URL+"/api/chat", chatBody)
		done <- status
	}()
	p := gw.gw.Snapshot().Proxy
	eventually(t, "the request queued", func() bool { return p.QueueLen() == 1 })
	for range 6 { // the held 5-token stream: 6 chunks
		busy.Release()
	}
	if status := <-done; status != 200 {
		t.Fatalf("queued request: %d", status)
	}
	if n, m := other.RequestsTo("/api/generate"), other.RequestsTo("/api/chat"); n != 0 || m != 0 {
		t.Errorf("the backend without a known limit got %d load requests and %d chats; want 0, 0", n, m)
	}
	if n := busy.RequestsTo("/api/chat"); n != 2 {
		t.Errorf("the loaded copy served %d chats; want 2", n)
	}
}
