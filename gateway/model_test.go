package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// backendOf returns the live backend configured as url.
func backendOf(t testing.TB, gw *testGateway, url string) *proxy.Backend {
	t.Helper()
	for _, b := range gw.gw.Snapshot().Proxy.Pool().Backends() {
		if b.Name() == url {
			return b
		}
	}
	t.Fatalf("no backend %s", url)
	return nil
}

// waitModels waits until the gateway knows the model list of every
// backend (the first health check fetches it).
func waitModels(t testing.TB, gw *testGateway) {
	t.Helper()
	eventually(t, "model lists fetched", func() bool {
		for _, b := range gw.gw.Snapshot().Proxy.Pool().Backends() {
			if b.Models() == nil {
				return false
			}
		}
		return true
	})
}

// TestModelRouting: two backends with different models. Requests for a
// model reach the backend that has it, on every inference route; requests
// for a model neither has are split round-robin.
func TestModelRouting(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	b := ollamatest.New(t, ollamatest.WithModels("qwen2.5:0.5b", "nomic-embed-text"))
	gw := startGateway(t, nil, a.URL, b.URL)
	waitModels(t, gw)

	tests := []struct {
		path, body string
		to         *ollamatest.Server
	}{
		{"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`, a},
		{"/api/chat", `{"messages":[{"role":"user","content":"hi"}],"stream":false,"model":"qwen2.5:0.5b"}`, b},
		{"/api/chat", `{"model":"LLAMA3.2:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}`, a},
		{"/api/generate", `{"model":"qwen2.5:0.5b","prompt":"hi","stream":false}`, b},
		{"/api/generate", `{"model":"library/llama3.2","prompt":"hi"}`, a},
		{"/api/embed", `{"model":"nomic-embed-text","input":"hi"}`, b},
		{"/api/show", `{"name":"qwen2.5:0.5b"}`, b},
		{"/api/show", `{"model":"llama3.2"}`, a},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"model":"qwen2.5:0.5b"}`, b},
		{"/v1/chat/completions", `{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}`, a},
	}
	for _, tt := range tests {
		other := a
		if tt.to == a {
			other = b
		}
		before, otherBefore := tt.to.RequestsTo(tt.path), other.RequestsTo(tt.path)
		for i := range 6 {
			if status, _, body := post(t, gw.URL+tt.path, tt.body); status != 200 {
				t.Fatalf("%s %s #%d: %d %s", tt.path, tt.body, i, status, body)
			}
		}
		if got, stray := tt.to.RequestsTo(tt.path)-before, other.RequestsTo(tt.path)-otherBefore; got != 6 || stray != 0 {
			t.Errorf("%s %s: %d reached the backend with the model, %d the other; want 6, 0", tt.path, tt.body, got, stray)
		}
	}

	// A model neither backend has: plain round-robin, each backend answers
	// Ollama's 404 itself.
	beforeA, beforeB := a.RequestsTo("/api/chat"), b.RequestsTo("/api/chat")
	for range 10 {
		status, _, body := post(t, gw.URL+"/api/chat", `{"model":"mistral","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
		if status != 404 || !strings.Contains(body, "not found") {
			t.Fatalf("unknown model: %d %s; want Ollama's 404", status, body)
		}
	}
	if da, db := a.RequestsTo("/api/chat")-beforeA, b.RequestsTo("/api/chat")-beforeB; da != 5 || db != 5 {
		t.Errorf("unknown model split %d/%d; want 5/5", da, db)
	}
}

// TestModelRoutingGoClient: the Go ollama client chats with either model
// through the gateway, every stream complete.
func TestModelRoutingGoClient(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	b := ollamatest.New(t, ollamatest.WithModels("qwen2.5:0.5b"))
	gw := startGateway(t, nil, a.URL, b.URL)
	waitModels(t, gw)
	client := api.NewClient(mustURL(t, gw.URL), httpClient())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, model := range []string{"llama3.2", "qwen2.5:0.5b"} {
		for i := range 4 {
			var text strings.Builder
			var last api.ChatResponse
			err := client.Chat(ctx, &api.ChatRequest{
				Model:    model,
				Messages: []api.Message{{Role: "user", Content: fmt.Sprintf("question %d", i)}},
			}, func(r api.ChatResponse) error {
				text.WriteString(r.Message.Content)
				last = r
				return nil
			})
			if err != nil {
				t.Fatalf("chat with %s: %v", model, err)
			}
			if text.String() != "The sky is blue." || !last.Done || last.Model != model {
				t.Errorf("chat with %s = %q, done %v, model %q", model, text.String(), last.Done, last.Model)
			}
		}
	}
	if na, nb := a.RequestsTo("/api/chat"), b.RequestsTo("/api/chat"); na != 4 || nb != 4 {
		t.Errorf("chats %d/%d; want 4/4, each with its model", na, nb)
	}
}

// TestModelRoutingSeesPull: a backend that pulls a model receives its
// requests once the periodic refresh of its model list has seen it.
func TestModelRoutingSeesPull(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	b := ollamatest.New(t, ollamatest.WithModels("qwen2.5"))
	gw := startGateway(t, func(c *config.Config) { c.LoadBalancer.HealthCheckIntervalInSeconds = 1 }, a.URL, b.URL)
	waitModels(t, gw)
	bb := backendOf(t, gw, b.URL)
	if bb.Models().Has("phi3") {
		t.Fatal("phi3 known before the pull")
	}

	// Pulled on b directly, as an operator would.
	if status, _, body := post(t, b.URL+"/api/pull", `{"model":"phi3","stream":false}`); status != 200 {
		t.Fatalf("pull: %d %s", status, body)
	}
	eventually(t, "the next refresh sees the pulled model", func() bool { return bb.Models().Has("phi3") })
	for i := range 6 {
		status, _, body := post(t, gw.URL+"/api/chat", `{"model":"phi3","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
		if status != 200 {
			t.Fatalf("chat %d with the pulled model: %d %s", i, status, body)
		}
	}
	if n := a.RequestsTo("/api/chat"); n != 0 {
		t.Errorf("%d chats for phi3 reached the backend without it", n)
	}
}

// TestModelListsSurviveReload: a reload keeps the model lists of the
// backends it keeps, as it keeps their health, even when the checks
// restart; an added backend's list is fetched.
func TestModelListsSurviveReload(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	b := ollamatest.New(t, ollamatest.WithModels("qwen2.5"))
	gw := startFileGateway(t, baseConfig(a.URL, b.URL))
	waitModels(t, gw.testGateway)
	before := map[string]*proxy.Models{}
	for _, be := range gw.gw.Snapshot().Proxy.Pool().Backends() {
		before[be.Name()] = be.Models()
	}

	c := ollamatest.New(t, ollamatest.WithModels("phi3"))
	cfg := baseConfig(a.URL, b.URL, c.URL)
	cfg.LoadBalancer.HealthCheckTimeoutInMilliseconds = 4000 // restarts the checks
	if _, err := gw.gw.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{a.URL, b.URL} {
		if got := backendOf(t, gw.testGateway, url).Models(); got == nil || got != before[url] {
			t.Errorf("backend %s: model list %p after the reload; want the one before, %p", url, got, before[url])
		}
	}
	// Routed at once, without waiting for a check.
	if status, _, body := post(t, gw.URL+"/api/chat", `{"model":"qwen2.5","stream":false,"messages":[{"role":"user","content":"hi"}]}`); status != 200 {
		t.Fatalf("chat right after the reload: %d %s", status, body)
	}
	if n := b.RequestsTo("/api/chat"); n != 1 {
		t.Errorf("qwen2.5 chat right after the reload reached its backend %d times; want 1", n)
	}
	waitModels(t, gw.testGateway)
	for i := range 3 {
		if status, _, body := post(t, gw.URL+"/api/chat", `{"model":"phi3","stream":false,"messages":[{"role":"user","content":"hi"}]}`); status != 200 {
			t.Fatalf("chat %d with the added backend's model: %d %s", i, status, body)
		}
	}
	if n := c.RequestsTo("/api/chat"); n != 3 {
		t.Errorf("the added backend served %d phi3 chats; want 3", n)
	}
}

// TestSingleBackendFetchesNoModels: with one backend there is no choice to
// make, so its model list is never requested.
func TestSingleBackendFetchesNoModels(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) { c.LoadBalancer.HealthCheckIntervalInSeconds = 1 }, fake.URL)
	// A check fetches a model list right after its probe, before the
	// next check's probe.
	eventually(t, "two health checks", func() bool { return fake.RequestsTo("/") >= 2 })
	if n := fake.RequestsTo("/api/tags"); n != 0 {
		t.Errorf("the backend's model list was requested %d times; want 0", n)
	}
	if gw.gw.Snapshot().Proxy.Pool().Backends()[0].Models() != nil {
		t.Error("a single backend's models are known")
	}
}

// TestStaleKeepAliveOnlyHolder: when the only backend with the model has
// dropped the gateway's pooled connections, the request is retried on it
// with a fresh connection, not sent to the backend without the model.
func TestStaleKeepAliveOnlyHolder(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	b := ollamatest.New(t, ollamatest.WithModels("qwen2.5"))
	gw := startGateway(t, nil, a.URL, b.URL)
	waitModels(t, gw)
	const chat = `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { post(t, gw.URL+"/api/chat", chat) })
	}
	wg.Wait()
	for i := range 8 {
		a.CloseClientConnections()
		if status, _, body := post(t, gw.URL+"/api/chat", chat); status != 200 {
			t.Fatalf("round %d: chat after its backend dropped its connections: %d %s", i, status, body)
		}
	}
	if n := b.RequestsTo("/api/chat"); n != 0 {
		t.Errorf("%d chats reached the backend without the model", n)
	}
}

// TestModelsGauge: <ns>_backend_models gives the size of each known model
// list and leaves out a backend whose list is unknown.
func TestModelsGauge(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	b := ollamatest.New(t, ollamatest.WithModels("qwen2.5", "phi3"))
	dead := deadAddress(t)
	gw := startGateway(t, nil, a.URL, b.URL, dead)
	eventually(t, "model lists of the live backends", func() bool {
		return backendOf(t, gw, a.URL).Models() != nil && backendOf(t, gw, b.URL).Models() != nil
	})
	out := scrape(t, gw.URL, "/metrics")
	for series, want := range map[string]float64{
		`gateway_backend_models{backend="` + a.URL + `"}`: 1,
		`gateway_backend_models{backend="` + b.URL + `"}`: 2,
		`gateway_backend_models{backend="` + dead + `"}`:  -1, // absent
	} {
		if got := sample(t, out, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
}
