package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/auth"
	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/ssh"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// newOllamaHome makes a temporary HOME holding a fresh
// ~/.ollama/id_ed25519 (OpenSSH private-key format, as `ollama serve` or
// ssh-keygen writes it), sets HOME and OLLAMA_AUTH=1, and returns the
// key's id_ed25519.pub line as Ollama reads it.
func newOllamaHome(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ollama"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ollama", "id_ed25519"), pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("OLLAMA_AUTH", "1")
	line, err := auth.GetPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return line + " alice@laptop"
}

// signedDo sends method path to the gateway signed by the key in $HOME, as
// Ollama's client signs, with the given ts; tamper may change the request.
func signedDo(t *testing.T, gwURL, method, path string, ts int64, tamper func(*http.Request)) (*http.Response, string) {
	t.Helper()
	now := strconv.FormatInt(ts, 10)
	token, err := auth.Sign(context.Background(), []byte(method+","+path+"?ts="+now))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, gwURL+path+"?ts="+now, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", token)
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestOllamaClientSignedRequests: with OLLAMA_AUTH=1 and OLLAMA_HOST at the
// gateway, Ollama's own client (api.ClientFromEnvironment, what the CLI
// uses) passes with a listed public key: heartbeat, list, a streamed chat.
// Ollama sees neither the signature nor ts (issue 13, item 7).
func TestOllamaClientSignedRequests(t *testing.T) {
	line := newOllamaHome(t)
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen2.5"))
	gw := startGateway(t, func(c *config.Config) {
		c.APIPublicKeys = []config.PublicKey{{PublicKey: line, KeyPolicy: config.KeyPolicy{Name: "alice"}}}
	}, fake.URL)
	t.Setenv("OLLAMA_HOST", gw.URL)
	client, err := api.ClientFromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := client.Heartbeat(ctx); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	list, err := client.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Models) != 2 {
		t.Errorf("List: %d models; want 2", len(list.Models))
	}
	if h := fake.LastHeaders(); h.Get("Authorization") != "" {
		t.Errorf("backend saw Authorization %q", h.Get("Authorization"))
	}
	var reply strings.Builder
	var last api.ChatResponse
	err = client.Chat(ctx, &api.ChatRequest{
		Model:    "llama3.2",
		Messages: []api.Message{{Role: "user", Content: "why is the sky blue?"}},
	}, func(r api.ChatResponse) error {
		reply.WriteString(r.Message.Content)
		last = r
		return nil
	})
	if err != nil || !last.Done || reply.String() != "The sky is blue." {
		t.Fatalf("Chat = %q, done %v, %v; want the whole reply", reply.String(), last.Done, err)
	}
	// The plain-key path is unchanged beside it.
	if resp, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+testKey, nil); resp.StatusCode != 200 {
		t.Errorf("plain key: %d; want 200", resp.StatusCode)
	}
}

// TestSignedKeyPolicy: a publicKey entry's policy holds for the signed
// identity as for a secret key: Ollama's own client with models
// ["llama3.2"] chats with llama3.2, gets 403 for another model and lists
// only its models; an expired signed identity gets 401 "key expired".
func TestSignedKeyPolicy(t *testing.T) {
	line := newOllamaHome(t)
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen2.5"))
	gw := startGateway(t, func(c *config.Config) {
		c.APIPublicKeys = []config.PublicKey{{PublicKey: line,
			KeyPolicy: config.KeyPolicy{Name: "alice", Models: []string{"llama3.2"}}}}
	}, fake.URL)
	t.Setenv("OLLAMA_HOST", gw.URL)
	client, err := api.ClientFromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	list, err := client.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	if len(names) != 1 || !strings.HasPrefix(names[0], "llama3.2") {
		t.Errorf("List = %q; want llama3.2 only", names)
	}
	chat := func(model string) error {
		return client.Chat(ctx, &api.ChatRequest{Model: model, Messages: []api.Message{{Role: "user", Content: "hi"}}},
			func(api.ChatResponse) error { return nil })
	}
	if err := chat("llama3.2"); err != nil {
		t.Errorf("Chat llama3.2: %v; want it allowed", err)
	}
	before := fake.RequestsTo("/api/chat")
	var se api.StatusError
	if err := chat("qwen2.5"); !errors.As(err, &se) || se.StatusCode != 403 ||
		se.ErrorMessage != "model 'qwen2.5' is not allowed for this key" {
		t.Errorf("Chat qwen2.5: %v; want 403 model 'qwen2.5' is not allowed for this key", err)
	}
	if n := fake.RequestsTo("/api/chat"); n != before {
		t.Errorf("backend got %d more chats; want none for the refused model", n-before)
	}

	expired := startGateway(t, func(c *config.Config) {
		c.APIPublicKeys = []config.PublicKey{{PublicKey: line, KeyPolicy: config.KeyPolicy{ExpiresAt: "2020-01-01T00:00:00Z"}}}
	}, fake.URL)
	if resp, body := signedDo(t, expired.URL, "GET", "/api/tags", time.Now().Unix(), nil); resp.StatusCode != 401 || errorOf(t, body) != "key expired" {
		t.Errorf("expired signed key: %d %s; want 401 key expired", resp.StatusCode, body)
	}
}

