package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// do sends method path with an optional Authorization value and extra
// headers, and returns the response with its body read.
func do(t *testing.T, gwURL, method, path, authorization string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, gwURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := clientWithKey(authorization).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("body %q is not a JSON error", body)
	}
	return e.Error
}

func TestAPIKeyAuthentication(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	tests := []struct {
		name, auth string
		want       int
	}{
		{"no key", "", 401},
		{"wrong key", "Bearer nope", 401},
		{"key prefix", "Bearer " + testKey[:10], 401},
		{"raw key", testKey, 200},
		{"bearer key", "Bearer " + testKey, 200},
		{"lowercase scheme", "bearer " + testKey, 200},
	}
	for _, tt := range tests {
		resp, body := do(t, gw.URL, "GET", "/api/tags", tt.auth, nil)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s; want %d", tt.name, resp.StatusCode, body, tt.want)
			continue
		}
		if tt.want == 401 {
			errorOf(t, body)
			if resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%s: WWW-Authenticate = %q; want Bearer", tt.name, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	if n := fake.RequestsTo("/api/tags"); n != 3 {
		t.Errorf("backend saw %d requests; want only the 3 authenticated ones", n)
	}
	if h := fake.LastHeaders(); h.Get("Authorization") != "" {
		t.Errorf("backend received the client's key: %q", h.Get("Authorization"))
	}
}

func TestCustomAuthHeaderAndDigestKeys(t *testing.T) {
	fake := ollamatest.New(t)
	const key = "premium-key-42"
	gw := startGateway(t, func(c *config.Config) {
		c.AuthHeaderName = "X-Api-Key"
		c.APIKeys = config.Keys("sha256:" + hexDigest(key))
	}, fake.URL)
	if resp, body := do(t, gw.URL, "GET", "/api/tags", "", map[string]string{"X-Api-Key": key}); resp.StatusCode != 200 {
		t.Errorf("digest-configured key in X-Api-Key: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+key, nil); resp.StatusCode != 401 {
		t.Errorf("key in the wrong header: %d; want 401", resp.StatusCode)
	}
	if fake.LastHeaders().Get("X-Api-Key") != "" {
		t.Error("the key header reached the backend")
	}
}

func TestRealClientsWithKeys(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	// The Go ollama client, Bearer through a RoundTripper.
	client := api.NewClient(mustURL(t, gw.URL), clientWithKey("Bearer "+testKey))
	var text strings.Builder
	err := client.Chat(context.Background(), &api.ChatRequest{
		Model: "llama3.2", Messages: []api.Message{{Role: "user", Content: "hi"}},
	}, func(r api.ChatResponse) error { text.WriteString(r.Message.Content); return nil })
	if err != nil || text.String() != "The sky is blue." {
		t.Errorf("ollama client: %q, %v", text.String(), err)
	}
	// Without a key the same client sees a 401 (which it reports as an
	// AuthorizationError).
	_, err = api.NewClient(mustURL(t, gw.URL), clientWithKey("")).List(context.Background())
	if ae, ok := err.(api.AuthorizationError); !ok || ae.StatusCode != 401 {
		t.Errorf("ollama client without key: %#v; want a 401 AuthorizationError", err)
	}
	// An OpenAI-style request.
	req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "The sky is blue.") {
		t.Errorf("OpenAI request: %d %s", resp.StatusCode, b)
	}
}

func TestIPAllowDeny(t *testing.T) {
	fake := ollamatest.New(t)
	tests := []struct {
		name         string
		allow, deny  []string
		auth         string
		want         int
		wantInBody   string
		reachBackend bool
	}{
		{"empty lists allow all", nil, nil, "Bearer " + testKey, 200, "", true},
		{"allowed CIDR", []string{"127.0.0.0/8"}, nil, "Bearer " + testKey, 200, "", true},
		{"not in allow list", []string{"10.0.0.0/8"}, nil, "Bearer " + testKey, 403, "forbidden", false},
		{"deny wins over allow", []string{"127.0.0.0/8"}, []string{"127.0.0.1"}, "Bearer " + testKey, 403, "forbidden", false},
		{"denied before the key is checked", nil, []string{"127.0.0.1/32"}, "", 403, "forbidden", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fake.RequestsTo("/api/tags")
			gw := startGateway(t, func(c *config.Config) {
				c.Security.AllowIPs, c.Security.DenyIPs = tt.allow, tt.deny
			}, fake.URL)
			resp, body := do(t, gw.URL, "GET", "/api/tags", tt.auth, nil)
			if resp.StatusCode != tt.want || (tt.wantInBody != "" && errorOf(t, body) != tt.wantInBody) {
				t.Errorf("%d %s; want %d %q", resp.StatusCode, body, tt.want, tt.wantInBody)
			}
			if reached := fake.RequestsTo("/api/tags") > before; reached != tt.reachBackend {
				t.Errorf("backend reached = %v; want %v", reached, tt.reachBackend)
			}
		})
	}
}

