package proxy

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// modelPool returns a pool of len(models) backends on unused addresses;
// backend i has models[i] ("?" for an unknown list).
func modelPool(t testing.TB, models ...string) *Pool {
	t.Helper()
	p := newTestPool(t, len(models))
	for i, m := range models {
		if m != "?" {
			p.Backends()[i].SetModels(strings.Fields(m))
		}
	}
	return p
}

// chatRoute is the route of POST /api/chat.
var chatRoute = ollamaapi.Lookup([]byte("POST"), []byte("/api/chat"))

// pickFor routes one request for model through p as roundTrip does, and
// returns the backends it would try for the model, in order.
func pickFor(p *Pool, r *route, model string) []*Backend {
	r.set(p, chatRoute, []byte(`{"model":"`+model+`","messages":[]}`))
	var tried []*Backend
	for b, v := r.next(p, new(queue)); v == pickGo; b, v = r.next(p, new(queue)) {
		tried = append(tried, b)
	}
	r.reset()
	return tried
}

func TestRoutedPath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/api/chat", true}, {"/api/generate", true}, {"/api/embed", true}, {"/api/embeddings", true},
		{"/api/show", true}, {"/v1/chat/completions", true}, {"/v1/completions", true},
		{"/v1/embeddings", true}, {"/v1/responses", true}, {"/v1/messages", true},
		{"/api/pull", false}, {"/api/create", false}, {"/api/tags", false}, {"/api/chat/", false},
		{"/API/CHAT", false}, {"/api/blobs/sha256:00", false}, {"/", false}, {"/v1/models", false},
	} {
		if got := ollamaapi.Lookup([]byte("POST"), []byte(tt.path)).ByModel; got != tt.want {
			t.Errorf("POST %s routed by model: %v; want %v", tt.path, got, tt.want)
		}
	}
}

func TestRouteSet(t *testing.T) {
	known := modelPool(t, "llama3.2", "qwen2.5")
	unknown := modelPool(t, "?", "?")
	single := modelPool(t, "llama3.2")
	const chat = `{"model":"llama3.2","messages":[]}`
	for _, tt := range []struct {
		name       string
		pool       *Pool
		post       bool
		path, body string
		want       string // the key, "" when not routed
	}{
		{"chat", known, true, "/api/chat", chat, "llama3.2:latest"},
		{"openai", known, true, "/v1/chat/completions", `{"messages":[],"model":"Qwen2.5"}`, "qwen2.5:latest"},
		{"escaped", known, true, "/api/generate", `{"model":"llama3.2:\u0031b"}`, "llama3.2:1b"},
		{"show by name", known, true, "/api/show", `{"name":"qwen2.5"}`, "qwen2.5:latest"},
		{"show model wins", known, true, "/api/show", `{"name":"qwen2.5","model":"llama3.2"}`, "llama3.2:latest"},
		{"name elsewhere", known, true, "/api/chat", `{"name":"qwen2.5"}`, ""},
		{"GET", known, false, "/api/chat", chat, ""},
		{"other path", known, true, "/api/pull", chat, ""},
		{"one backend", single, true, "/api/chat", chat, ""},
		{"unknown lists", unknown, true, "/api/chat", chat, ""},
		{"no model", known, true, "/api/chat", `{"messages":[]}`, ""},
		{"empty model", known, true, "/api/chat", `{"model":""}`, ""},
		{"malformed", known, true, "/api/chat", `{"model":"llama3.2"`, ""},
		{"too long", known, true, "/api/chat", `{"model":"` + strings.Repeat("x", MaxModelNameLen+1) + `"}`, ""},
		{"huge", known, true, "/api/chat", `{"model":"` + strings.Repeat("x", 1<<20) + `"}`, ""},
	} {
		var r route
		method := "GET"
		if tt.post {
			method = "POST"
		}
		r.set(tt.pool, ollamaapi.Lookup([]byte(method), []byte(tt.path)), []byte(tt.body))
		got := ""
		if r.on {
			got = string(r.key)
		}
		if got != tt.want {
			t.Errorf("%s: routed by %q; want %q", tt.name, got, tt.want)
		}
		if cap(r.name) > MaxModelNameLen {
			t.Errorf("%s: keeps a buffer of %d bytes", tt.name, cap(r.name))
		}
	}
}

func TestRouteTakesTurnsOverHolders(t *testing.T) {
	p := modelPool(t, "llama3.2", "qwen2.5", "llama3.2 qwen2.5", "llama3.2")
	a, b, c, d := p.Backends()[0], p.Backends()[1], p.Backends()[2], p.Backends()[3]
	// Two models on different cursors (the seed is random), requested
	// alternately: each takes its own turns.
	other := otherCursorModel(t, p, "llama3.2:latest")
	p.Backends()[1].SetModels([]string{"qwen2.5", other})
	// Loaded on every holder: equal candidates, which take turns (a model
	// loaded nowhere sticks to the backend that claimed its load).
	for _, h := range []*Backend{a, b, c, d} {
		h.SetLoaded([]json.RawMessage{json.RawMessage(`{"name":"llama3.2:latest"}`), json.RawMessage(`{"name":"` + other + `"}`)}, time.Now())
	}
	counts := map[*Backend]int{}
	var r route
	for range 300 {
		counts[pickFor(p, &r, "llama3.2")[0]]++
		if got := pickFor(p, &r, other)[0]; got != b {
			t.Fatalf("%s went to %s; only %s has it", other, got.Name(), b.Name())
		}
	}
	if counts[a] != 100 || counts[c] != 100 || counts[d] != 100 || counts[b] != 0 {
		t.Errorf("llama3.2 split %d/%d/%d/%d; want 100/0/100/100", counts[a], counts[b], counts[c], counts[d])
	}
}

