package fastollama

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
	"github.com/valyala/fasthttp"
)

// startBackend serves a Backend on a loopback port and returns it with a
// real Ollama Go client for it.
func startBackend(t *testing.T, cfg BackendConfig) (*Backend, *api.Client) {
	t.Helper()
	b, err := NewBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: b.Handler}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		b.Close()
		_ = srv.Shutdown()
	})
	return b, api.NewClient(&url.URL{Scheme: "http", Host: ln.Addr().String()}, http.DefaultClient)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// chat sends one chat and returns its final line.
func chat(ctx context.Context, c *api.Client, model string) (api.ChatResponse, error) {
	var last api.ChatResponse
	err := c.Chat(ctx, &api.ChatRequest{Model: model, Messages: []api.Message{{Role: "user", Content: "hi"}}},
		func(r api.ChatResponse) error { last = r; return nil })
	if err == nil && !last.Done {
		err = errors.New("no final line")
	}
	return last, err
}

func TestBackendListsAndLoads(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.LoadDelay = func(string) time.Duration { return scheduler.Manual }
	b, c := startBackend(t, BackendConfig{Models: []string{"a", "b:7b"}, Loaded: []string{"b:7b"}, Scheduler: cfg})
	ctx := testContext(t)

	tags, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.Models) != 2 || tags.Models[0].Name != "a:latest" || tags.Models[1].Name != "b:7b" {
		t.Errorf("/api/tags = %+v; want a:latest, b:7b", tags.Models)
	}

	const burst = 3
	var wg sync.WaitGroup
	finals := make([]api.ChatResponse, burst)
	errs := make([]error, burst)
	for i := range burst {
		wg.Go(func() { finals[i], errs[i] = chat(ctx, c, "a") })
	}
	s := b.Scheduler()
	if err := s.WaitFor(ctx, func() bool { return s.Queued("a:latest") == burst }); err != nil {
		t.Fatalf("waiting for the burst: %v", err)
	}
	ps, err := c.ListRunning(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Models) != 2 || ps.Models[0].SizeVRAM == 0 || ps.Models[0].ExpiresAt.Before(time.Now()) {
		t.Errorf("/api/ps = %+v; want a:latest and b:7b, with size_vram and a future expires_at", ps.Models)
	}
	s.EndLoad("a:latest")
	wg.Wait()
	for i := range burst {
		if errs[i] != nil {
			t.Fatalf("chat %d: %v", i, errs[i])
		}
		if finals[i].LoadDuration <= 0 {
			t.Errorf("chat %d: load_duration %v; want > 0", i, finals[i].LoadDuration)
		}
	}
	if got := s.Loads("a:latest"); got != 1 {
		t.Errorf("Loads(a) = %d; want 1", got)
	}
	if _, err := chat(ctx, c, "c"); err == nil {
		t.Error("chat for a model not served: no error")
	}
}

// TestBackendBusy503: a full pending queue answers Ollama's 503.
func TestBackendBusy503(t *testing.T) {
	cfg := scheduler.DefaultConfig()
	cfg.MaxLoaded, cfg.MaxQueue = 1, 0
	cfg.LoadDelay = func(m string) time.Duration {
		if m == "a:latest" {
			return scheduler.Manual
		}
		return 0
	}
	b, c := startBackend(t, BackendConfig{Models: []string{"a", "b", "c"}, Scheduler: cfg})
	ctx := testContext(t)
	s := b.Scheduler()
	done := make(chan error, 2)
	go func() { _, err := chat(ctx, c, "a"); done <- err }()
	if err := s.WaitFor(ctx, func() bool { return s.Queued("a:latest") == 1 }); err != nil {
		t.Fatal(err)
	}
	go func() { _, err := chat(ctx, c, "b"); done <- err }()
	if err := s.WaitFor(ctx, func() bool { return s.Pending() == 1 }); err != nil {
		t.Fatal(err)
	}
	_, err := chat(ctx, c, "c")
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable || se.ErrorMessage != scheduler.ErrMaxQueue.Error() {
		t.Errorf("got %v; want 503 %q", err, scheduler.ErrMaxQueue)
	}
	s.EndLoad("a:latest")
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkBackendChat compares a one-line chat through Backend (scheduler,
// model read, final statistics) with the plain Handler, over loopback.
func BenchmarkBackendChat(b *testing.B) {
	cfg := scheduler.DefaultConfig()
	cfg.Parallel = 1 << 10
	be, err := NewBackend(BackendConfig{Models: []string{"llama3.2"}, Loaded: []string{"llama3.2"}, Scheduler: cfg})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	for _, bc := range []struct {
		name    string
		handler fasthttp.RequestHandler
	}{{"handler", Handler}, {"backend", be.Handler}} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &fasthttp.Server{Handler: bc.handler}
			go func() { _ = srv.Serve(ln) }()
			defer func() { _ = srv.Shutdown() }()
			hc := &fasthttp.HostClient{Addr: ln.Addr().String()}
			body := []byte(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for pb.Next() {
					req.SetRequestURI("http://" + hc.Addr + "/api/chat")
					req.Header.SetMethod(fasthttp.MethodPost)
					req.SetBody(body)
					if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("%v %d", err, resp.StatusCode())
					}
				}
			})
		})
	}
}
