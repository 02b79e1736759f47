package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// TestTokenBudget: a key with a token budget is charged what the backend
// reports when each response ends; once at or over its budget it gets 429
// with Retry-After before any backend sees the request; a streamed chat
// may overshoot once. GET /config/keys and the per-key metrics show the
// exact counts.
func TestTokenBudget(t *testing.T) {
	tokens := []string{"a", "b", "c", "d"} // eval_count 4; prompt_eval_count 26
	fake := ollamatest.New(t, ollamatest.WithTokens(tokens...))
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = []config.KeyEntry{{Key: testKey},
			{Key: teamKey, KeyPolicy: config.KeyPolicy{Name: "team-a", Tokens: &config.TokenBudget{Max: 40, WindowSeconds: 3600}}}}
		c.AdminKeys = config.Keys(adminKey)
	}, fake.URL)
	chat := `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}` // streamed NDJSON
	for i, want := range []int{200, 200, 429} {
		before := fake.RequestsTo("/api/chat")
		status, body := call(t, gw.URL, "POST", "/api/chat", teamKey, chat)
		if status != want {
			t.Fatalf("chat %d: %d %s; want %d", i, status, body, want)
		}
		if want == 429 {
			if !strings.Contains(errorOf(t, body), "token budget exhausted") {
				t.Errorf("429 body %s; want the budget named", body)
			}
			if fake.RequestsTo("/api/chat") != before {
				t.Error("the refused chat reached the backend")
			}
		}
	}
	// Listing models spends no tokens: allowed.
	if status, _ := call(t, gw.URL, "GET", "/api/tags", teamKey, ""); status != 200 {
		t.Errorf("tags with the budget spent: %d; want 200", status)
	}

	req, _ := http.NewRequest("POST", gw.URL+"/api/chat", strings.NewReader(chat))
	resp, err := clientWithKey("Bearer " + teamKey).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if ra := resp.Header.Get("Retry-After"); resp.StatusCode != 429 || ra == "" || ra == "0" {
		t.Errorf("over budget: %d Retry-After %q; want 429 with a positive Retry-After", resp.StatusCode, ra)
	}

	status, body := call(t, gw.URL, "GET", "/config/keys", adminKey, "")
	if status != 200 || strings.Contains(body, teamKey) || strings.Contains(body, testKey) {
		t.Fatalf("GET /config/keys: %d %s; want 200 and no key", status, body)
	}
	var got struct{ Keys []KeyUsage }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	var team *KeyUsage
	for i := range got.Keys {
		if got.Keys[i].Name == "team-a" {
			team = &got.Keys[i]
		}
	}
	if len(got.Keys) != 3 || team == nil {
		t.Fatalf("keys = %+v; want 3 with team-a", got.Keys)
	}
	// Two chats charged (26 + 4 each), two 429s and one listing counted as requests.
	if team.Requests != 5 || team.PromptTokens != 52 || team.CompletionTokens != 8 || team.LastUsed == nil ||
		team.Window == nil || team.Window.PromptTokens != 52 || team.Window.CompletionTokens != 8 || team.Window.Remaining != 0 ||
		team.Tokens == nil || team.Tokens.Max != 40 {
		t.Errorf("team-a usage = %+v (window %+v); want 5 requests, 52 prompt and 8 completion tokens", *team, team.Window)
	}
	_, _, metrics := get(t, gw.URL+"/metrics")
	for _, line := range []string{
		`gateway_key_requests_total{key="team-a"} 5`,
		`gateway_key_tokens_total{key="team-a",type="prompt"} 52`,
		`gateway_key_tokens_total{key="team-a",type="completion"} 8`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	if strings.Contains(metrics, teamKey) {
		t.Error("metrics show a key")
	}
	// A plain key (no budget) is never refused for tokens.
	for range 3 {
		if status, _ := call(t, gw.URL, "POST", "/api/chat", testKey, chat); status != 200 {
			t.Fatalf("plain key chat: %d; want 200", status)
		}
	}
}
