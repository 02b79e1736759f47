package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/internal/redistest"
)

// The tests in this file run two real gateway processes (the binary built
// by TestMain), each from its own config file, in front of one fake Ollama
// and sharing one private redis-server: what gateway/replicas*_test.go
// check with two gateways in one process, checked across processes.

const (
	procKey   = "proc-key-0123456789abcdef"
	procTeam  = "proc-team-0123456789abcdef"
	procAdmin = "proc-admin-0123456789abcdef"
)

// replicaConfig is the config file of one replica: fake as its backend,
// apiKeys and the admin key, rateLimit rl, and a redis block for redisURL
// unless it is empty.
func replicaConfig(t *testing.T, fake, redisURL string, rl map[string]any, apiKeys ...any) string {
	t.Helper()
	c := map[string]any{
		"ollamaAddresses": []string{fake},
		"gatewayAddress":  "127.0.0.1:0",
		"apiKeys":         apiKeys,
		"adminKeys":       []string{procAdmin},
		"rateLimit":       rl,
	}
	if redisURL != "" {
		// A 2 s timeout, as the in-process replica tests use: on a loaded
		// machine 100 ms is missed now and then, and failMode open would
		// then fall back to local limits.
		c["redis"] = map[string]any{"url": redisURL, "keyPrefix": "proc:", "failMode": "open", "timeoutMilliseconds": 2000}
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// replica is one running gateway process.
type replica struct {
	url  string // base URL
	path string // its config file
}

// startReplica starts the binary on cfg and waits until its /readyz says
// ready (its backend passed a health check).
func startReplica(t *testing.T, cfg string) replica {
	t.Helper()
	url, cmd, _ := startBinary(t, cfg)
	r := replica{url: url, path: envValue(cmd.Env, "OLLAMA_GATEWAY_CONFIG")}
	poll(t, 10*time.Second, url+" ready", func() bool {
		status, _, _ := send(t, url, "GET", "/readyz", "", "")
		return status == 200
	})
	return r
}

// send makes one request with key as a bearer token (none when empty) and
// returns the status, the body and the headers.
func send(t *testing.T, base, method, path, key, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, string(data), resp.Header
}

// poll checks cond every 10 ms for at most d (another process's state has
// no signal to wait on), and returns how long it took, or fails.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// wantOllamaError fails unless the answer is Ollama's error shape,
// {"error":"..."} as JSON.
func wantOllamaError(t *testing.T, what, body string, h http.Header) {
	t.Helper()
	var e map[string]string
	if err := json.Unmarshal([]byte(body), &e); err != nil || len(e) != 1 || e["error"] == "" ||
		!strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("%s: body %q (Content-Type %q); want Ollama's {\"error\":\"...\"} as JSON", what, body, h.Get("Content-Type"))
	}
}

// TestReplicaProcessesShareRateLimit: one client alternating between two
// gateway processes on one Redis gets maxRequests in all, the
// X-RateLimit-Remaining count going down across both, and then 429 with
// Retry-After on either; without the redis block (the control) each
// process admits maxRequests on its own.
func TestReplicaProcessesShareRateLimit(t *testing.T) {
	const limit = 4
	tests := []struct {
		name  string
		redis bool
		// remaining is X-RateLimit-Remaining of the admitted requests, sent
		// to A, B, A, B, ...; the next request to each replica is refused.
		remaining []string
	}{
		{"one redis", true, []string{"3", "2", "1", "0"}},
		{"no redis block", false, []string{"3", "3", "2", "2", "1", "1", "0", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := ollamatest.New(t)
			url := ""
			if tt.redis {
				url = redistest.Start(t).URL()
			}
			rl := map[string]any{"enabled": true, "maxRequests": limit, "timeWindowSeconds": 60}
			a := startReplica(t, replicaConfig(t, fake.URL, url, rl, procKey))
			b := startReplica(t, replicaConfig(t, fake.URL, url, rl, procKey))
			replicas := []replica{a, b}
			for i, want := range tt.remaining {
				status, body, h := send(t, replicas[i%2].url, "GET", "/api/version", procKey, "")
				if status != 200 || h.Get("X-RateLimit-Remaining") != want || h.Get("X-RateLimit-Limit") != strconv.Itoa(limit) {
					t.Fatalf("request %d (replica %c): %d %s, X-RateLimit-Limit %q, X-RateLimit-Remaining %q; want 200, %d, %s",
						i+1, "AB"[i%2], status, body, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), limit, want)
				}
			}
			for i, r := range replicas {
				n := len(tt.remaining) + i + 1
				status, body, h := send(t, r.url, "GET", "/api/version", procKey, "")
				what := "request " + strconv.Itoa(n) + " (replica " + string("AB"[i]) + ")"
				if status != 429 {
					t.Fatalf("%s: %d %s; want 429", what, status, body)
				}
				wantOllamaError(t, what, body, h)
				if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 || s > 60 {
					t.Errorf("%s: Retry-After %q; want whole seconds in 1..60", what, h.Get("Retry-After"))
				}
			}
		})
	}
}