// TestSignedRequestRefused: a wrong signature, an unlisted key, a stale or
// missing ts get 401 with Ollama's error shape, before any backend.
func TestSignedRequestRefused(t *testing.T) {
	line := newOllamaHome(t)
	fake := ollamatest.New(t)
	listed := func(c *config.Config) { c.APIPublicKeys = []config.PublicKey{{PublicKey: line}} }
	gw := startGateway(t, listed, fake.URL)
	other := config.PublicKey{PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS bob"}
	unlistedGW := startGateway(t, func(c *config.Config) { c.APIPublicKeys = []config.PublicKey{other} }, fake.URL)
	now := time.Now().Unix()
	tests := []struct {
		name   string
		gw     string
		ts     int64
		tamper func(*http.Request)
		want   string
	}{
		{name: "wrong signature", gw: gw.URL, ts: now, tamper: func(r *http.Request) {
			h := []byte(r.Header.Get("Authorization"))
			i := len(h) - 10 // inside the signature
			if h[i] == 'A' {
				h[i] = 'B'
			} else {
				h[i] = 'A'
			}
			r.Header.Set("Authorization", string(h))
		}, want: "invalid signature"},
		{name: "signed for another path", gw: gw.URL, ts: now, tamper: func(r *http.Request) { r.URL.Path = "/api/ps" },
			want: "invalid signature"},
		{name: "unlisted key", gw: unlistedGW.URL, ts: now, want: "public key not listed in apiKeys or adminKeys"},
		{name: "stale ts", gw: gw.URL, ts: now - 6*60, want: "signed request's ts is too far from the gateway's clock"},
		{name: "no ts", gw: gw.URL, ts: now, tamper: func(r *http.Request) { r.URL.RawQuery = "" },
			want: "signed request needs exactly one ts=<unix seconds> query parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := signedDo(t, tt.gw, "GET", "/api/tags", tt.ts, tt.tamper)
			if resp.StatusCode != 401 || !strings.HasPrefix(errorOf(t, body), tt.want) {
				t.Errorf("%d %s; want 401 %q", resp.StatusCode, body, tt.want)
			}
		})
	}
	if n := fake.RequestsTo("/api/tags"); n != 0 {
		t.Errorf("backend got %d requests; want none", n)
	}
	// Ollama's client reports the 401 as an AuthorizationError.
	t.Setenv("OLLAMA_HOST", unlistedGW.URL)
	client, _ := api.ClientFromEnvironment()
	var ae api.AuthorizationError
	if _, err := client.List(context.Background()); !errors.As(err, &ae) || ae.StatusCode != 401 {
		t.Errorf("List with an unlisted key: %v; want a 401 AuthorizationError", err)
	}
}

// TestSignedRequestStripped: the backend gets the request without the
// signature and without ts, other query parameters kept.
func TestSignedRequestStripped(t *testing.T) {
	line := newOllamaHome(t)
	var mu sync.Mutex
	var gotQuery, gotAuth string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotQuery, gotAuth = r.URL.RawQuery, r.Header.Get("Authorization")
		mu.Unlock()
		_, _ = io.WriteString(w, `{"models":[]}`)
	}))
	t.Cleanup(backend.Close)
	gw := startGateway(t, func(c *config.Config) { c.APIPublicKeys = []config.PublicKey{{PublicKey: line}} }, backend.URL)
	for _, tt := range []struct{ extra, want string }{{"", ""}, {"&x=1", "x=1"}} {
		resp, body := signedDo(t, gw.URL, "GET", "/api/tags", time.Now().Unix(), func(r *http.Request) { r.URL.RawQuery += tt.extra })
		mu.Lock()
		q, a := gotQuery, gotAuth
		mu.Unlock()
		if resp.StatusCode != 200 || q != tt.want || a != "" {
			t.Errorf("extra %q: %d %s, backend query %q, Authorization %q; want 200, %q, none", tt.extra, resp.StatusCode, body, q, a, tt.want)
		}
	}
}