func TestIPv6LoopbackClient(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	fake := ollamatest.New(t)
	for _, tt := range []struct {
		allow, deny []string
		want        int
	}{
		{[]string{"::1"}, nil, 200},
		{[]string{"::1/128", "10.0.0.0/8"}, []string{"2001:db8::/32"}, 200},
		{nil, []string{"::1"}, 403},
		{[]string{"127.0.0.1"}, nil, 403},
	} {
		gw := startGatewayOn(t, ln, func(c *config.Config) { c.Security.AllowIPs, c.Security.DenyIPs = tt.allow, tt.deny }, fake.URL)
		resp, body := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, nil)
		if resp.StatusCode != tt.want {
			t.Errorf("allow %v deny %v: [::1] client got %d %s; want %d", tt.allow, tt.deny, resp.StatusCode, body, tt.want)
		}
		ln, err = net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	ln.Close()
}

func TestTrustedProxies(t *testing.T) {
	fake := ollamatest.New(t)
	xff := map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.5"}
	// Not trusted: X-Forwarded-For is ignored, the peer 127.0.0.1 is the client.
	gw := startGateway(t, func(c *config.Config) { c.Security.DenyIPs = []string{"203.0.113.5"} }, fake.URL)
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, xff); resp.StatusCode != 200 {
		t.Errorf("untrusted peer: XFF was believed (%d)", resp.StatusCode)
	}
	// Trusted loopback proxy: the right-most untrusted address is the client.
	gw = startGateway(t, func(c *config.Config) {
		c.Security.DenyIPs = []string{"203.0.113.5"}
		c.Security.TrustedProxies = []string{"127.0.0.1"}
	}, fake.URL)
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, xff); resp.StatusCode != 403 {
		t.Errorf("trusted peer: client 203.0.113.5 not denied (%d)", resp.StatusCode)
	}
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, map[string]string{"X-Forwarded-For": "203.0.113.5, 198.51.100.9"}); resp.StatusCode != 200 {
		t.Errorf("a forged left-hand entry was believed (%d)", resp.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	fake := ollamatest.New(t)
	const premium = "premium-key-0000000001"
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = append(c.APIKeys, config.KeyEntry{Key: premium})
		c.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 3, TimeWindowSeconds: 60, AuthFailuresPerMinute: 10,
			PerKey: map[string]config.RateOverride{premium: {MaxRequests: 5, TimeWindowSeconds: 60}}}
	}, fake.URL)
	for i := range 3 {
		resp, body := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(2-i); got != want || resp.Header.Get("X-RateLimit-Limit") != "3" {
			t.Errorf("request %d: X-RateLimit-Limit %q Remaining %q; want 3 %s", i, resp.Header.Get("X-RateLimit-Limit"), got, want)
		}
		if reset, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Reset")); err != nil || reset < 1 || reset > 60 {
			t.Errorf("request %d: X-RateLimit-Reset %q", i, resp.Header.Get("X-RateLimit-Reset"))
		}
	}
	resp, body := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, nil)
	if resp.StatusCode != 429 || errorOf(t, body) != "rate limit exceeded" {
		t.Fatalf("4th request: %d %s; want 429 rate limit exceeded", resp.StatusCode, body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
		t.Errorf("Retry-After %q; want the seconds until one token (20 at most)", resp.Header.Get("Retry-After"))
	}
	if fake.RequestsTo("/api/tags") != 3 {
		t.Errorf("backend saw %d; want 3", fake.RequestsTo("/api/tags"))
	}
	// The premium key has its own, larger bucket.
	for i := range 5 {
		if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+premium, nil); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "5" {
			t.Fatalf("premium request %d: %d limit %q", i, resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"))
		}
	}
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+premium, nil); resp.StatusCode != 429 {
		t.Errorf("premium 6th request: %d; want 429", resp.StatusCode)
	}
}

