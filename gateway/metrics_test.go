package gateway

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// scrape returns the gateway's metrics exposition.
func scrape(t *testing.T, gwURL, path string) string {
	t.Helper()
	status, _, body := get(t, gwURL+path)
	if status != 200 {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	return body
}

func sample(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

func TestMetricsCountRequests(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	const n = 6
	for range n {
		if status, _, body := post(t, gw.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`); status != 200 {
			t.Fatalf("chat: %d %s", status, body)
		}
	}
	resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer wrong", nil)
	if resp.StatusCode != 401 {
		t.Fatal(resp.StatusCode)
	}
	// No key needed for metrics by default (Prometheus scrapes it).
	resp, out := do(t, gw.URL, "GET", "/metrics", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	checks := map[string]float64{
		`gateway_requests_total{method="POST",endpoint="/api/chat",status="200"}`:        n,
		`gateway_requests_duration_seconds_count{method="POST",endpoint="/api/chat"}`:    n,
		`gateway_requests_success_total{method="POST",endpoint="/api/chat"}`:             n,
		`gateway_requests_total{method="GET",endpoint="/api/tags",status="401"}`:         1,
		`gateway_requests_failure_total{method="GET",endpoint="/api/tags"}`:              1,
		`gateway_requests_by_ip_total{ip="127.0.0.1",endpoint="/api/chat",status="200"}`: n,
		`gateway_auth_failures_total{reason="invalid_key"}`:                              1,
		`gateway_apikeys_total`:                                 1,
		`gateway_ollama_servers_total`:                          1,
		`gateway_backend_up{backend="` + fake.URL + `"}`:        1,
		`gateway_backend_in_flight{backend="` + fake.URL + `"}`: 0,
		// The fake streams 5 tokens after a 26-token prompt per chat.
		`gateway_tokens_total{model="llama3.2",backend="` + fake.URL + `",type="completion"}`:        5 * n,
		`gateway_tokens_total{model="llama3.2",backend="` + fake.URL + `",type="prompt"}`:            26 * n,
		`gateway_time_to_first_token_seconds_count{endpoint="/api/chat",backend="` + fake.URL + `"}`: n,
	}
	for series, want := range checks {
		if got := sample(t, out, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
}

func TestMetricsEndpointOptions(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) {
		c.Metrics.Endpoint = "/prom"
		c.Metrics.Namespace = "ogw"
		c.Metrics.RequireKey = true
	}, fake.URL)
	if resp, _ := do(t, gw.URL, "GET", "/prom", "", nil); resp.StatusCode != 401 {
		t.Errorf("metrics.requireKey without key: %d; want 401", resp.StatusCode)
	}
	out := scrape(t, gw.URL, "/prom")
	if !strings.Contains(out, "ogw_apikeys_total 1") || strings.Contains(out, "\ngateway_") {
		t.Error("metrics.namespace not applied")
	}
	if fake.RequestsTo("/prom") != 0 {
		t.Error("metrics request reached Ollama")
	}

	// Disabled: the path is Ollama's again (needs a key, goes to the backend).
	gw = startGateway(t, func(c *config.Config) { c.Metrics.Enabled = false }, fake.URL)
	if status, _, _ := get(t, gw.URL+"/metrics"); status != 404 || fake.RequestsTo("/metrics") != 1 {
		t.Errorf("metrics off: /metrics = %d, backend saw %d; want Ollama's 404", status, fake.RequestsTo("/metrics"))
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoSecretInLogsOrMetrics: with the access log on, neither the log nor
// the metrics contain a configured key, a presented wrong key, or an admin
// key; the log names keys by their public id.
func TestNoSecretInLogsOrMetrics(t *testing.T) {
	fake := ollamatest.New(t)
	const admin = "admin-secret-key-000000000001"
	cfg := config.Default()
	cfg.OllamaAddresses = []string{fake.URL}
	cfg.APIKeys = config.Keys(testKey)
	cfg.AdminKeys = config.Keys(admin)
	cfg.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 2, TimeWindowSeconds: 60, AuthFailuresPerMinute: 10}
	var logs lockedBuffer
	url := serve(t, listen(t), &cfg, slog.New(slog.NewJSONHandler(&logs, nil))).URL

	const wrong = "wrong-secret-guess-123456"
	post(t, url+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
	do(t, url, "GET", "/api/tags", "Bearer "+wrong, nil)
	do(t, url, "GET", "/api/tags", "Bearer "+testKey, nil)
	do(t, url, "GET", "/api/tags", "Bearer "+testKey, nil) // rate limited
	do(t, url, "POST", "/config/new-key", "Bearer "+admin, nil)
	metricsOut := scrape(t, url, "/metrics")
	logOut := logs.String()
	for _, secret := range []string{testKey, wrong, admin} {
		if strings.Contains(logOut, secret) {
			t.Errorf("log contains a key: %s", secret[:6])
		}
		if strings.Contains(metricsOut, secret) {
			t.Errorf("metrics contain a key: %s", secret[:6])
		}
	}
	if !strings.Contains(logOut, `"key_id":"`+config.KeyID(config.KeyDigest(testKey))+`"`) {
		t.Errorf("access log lacks the key id:\n%s", logOut)
	}
	for _, field := range []string{`"msg":"request"`, `"status":200`, `"endpoint":"/api/chat"`, `"model":"llama3.2"`, `"backend":"` + fake.URL + `"`, `"status":429`} {
		if !strings.Contains(logOut, field) {
			t.Errorf("access log lacks %s", field)
		}
	}
}