// TestReplicaProcessesShareKeys: a key minted through A's admin API works
// on B within a second and is written to neither config file; revoked
// through A, it is refused on B within a second.
func TestReplicaProcessesShareKeys(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t)
	// Generous limits: B is polled with a key it does not know yet.
	rl := map[string]any{"enabled": true, "maxRequests": 10000, "timeWindowSeconds": 60, "authFailuresPerMinute": 10000}
	a := startReplica(t, replicaConfig(t, fake.URL, srv.URL(), rl, procKey))
	b := startReplica(t, replicaConfig(t, fake.URL, srv.URL(), rl, procKey))

	status, body, _ := send(t, a.url, "POST", "/config/new-key", procAdmin, `{"name":"minted-on-a"}`)
	var minted struct{ Key, ID string }
	if err := json.Unmarshal([]byte(body), &minted); status != 200 || err != nil || minted.Key == "" || minted.ID == "" {
		t.Fatalf("POST /config/new-key on A: %d %s (%v); want 200 with a key and its id", status, body, err)
	}
	tags := func(r replica) int { s, _, _ := send(t, r.url, "GET", "/api/tags", minted.Key, ""); return s }
	if s := tags(a); s != 200 {
		t.Errorf("the minted key on A: %d; want 200", s)
	}
	took := poll(t, time.Second, "the key minted on A works on B", func() bool { return tags(b) == 200 })
	t.Logf("minted on A, working on B after %v", took)
	for _, r := range []replica{a, b} {
		if data, err := os.ReadFile(r.path); err != nil || strings.Contains(string(data), minted.ID) ||
			strings.Contains(string(data), minted.Key) {
			t.Errorf("config file %s after the mint (%v):\n%s\nwant neither the key nor its id: it lives in Redis", r.path, err, data)
		}
	}

	if s, body, _ := send(t, a.url, "DELETE", "/config/keys/"+minted.ID, procAdmin, ""); s != 200 {
		t.Fatalf("DELETE /config/keys/%s on A: %d %s; want 200", minted.ID, s, body)
	}
	took = poll(t, time.Second, "the key revoked on A is refused on B", func() bool { return tags(b) == 401 })
	t.Logf("revoked on A, refused on B after %v", took)
	if s := tags(a); s != 401 {
		t.Errorf("the revoked key on A: %d; want 401", s)
	}
}

// TestReplicaProcessesShareTokenBudget: a key's token budget spent on A is
// spent on B too: B shows A's usage in GET /config/keys and refuses the
// key's next chat with 429 and Retry-After before any backend sees it.
func TestReplicaProcessesShareTokenBudget(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t, ollamatest.WithTokens("a", "b", "c", "d")) // 26 prompt + 4 completion tokens
	const budget = 30
	rl := map[string]any{"enabled": true, "maxRequests": 10000, "timeWindowSeconds": 60}
	team := map[string]any{"key": procTeam, "name": "team-a", "tokens": map[string]any{"max": budget, "windowSeconds": 3600}}
	a := startReplica(t, replicaConfig(t, fake.URL, srv.URL(), rl, procKey, team))
	b := startReplica(t, replicaConfig(t, fake.URL, srv.URL(), rl, procKey, team))

	chat := `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`
	if s, body, _ := send(t, a.url, "POST", "/api/chat", procTeam, chat); s != 200 {
		t.Fatalf("chat on A within the budget: %d %s; want 200", s, body)
	}
	// A charges as the response ends, which may be just after the client
	// read it: wait until B's view of the key shows the charge.
	spentOnB := func() int64 {
		s, body, _ := send(t, b.url, "GET", "/config/keys", procAdmin, "")
		var got struct {
			Keys []struct {
				Name                           string
				PromptTokens, CompletionTokens int64
			}
		}
		if err := json.Unmarshal([]byte(body), &got); s != 200 || err != nil {
			t.Fatalf("GET /config/keys on B: %d %s (%v)", s, body, err)
		}
		for _, k := range got.Keys {
			if k.Name == "team-a" {
				return k.PromptTokens + k.CompletionTokens
			}
		}
		t.Fatalf("GET /config/keys on B: %s; want team-a listed", body)
		return 0
	}
	poll(t, 2*time.Second, "B's GET /config/keys shows the tokens spent on A", func() bool { return spentOnB() == budget })

	before := fake.RequestsTo("/api/chat")
	s, body, h := send(t, b.url, "POST", "/api/chat", procTeam, chat)
	if s != 429 {
		t.Fatalf("chat on B with the budget spent on A: %d %s; want 429", s, body)
	}
	wantOllamaError(t, "chat on B with the budget spent on A", body, h)
	if h.Get("Retry-After") == "" {
		t.Error("the budget's 429 on B has no Retry-After")
	}
	if got := fake.RequestsTo("/api/chat"); got != before {
		t.Errorf("the refused chat reached the backend: %d chats; want %d", got, before)
	}
}
