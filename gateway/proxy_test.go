package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

func TestOllamaGoClientThroughGateway(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	client := api.NewClient(mustURL(t, gw.URL), httpClient())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var chat strings.Builder
	var last api.ChatResponse
	err := client.Chat(ctx, &api.ChatRequest{
		Model:    "llama3.2",
		Messages: []api.Message{{Role: "user", Content: "Why is the sky blue?"}},
	}, func(r api.ChatResponse) error {
		chat.WriteString(r.Message.Content)
		last = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The Go client returns no error when a stream ends without its done
	// line: check the final chunk too.
	if chat.String() != "The sky is blue." || !last.Done || last.DoneReason != "stop" || last.EvalCount != 5 {
		t.Errorf("chat = %q, done %v, reason %q, eval_count %d; want %q, true, stop, 5",
			chat.String(), last.Done, last.DoneReason, last.EvalCount, "The sky is blue.")
	}

	var gen strings.Builder
	var lastGen api.GenerateResponse
	err = client.Generate(ctx, &api.GenerateRequest{Model: "llama3.2", Prompt: "Why is the sky blue?"},
		func(r api.GenerateResponse) error {
			gen.WriteString(r.Response)
			lastGen = r
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if gen.String() != "The sky is blue." || !lastGen.Done {
		t.Errorf("generate = %q, done %v; want %q, true", gen.String(), lastGen.Done, "The sky is blue.")
	}

	list, err := client.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 || list.Models[0].Name != "llama3.2:latest" {
		t.Errorf("tags = %+v; want llama3.2:latest", list.Models)
	}
	v, err := client.Version(ctx)
	if err != nil || v != "0.17.4" {
		t.Errorf("version = %q, %v; want 0.17.4", v, err)
	}

	// A missing model is Ollama's own 404, passed through.
	err = client.Chat(ctx, &api.ChatRequest{Model: "nope"}, func(api.ChatResponse) error { return nil })
	var se api.StatusError
	if !asStatusError(err, &se) || se.StatusCode != 404 || !strings.Contains(se.ErrorMessage, "nope' not found") {
		t.Errorf("missing model error = %v; want Ollama's 404", err)
	}
}

func asStatusError(err error, se *api.StatusError) bool {
	if e, ok := err.(api.StatusError); ok {
		*se = e
		return true
	}
	return false
}

func TestOpenAIStreamThroughGateway(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	status, h, body := post(t, gw.URL+"/v1/chat/completions",
		`{"model":"llama3.2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q; want 200 text/event-stream", status, h.Get("Content-Type"))
	}
	var text strings.Builder
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	if events[len(events)-1] != "data: [DONE]" {
		t.Errorf("last event %q; want data: [DONE]", events[len(events)-1])
	}
	sawUsage := false
	for _, ev := range events[:len(events)-1] {
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &chunk); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		for _, c := range chunk.Choices {
			text.WriteString(c.Delta.Content)
		}
		if chunk.Usage != nil && chunk.Usage.CompletionTokens == 5 {
			sawUsage = true
		}
	}
	if text.String() != "The sky is blue." || !sawUsage {
		t.Errorf("SSE text %q, usage seen %v; want %q and usage", text.String(), sawUsage, "The sky is blue.")
	}
}

// TestNoRedirects: paths are Ollama's, exactly as sent; the gateway must
// not answer a trailing slash or a dirty path with a redirect of its own.
// Whatever the backend answers directly, the gateway answers too.
func TestNoRedirects(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	for _, path := range []string{"/api/tags/", "//api/tags", "/api/../api/tags", "/config", "/api/chat/"} {
		req := "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + authHeader + "\r\n"
		direct := rawRequest(t, fake.URL, req)
		direct.Body.Close()
		via := rawRequest(t, gw.URL, req)
		via.Body.Close()
		if via.StatusCode != direct.StatusCode || via.Header.Get("Location") != direct.Header.Get("Location") {
			t.Errorf("GET %s via gateway = %d %q; direct = %d %q", path,
				via.StatusCode, via.Header.Get("Location"), direct.StatusCode, direct.Header.Get("Location"))
		}
	}
}

func TestRequestHeadersAndURI(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	gwHost := strings.TrimPrefix(gw.URL, "http://")
	resp := rawRequest(t, gw.URL, "GET /_test/echo?b=2&a=%2F&a=1 HTTP/1.1\r\n"+
		"Host: "+gwHost+"\r\n"+
		"Connection: keep-alive, X-Hop-Listed\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"X-Hop-Listed: secret\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\n"+
		"X-Forwarded-For: 198.51.100.1\r\n"+
		"X-Forwarded-Proto: gopher\r\n"+
		"Origin: http://evil.example\r\n"+
		"X-Custom: kept\r\n"+
		authHeader+
		"User-Agent: ollama-python/0.4\r\n\r\n")
	defer resp.Body.Close()
	var echo struct {
		RequestURI string              `json:"requestURI"`
		Host       string              `json:"host"`
		Headers    map[string][]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	h := http.Header(echo.Headers)
	checks := []struct{ what, got, want string }{
		{"request URI", echo.RequestURI, "/_test/echo?b=2&a=%2F&a=1"},
		{"Host", echo.Host, fake.Addr()},
		{"X-Forwarded-For", strings.Join(h.Values("X-Forwarded-For"), "|"), "203.0.113.7, 198.51.100.1, 127.0.0.1"},
		{"X-Forwarded-Proto", strings.Join(h.Values("X-Forwarded-Proto"), "|"), "http"},
		{"X-Forwarded-Host", h.Get("X-Forwarded-Host"), gwHost},
		{"X-Custom", h.Get("X-Custom"), "kept"},
		{"User-Agent", h.Get("User-Agent"), "ollama-python/0.4"},
		{"Keep-Alive", h.Get("Keep-Alive"), ""},
		{"X-Hop-Listed", h.Get("X-Hop-Listed"), ""},
		{"Origin", h.Get("Origin"), ""},
		{"Authorization", h.Get("Authorization"), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s at backend = %q; want %q", c.what, c.got, c.want)
		}
	}
}

// TestRoundRobinSplitsEvenly counts /api/version: with two backends the
// health checks also request /api/tags (model lists).
func TestRoundRobinSplitsEvenly(t *testing.T) {
	a, b := ollamatest.New(t), ollamatest.New(t)
	gw := startGateway(t, nil, a.URL, b.URL)
	for range 100 {
		if status, _, _ := get(t, gw.URL+"/api/version"); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if a.RequestsTo("/api/version") != 50 || b.RequestsTo("/api/version") != 50 {
		t.Errorf("split %d/%d; want 50/50", a.RequestsTo("/api/version"), b.RequestsTo("/api/version"))
	}
}

func TestGatewayNamespace(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	status, _, body := get(t, gw.URL+"/config/nope")
	if status != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("/config/nope = %d %s; want 404 JSON", status, body)
	}
	if fake.RequestsTo("/config/nope") != 0 {
		t.Error("a /config/ request reached Ollama")
	}
}

// TestCloseClosesBackends (issue 11 item 5): Close closes the gateway's
// pooled backend connections itself; no caller has to reach into the
// proxy's pool.
func TestCloseClosesBackends(t *testing.T) {
	states := make(chan http.ConnState, 64)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, `{"version":"0.17.4"}`)
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew || s == http.StateClosed || s == http.StateHijacked {
			states <- s
		}
	}
	backend.Start()
	defer backend.Close()

	cfg := config.Default()
	cfg.OllamaAddresses = []string{backend.URL}
	cfg.APIKeys = config.Keys(testKey)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gw, err := New(&cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	srv := gw.NewServer()
	ln := listen(t)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	if status, _, body := get(t, "http://"+ln.Addr().String()+"/api/version"); status != 200 {
		t.Fatalf("GET /api/version: %d %s", status, body)
	}
	_ = srv.Shutdown()
	ln.Close()
	<-done
	gw.Close()

	// Under fasthttp's idle connection timeout (10 s), which would close
	// them anyway.
	open := 0
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-states:
			if s == http.StateNew {
				open++
			} else {
				open--
			}
		case <-timeout:
			t.Fatalf("%d backend connections still open after Close; want 0", open)
		}
		if open == 0 && len(states) == 0 {
			return
		}
	}
}