// otherCursorModel returns a model name whose cursor in p differs from
// that of key.
func otherCursorModel(t *testing.T, p *Pool, key string) string {
	t.Helper()
	h := maphash.String(p.seed, key) % modelCursors
	for i := range 1000 {
		name := fmt.Sprintf("phi%d", i)
		if maphash.String(p.seed, name+":latest")%modelCursors != h {
			return name
		}
	}
	t.Fatal("no model on another cursor")
	return ""
}

func TestRouteSkipsDownAndTried(t *testing.T) {
	p := modelPool(t, "llama3.2", "qwen2.5", "llama3.2")
	a, c := p.Backends()[0], p.Backends()[2]
	var r route
	// Every holder once, then nothing: the caller falls back.
	for range 4 {
		tried := pickFor(p, &r, "llama3.2")
		if len(tried) != 2 || tried[0] == tried[1] || tried[0] != a && tried[0] != c || tried[1] != a && tried[1] != c {
			t.Fatalf("tried %v; want a and c once each", names(tried))
		}
	}
	a.SetHealth(HealthDown)
	for range 4 {
		if tried := pickFor(p, &r, "llama3.2"); len(tried) != 1 || tried[0] != c {
			t.Fatalf("with a down, tried %v; want c only", names(tried))
		}
	}
	c.SetHealth(HealthDown)
	if tried := pickFor(p, &r, "llama3.2"); len(tried) != 0 {
		t.Fatalf("with every holder down, tried %v; want none (round-robin over all)", names(tried))
	}
	// Not known anywhere: not routed.
	if tried := pickFor(p, &r, "mistral"); len(tried) != 0 {
		t.Fatalf("an unknown model tried %v; want none", names(tried))
	}
	// After a stale connection, the other holder first; the same one
	// again only when it is the only one left.
	c.SetHealth(HealthUp)
	a.SetHealth(HealthUp)
	for range 4 {
		r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
		first, _ := r.next(p, new(queue))
		r.retryLast()
		if second, _ := r.next(p, new(queue)); second == first || second != a && second != c {
			t.Fatalf("after a stale connection to %s, retried %v; want the other holder", first.Name(), second)
		}
		r.reset()
	}
	a.SetHealth(HealthDown)
	r.set(p, chatRoute, []byte(`{"model":"llama3.2"}`))
	if got, _ := r.next(p, new(queue)); got != c {
		t.Fatalf("first pick %v; want c", got)
	}
	r.retryLast()
	if got, _ := r.next(p, new(queue)); got != c {
		t.Fatalf("pick after retryLast %v; want c again", got)
	}
	if got, _ := r.next(p, new(queue)); got != nil {
		t.Fatalf("third pick %v; want nil", got.Name())
	}
	r.reset()
}

func names(bs []*Backend) []string {
	var s []string
	for _, b := range bs {
		s = append(s, b.Name())
	}
	return s
}

func TestRouteNoAllocs(t *testing.T) {
	p := modelPool(t, "llama3.2", "qwen2.5", "llama3.2")
	body := []byte(`{"model":"Llama3.2","messages":[{"role":"user","content":"hi \"there\""}],"stream":false}`)
	var r route
	allocs := testing.AllocsPerRun(1000, func() {
		r.set(p, chatRoute, body)
		first, _ := r.next(p, new(queue))
		second, _ := r.next(p, new(queue)) // two attempts: a retry
		if first == nil || second == nil {
			t.Fatal("no backend for the model")
		}
		r.retryLast()
		r.next(p, new(queue))
		r.reset()
	})
	if allocs != 0 {
		t.Errorf("routing a request allocates %v times; want 0", allocs)
	}
}

// serve runs p behind a fasthttp server on loopback, as the gateway does,
// until the test ends.
func serve(t *testing.T, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { p.Handle(ctx, nil, nil) }, StreamRequestBody: true}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(); ln.Close(); <-done; p.Pool().Close() })
	return "http://" + ln.Addr().String()
}

// TestModelFailoverPrefersHolders: a request whose model's backend refuses
// connections is retried on another backend with the model, never on the
// one without it, although that one comes next in the pool.
func TestModelFailoverPrefersHolders(t *testing.T) {
	without := ollamatest.New(t, ollamatest.WithModels("qwen2.5"))
	with := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	var bs []*Backend
	for _, u := range []string{dead, without.URL, with.URL} {
		b, err := NewBackend(u, BackendOptions{DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	bs[0].SetModels([]string{"llama3.2:latest"}) // it had the model
	bs[1].SetModels([]string{"qwen2.5:latest"})
	bs[2].SetModels([]string{"llama3.2:latest"})
	pool, err := NewPool(bs)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, New(pool, Options{Logger: discardLogger()}))
	for i := range 10 {
		resp, err := http.Post(url+"/api/chat", "application/json",
			strings.NewReader(`{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if n, m := with.RequestsTo("/api/chat"), without.RequestsTo("/api/chat"); n != 10 || m != 0 {
		t.Errorf("chats: %d to the backend with the model, %d to the one without; want 10, 0", n, m)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