func TestAuthFailuresThrottled(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) { c.RateLimit.AuthFailuresPerMinute = 3 }, fake.URL)
	for i := range 3 {
		if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer guess-"+strconv.Itoa(i), nil); resp.StatusCode != 401 {
			t.Fatalf("guess %d: %d; want 401", i, resp.StatusCode)
		}
	}
	resp, body := do(t, gw.URL, "GET", "/api/tags", "Bearer guess-4", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("4th guess: %d %s (Retry-After %q); want 429", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// A valid key from the same IP still works: only failures count.
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, nil); resp.StatusCode != 200 {
		t.Errorf("valid key after throttled guesses: %d; want 200", resp.StatusCode)
	}
}

// TestRateLimitConcurrentExact: 64 goroutines hammering one key within one
// window get exactly maxRequests admits.
func TestRateLimitConcurrentExact(t *testing.T) {
	fake := ollamatest.New(t)
	const limit = 50
	gw := startGateway(t, func(c *config.Config) {
		c.RateLimit = config.RateLimit{Enabled: true, MaxRequests: limit, TimeWindowSeconds: 3600, AuthFailuresPerMinute: 10}
	}, fake.URL)
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 4 {
				resp, _ := do(t, gw.URL, "GET", "/api/version", "Bearer "+testKey, nil)
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit || limited.Load() != 256-limit {
		t.Errorf("admitted %d, limited %d; want exactly %d and %d", ok.Load(), limited.Load(), limit, 256-limit)
	}
}

func TestMaxConcurrent(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithPaced())
	gw := startGateway(t, func(c *config.Config) {
		c.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 1000, TimeWindowSeconds: 60, MaxConcurrent: 1, AuthFailuresPerMinute: 10}
	}, fake.URL)
	fake.Release()
	resp, err := httpClient().Post(gw.URL+"/api/chat", "application/json",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// One stream in flight: a second request from the same key is refused.
	r2, body := do(t, gw.URL, "GET", "/api/version", "Bearer "+testKey, nil)
	if r2.StatusCode != 429 || !strings.Contains(body, "concurrent") {
		t.Errorf("second concurrent request: %d %s; want 429", r2.StatusCode, body)
	}
	for range 5 {
		fake.Release()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The slot is released when the stream's last byte has been passed on,
	// just after the client saw it: wait for that state, bounded.
	eventually(t, "concurrency slot released", func() bool { return gw.gw.conc.Len() == 0 })
	if r3, body := do(t, gw.URL, "GET", "/api/version", "Bearer "+testKey, nil); r3.StatusCode != 200 {
		t.Errorf("after the stream ended: %d %s; want 200", r3.StatusCode, body)
	}
}

func TestCORS(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) { c.Security.AllowedOrigins = []string{"https://chat.example.com"} }, fake.URL)
	pre := map[string]string{
		"Origin":                         "https://chat.example.com",
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization, content-type",
	}
	// Preflight: no key needed, answered by the gateway.
	resp, _ := do(t, gw.URL, "OPTIONS", "/api/chat", "", pre)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	pre["Origin"] = "https://evil.example"
	if resp, body := do(t, gw.URL, "OPTIONS", "/api/chat", "", pre); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %s", resp.StatusCode, body)
	}
	// The actual request carries the allow header, errors included.
	origin := map[string]string{"Origin": "https://chat.example.com"}
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, origin); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.com" {
		t.Errorf("CORS request: %d ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "", origin); resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("CORS 401 without allow header: %d", resp.StatusCode)
	}
	if fake.RequestsTo("/api/chat") != 0 {
		t.Error("a preflight reached Ollama")
	}
}

