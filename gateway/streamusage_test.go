package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// TestTokenBudgetOpenAIStreamWithoutUsage: a streamed OpenAI chat that does
// not ask for stream_options.include_usage is charged all the same (the
// gateway asks the backend for the usage) and the client gets the bytes it
// would have got without the gateway: no usage chunk, "data: [DONE]" at
// the end. A client that asks for the usage itself still gets it.
func TestTokenBudgetOpenAIStreamWithoutUsage(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithTokens("a", "b", "c", "d")) // 26 prompt + 4 completion tokens
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = []config.KeyEntry{{Key: testKey},
			{Key: teamKey, KeyPolicy: config.KeyPolicy{Name: "team-a", Tokens: &config.TokenBudget{Max: 60, WindowSeconds: 3600}}}}
		c.AdminKeys = config.Keys(adminKey)
	}, fake.URL)

	const (
		plain = `{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		asks  = `{"model":"llama3.2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	)
	// The fake draws the id and the created time afresh for each answer.
	fresh := regexp.MustCompile(`"id":"chatcmpl-\d+"|"created":\d+`)
	direct := func(body string) string {
		t.Helper()
		resp, err := http.Post(fake.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fresh.ReplaceAllString(string(b), "")
	}
	tests := []struct {
		name, body       string
		prompt, complete int64 // the key's totals after it
	}{
		{"without include_usage", plain, 26, 4},
		{"with include_usage", asks, 52, 8},
	}
	for _, tt := range tests {
		status, got := call(t, gw.URL, "POST", "/v1/chat/completions", teamKey, tt.body)
		if status != 200 {
			t.Fatalf("%s: %d %s; want 200", tt.name, status, got)
		}
		if got, want := fresh.ReplaceAllString(got, ""), direct(tt.body); got != want {
			t.Errorf("%s: the client got\n%s\nwithout the gateway:\n%s", tt.name, got, want)
		}
		if tt.body == asks && !strings.Contains(got, `"usage":{`) {
			t.Errorf("%s: no usage chunk in\n%s", tt.name, got)
		}
		p, c := keyTokens(t, gw.URL, "team-a")
		if p != tt.prompt || c != tt.complete {
			t.Errorf("%s: team-a charged %d prompt and %d completion tokens; want %d and %d (the fake's counts)",
				tt.name, p, c, tt.prompt, tt.complete)
		}
	}
	if status, body := call(t, gw.URL, "POST", "/v1/chat/completions", teamKey, plain); status != 429 {
		t.Errorf("over budget: %d %s; want 429", status, body)
	}
}

// keyTokens returns the prompt and completion tokens GET /config/keys
// shows for the key named name.
func keyTokens(t *testing.T, gwURL, name string) (prompt, completion int64) {
	t.Helper()
	status, body := call(t, gwURL, "GET", "/config/keys", adminKey, "")
	if status != 200 {
		t.Fatalf("GET /config/keys: %d %s", status, body)
	}
	var got struct{ Keys []KeyUsage }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range got.Keys {
		if k.Name == name {
			return k.PromptTokens, k.CompletionTokens
		}
	}
	t.Fatalf("no key %q in %s", name, body)
	return 0, 0
}