// TestSignedAdminScope: a public key listed in adminKeys reaches the admin
// endpoints; one listed in apiKeys only gets 403.
func TestSignedAdminScope(t *testing.T) {
	line := newOllamaHome(t)
	fake := ollamatest.New(t)
	for _, tt := range []struct {
		name  string
		admin bool
	}{{"admin", true}, {"api only", false}} {
		t.Run(tt.name, func(t *testing.T) {
			gw := startGateway(t, func(c *config.Config) {
				if tt.admin {
					c.AdminPublicKeys = []config.PublicKey{{PublicKey: line}}
				} else {
					c.APIPublicKeys = []config.PublicKey{{PublicKey: line}}
					c.AdminKeys = config.Keys("admin-key-0123456789abcdef")
				}
			}, fake.URL)
			// /config/reload answers 503 here (no file): anything but 401
			// and 403 passed the admin check.
			resp, body := signedDo(t, gw.URL, "POST", "/config/reload", time.Now().Unix(), nil)
			if passed := resp.StatusCode != 401 && resp.StatusCode != 403; passed != tt.admin {
				t.Errorf("POST /config/reload: %d %s; want admitted %v", resp.StatusCode, body, tt.admin)
			}
		})
	}
}

// TestAuthenticatePlainKeyNoAllocs: with public keys configured, a plain
// key still authenticates without allocating.
func TestAuthenticatePlainKeyNoAllocs(t *testing.T) {
	cfg := config.Default()
	cfg.OllamaAddresses = []string{"http://127.0.0.1:1"}
	cfg.APIKeys = config.Keys(testKey)
	cfg.APIPublicKeys = []config.PublicKey{{PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS bob"}}
	p, err := newPolicy(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	var g Gateway
	var ctx fasthttp.RequestCtx
	var r request
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Request.Header.Set("Authorization", "Bearer "+testKey)
		r.key = nil
		if !g.authenticate(&ctx, p, &r) {
			t.Fatal("plain key refused")
		}
	})
	if allocs != 0 {
		t.Errorf("authenticate with a plain key: %v allocations; want 0", allocs)
	}
}

// TestRevokePublicKey: DELETE /config/keys/<id> with the id of a publicKey
// entry (the first 16 hex of the SHA-256 of its wire format) removes it
// from the file, and its signed requests are refused at once.
func TestRevokePublicKey(t *testing.T) {
	line := newOllamaHome(t)
	fake := ollamatest.New(t)
	path := filepath.Join(t.TempDir(), "config.json")
	doc := `{"ollamaAddresses": ["` + fake.URL + `"], "logging": false,
  "apiKeys": ["` + testKey + `", {"publicKey": "` + line + `", "name": "alice"}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw := serve(t, listen(t), loaded, nil, WithConfigPath(path))
	if resp, body := signedDo(t, gw.URL, "GET", "/api/tags", time.Now().Unix(), nil); resp.StatusCode != 200 {
		t.Fatalf("listed key: %d %s; want 200", resp.StatusCode, body)
	}
	id := config.KeyID(loaded.APIPublicKeys[0].Fingerprint())
	if resp, body := do(t, gw.URL, "DELETE", "/config/keys/"+id, "Bearer "+testKey, nil); resp.StatusCode != 200 || body != `{"removed":1}` {
		t.Fatalf("revoke: %d %s; want 200 {\"removed\":1}", resp.StatusCode, body)
	}
	if resp, body := signedDo(t, gw.URL, "GET", "/api/tags", time.Now().Unix(), nil); resp.StatusCode != 401 {
		t.Errorf("revoked key: %d %s; want 401", resp.StatusCode, body)
	}
	want := `{"ollamaAddresses": ["` + fake.URL + `"], "logging": false,
  "apiKeys": ["` + testKey + `"]}`
	if data, _ := os.ReadFile(path); string(data) != want {
		t.Errorf("file after revoke:\n%s\nwant:\n%s", data, want)
	}
}