func TestAdminScope(t *testing.T) {
	fake := ollamatest.New(t)
	const admin = "admin-key-000000000001"
	// With admin keys: an ordinary key is refused, an admin key passes.
	gw := startGateway(t, func(c *config.Config) { c.AdminKeys = config.Keys(admin) }, fake.URL)
	if resp, _ := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, nil); resp.StatusCode != 403 {
		t.Errorf("API key on an admin endpoint: %d; want 403", resp.StatusCode)
	}
	if resp, _ := do(t, gw.URL, "POST", "/config/new-key", "", nil); resp.StatusCode != 401 {
		t.Errorf("no key on an admin endpoint: %d; want 401", resp.StatusCode)
	}
	if resp, _ := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+admin, nil); resp.StatusCode == 401 || resp.StatusCode == 403 {
		t.Errorf("admin key refused: %d", resp.StatusCode)
	}
	// An admin key is an API key too.
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+admin, nil); resp.StatusCode != 200 {
		t.Errorf("admin key on the API: %d", resp.StatusCode)
	}
	// Without admin keys: an API key from a direct loopback client only.
	gw = startGateway(t, nil, fake.URL)
	if resp, _ := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, nil); resp.StatusCode == 401 || resp.StatusCode == 403 {
		t.Errorf("loopback API key refused on an admin endpoint: %d", resp.StatusCode)
	}
	if resp, _ := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, map[string]string{"X-Forwarded-For": "203.0.113.5"}); resp.StatusCode != 403 {
		t.Errorf("proxied client on an admin endpoint: %d; want 403", resp.StatusCode)
	}
	if fake.RequestsTo("/config/new-key") != 0 {
		t.Error("an admin request reached Ollama")
	}
}

// TestReloadRefusesOverflowingWindow: issue 10, item 4. A window of
// 9223372037 s overflowed to a negative Duration and no request was ever
// limited; a reload goes through the same validation as a start.
func TestReloadRefusesOverflowingWindow(t *testing.T) {
	fake := ollamatest.New(t)
	cfg := baseConfig(fake.URL)
	// Two requests a minute: one to the API, then the reload (admin
	// requests are limited too); the third must be refused.
	cfg.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 2, TimeWindowSeconds: 60, AuthFailuresPerMinute: 10}
	gw := startFileGateway(t, cfg)
	if resp, body := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, nil); resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	cfg.RateLimit.TimeWindowSeconds = 9223372037
	writeConfig(t, gw.path, cfg)
	resp, body := do(t, gw.URL, "POST", "/config/reload", "Bearer "+testKey, nil)
	if want := "rateLimit.timeWindowSeconds: must be at most 31536000 (one year)"; resp.StatusCode != 422 || !strings.Contains(errorOf(t, body), want) {
		t.Errorf("reload: %d %s; want 422 naming %q", resp.StatusCode, body, want)
	}
	if resp, body := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, nil); resp.StatusCode != 429 {
		t.Errorf("after the refused reload: %d %s; want 429 (the old limit holds)", resp.StatusCode, body)
	}
}

