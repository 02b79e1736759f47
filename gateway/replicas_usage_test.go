package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/internal/redistest"
	"github.com/ollamagw/ollama-gateway/keyusage"
)

// budgetReplicas starts two gateways sharing the Redis at url whose team
// key has a budget of max tokens an hour, with failMode mode and a Redis
// timeout of ms (short only for tests of a dead Redis: a loaded machine
// misses 100 ms now and then).
func budgetReplicas(t *testing.T, url, mode string, ms int, max int64, fake string) (a, b *testGateway) {
	t.Helper()
	set := func(c *config.Config) {
		c.APIKeys = []config.KeyEntry{{Key: testKey},
			{Key: teamKey, KeyPolicy: config.KeyPolicy{Name: "team-a", Tokens: &config.TokenBudget{Max: max, WindowSeconds: 3600}}}}
		c.AdminKeys = config.Keys(adminKey)
		c.Redis = &config.Redis{URL: url, KeyPrefix: "test:", FailMode: mode, TimeoutMilliseconds: ms, LeaseMilliseconds: 30000}
	}
	return startGateway(t, set, fake), startGateway(t, set, fake)
}

// teamUsage returns team-a's entry of GET /config/keys on gw.
func teamUsage(t *testing.T, gw *testGateway) KeyUsage {
	t.Helper()
	status, body := call(t, gw.URL, "GET", "/config/keys", adminKey, "")
	if status != 200 {
		t.Fatalf("GET /config/keys: %d %s", status, body)
	}
	var got struct{ Keys []KeyUsage }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range got.Keys {
		if k.Name == "team-a" {
			return k
		}
	}
	t.Fatalf("GET /config/keys: %s; want team-a", body)
	return KeyUsage{}
}

// TestReplicasShareTokenBudget: a budget spent half on A and half on B
// cuts off on both at the same total (B at once, from its charge's reply;
// A once the figure it saw is older than keyusage.Fresh), and GET
// /config/keys on B shows A's usage: the fleet-wide figures.
func TestReplicasShareTokenBudget(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t, ollamatest.WithTokens("a", "b", "c", "d")) // 26 prompt + 4 completion
	a, b := budgetReplicas(t, srv.URL(), "open", 2000, 60, fake.URL)
	chat := `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`
	steps := []struct {
		name string
		gw   *testGateway
		want int
	}{
		{"half on A", a, 200},
		{"half on B", b, 200},
		{"B with the budget spent", b, 429},
	}
	var chargedOnA time.Time
	for _, s := range steps {
		if status, body := call(t, s.gw.URL, "POST", "/api/chat", teamKey, chat); status != s.want {
			t.Fatalf("%s: %d %s; want %d", s.name, status, body, s.want)
		}
		if s.gw == a {
			chargedOnA = time.Now()
		}
	}
	u := teamUsage(t, b)
	if u.Requests != 3 || u.PromptTokens != 52 || u.CompletionTokens != 8 || u.Window == nil || u.Window.Remaining != 0 {
		t.Errorf("team-a on B = %+v (window %+v); want 3 requests, 52 prompt, 8 completion tokens, 0 remaining", u, u.Window)
	}
	// A's own figure (30) is trusted for keyusage.Fresh; past it A reads
	// the fleet-wide 60. The wait is the bound itself, plus a little for
	// the charge, made as the response ends.
	time.Sleep(time.Until(chargedOnA.Add(keyusage.Fresh + 20*time.Millisecond)))
	before := fake.RequestsTo("/api/chat")
	if status, body := call(t, a.URL, "POST", "/api/chat", teamKey, chat); status != 429 || !strings.Contains(body, "60 of 60") {
		t.Errorf("A with the budget spent on A and B: %d %s; want 429 naming 60 of 60", status, body)
	}
	if got := fake.RequestsTo("/api/chat"); got != before {
		t.Errorf("the refused chat reached the backend")
	}
	if u := teamUsage(t, a); u.Requests != 4 || u.PromptTokens != 52 {
		t.Errorf("team-a on A = %+v; want 4 requests and 52 prompt tokens", u)
	}
}

// TestReplicasTokenBudgetRedisDown: with Redis down, a key with a budget
// gets 503 in closed mode, and in open mode is admitted and counted on
// the replica (its local counts back GET /config/keys meanwhile).
func TestReplicasTokenBudgetRedisDown(t *testing.T) {
	chat := `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`
	for _, tt := range []struct {
		mode string
		want int
	}{{"closed", 503}, {"open", 200}} {
		t.Run(tt.mode, func(t *testing.T) {
			srv := redistest.Start(t)
			fake := ollamatest.New(t, ollamatest.WithTokens("a", "b", "c", "d"))
			_, b := budgetReplicas(t, srv.URL(), tt.mode, 50, 1000, fake.URL)
			srv.Stop()
			start := time.Now()
			status, body := call(t, b.URL, "POST", "/api/chat", teamKey, chat)
			if status != tt.want {
				t.Errorf("chat with Redis down: %d %s; want %d", status, body, tt.want)
			}
			if tt.mode == "closed" && !strings.Contains(errorOf(t, body), "token budget") {
				t.Errorf("503 body %s; want the budget named", body)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("chat with Redis down took %v; want under a second", el)
			}
			if tt.mode == "open" {
				if u := teamUsage(t, b); u.Requests != 1 || u.PromptTokens != 26 {
					t.Errorf("team-a on B while down = %+v; want B's own 1 request, 26 prompt tokens", u)
				}
			}
		})
	}
}