// TestDeniedIPThroughTrustedProxy: issue 10, item 7. Through a trusted
// proxy, an X-Forwarded-For entry with a port, "unknown", or a quoted or
// folded value made the proxy the client, so a denied IP got 200. Every
// form proxies send is read; what cannot be read is refused with 400.
func TestDeniedIPThroughTrustedProxy(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) {
		c.Security.DenyIPs = []string{"203.0.113.5", "2001:db8::1"}
		c.Security.TrustedProxies = []string{"127.0.0.1"}
	}, fake.URL)
	tests := []struct {
		name    string
		headers string
		want    int
	}{
		{"IPv4 with port", "X-Forwarded-For: 203.0.113.5:5555\r\n", 403},
		{"bracketed IPv6 with port", "X-Forwarded-For: [2001:db8::1]:443\r\n", 403},
		{"bracketed IPv6", "X-Forwarded-For: [2001:db8::1]\r\n", 403},
		{"IPv6 zone", "X-Forwarded-For: 2001:db8::1%eth0\r\n", 403},
		{"mapped IPv6", "X-Forwarded-For: ::ffff:203.0.113.5\r\n", 403},
		{"quoted", "X-Forwarded-For: \"203.0.113.5\"\r\n", 403},
		{"white space", "X-Forwarded-For: \t 203.0.113.5 \t\r\n", 403},
		{"second header line", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.5\r\n", 403},
		{"behind a second trusted hop", "X-Forwarded-For: 203.0.113.5, 127.0.0.1:80\r\n", 403},
		{"folded", "X-Forwarded-For: 6.6.6.6,\r\n 203.0.113.5\r\n", 403},
		{"unknown", "X-Forwarded-For: unknown\r\n", 400},
		{"unknown right of the client", "X-Forwarded-For: 203.0.113.5, unknown\r\n", 400},
		{"garbage", "X-Forwarded-For: 203.0.113.5:x\r\n", 400},
		{"Forwarded", "Forwarded: for=203.0.113.5\r\n", 403},
		{"Forwarded IPv6 with port", "Forwarded: for=\"[2001:db8::1]:443\";proto=https\r\n", 403},
		{"Forwarded IPv4 with port", "Forwarded: For=\"203.0.113.5:4711\"\r\n", 403},
		{"Forwarded chain", "Forwarded: for=6.6.6.6, for=203.0.113.5;by=127.0.0.1\r\n", 403},
		{"Forwarded unknown", "Forwarded: for=unknown\r\n", 400},
		{"Forwarded obfuscated", "Forwarded: for=_hidden\r\n", 400},
		{"Forwarded against XFF", "Forwarded: for=6.6.6.6\r\nX-Forwarded-For: 203.0.113.5\r\n", 400},
		{"allowed client with port", "X-Forwarded-For: 198.51.100.7:5555\r\n", 200},
		{"allowed client, Forwarded", "Forwarded: for=\"[2001:db8::2]:443\"\r\n", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fake.RequestsTo("/api/tags")
			resp := rawRequest(t, gw.URL, "GET /api/tags HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+testKey+"\r\n"+
				tt.headers+"Connection: close\r\n\r\n")
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%q: %d %s; want %d", tt.headers, resp.StatusCode, b, tt.want)
			}
			if tt.want != 200 {
				errorOf(t, string(b))
				if fake.RequestsTo("/api/tags") != before {
					t.Errorf("%q: a refused request reached Ollama", tt.headers)
				}
			}
		})
	}
}

// TestAdminLoopbackFallbackRefusesProxyHeaders: issue 10, item 6. Without
// adminKeys, only a loopback client that came through no proxy may use an
// API key on the admin endpoints; Forwarded, X-Real-IP and even an empty
// X-Forwarded-For let a proxied client through.
func TestAdminLoopbackFallbackRefusesProxyHeaders(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	// /config/reload answers 503 here (no file): anything but 403 passed
	// the admin check.
	for _, tt := range []struct {
		headers string
		want    int
	}{
		{"", 503},
		{"X-Forwarded-For: 203.0.113.5\r\n", 403},
		{"X-Forwarded-For:\r\n", 403},
		{"X-Forwarded-For: \r\n", 403},
		{"Forwarded: for=203.0.113.5\r\n", 403},
		{"forwarded: proto=https\r\n", 403},
		{"X-Real-IP: 203.0.113.5\r\n", 403},
		{"X-Real-Ip:\r\n", 403},
		{"X-Forwarded-Host: gw.example.com\r\n", 403},
		{"X-Forwarded-Proto: https\r\n", 403},
		{"Via: 1.1 proxy\r\n", 403},
	} {
		resp := rawRequest(t, gw.URL, "GET /config/reload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+testKey+"\r\n"+
			tt.headers+"Connection: close\r\n\r\n")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%q: %d %s; want %d", tt.headers, resp.StatusCode, b, tt.want)
		}
	}
}

// TestAdminFallbackWarnsAtStart: the loopback fallback is announced with a
// WARN line at start-up, and only when it is active.
func TestAdminFallbackWarnsAtStart(t *testing.T) {
	fake := ollamatest.New(t)
	for _, tt := range []struct {
		admin []string
		want  bool
	}{{nil, true}, {[]string{"admin-key-000000000001"}, false}} {
		var buf lockedBuffer
		cfg := baseConfig(fake.URL)
		cfg.AdminKeys = config.Keys(tt.admin...)
		serve(t, listen(t), &cfg, slog.New(slog.NewJSONHandler(&buf, nil)))
		warned := false
		for line := range strings.SplitSeq(buf.String(), "\n") {
			var rec struct{ Level, Msg string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && strings.Contains(rec.Msg, "no adminKeys") {
				warned = true
			}
		}
		if warned != tt.want {
			t.Errorf("adminKeys %v: warned = %v; want %v; log:\n%s", tt.admin, warned, tt.want, buf.String())
		}
	}
}
