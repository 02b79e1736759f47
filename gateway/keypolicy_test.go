package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

const (
	teamKey  = "team-key-0123456789abcdef"
	adminKey = "admin-key-0123456789abcdef"
)

// call sends one request with key as bearer and returns status and body.
func call(t *testing.T, gwURL, method, path, key, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, gwURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := clientWithKey("Bearer " + key).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// policyKeys is a config with a plain string key, a key restricted to
// models (an object entry) and an admin key, mixed in one file.
func policyKeys(c *config.Config) {
	c.APIKeys = []config.KeyEntry{{Key: testKey},
		{Key: teamKey, KeyPolicy: config.KeyPolicy{Name: "team-a", Models: []string{"llama3.2", "qwen2.5:*"}}}}
	c.AdminKeys = config.Keys(adminKey)
}

// TestModelAllowlist: a key restricted to models may name only those, on
// native and OpenAI routes, as Ollama resolves names; others get 403
// before any backend sees them, and a body whose model cannot be read is
// refused. A plain string key in the same list is unrestricted.
func TestModelAllowlist(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen2.5:7b", "mistral"))
	gw := startGateway(t, policyKeys, fake.URL)
	tests := []struct {
		name, method, path, key, body string
		hdr                           []string
		want                          int
		wantErr                       string
	}{
		{"allowed native", "POST", "/api/chat", teamKey, `{"model":"llama3.2","stream":false,"messages":[]}`, nil, 200, ""},
		{"allowed other spelling", "POST", "/api/generate", teamKey, `{"model":"Llama3.2:Latest","stream":false,"prompt":"hi"}`, nil, 200, ""},
		{"allowed by tag pattern", "POST", "/api/chat", teamKey, `{"model":"qwen2.5:7b","stream":false,"messages":[]}`, nil, 200, ""},
		{"allowed OpenAI", "POST", "/v1/chat/completions", teamKey, `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, nil, 200, ""},
		{"refused native", "POST", "/api/chat", teamKey, `{"model":"mistral","messages":[]}`, nil, 403, "model 'mistral' is not allowed for this key"},
		{"refused show by name", "POST", "/api/show", teamKey, `{"name":"mistral"}`, nil, 403, "model 'mistral' is not allowed for this key"},
		{"refused OpenAI", "POST", "/v1/chat/completions", teamKey, `{"model":"mistral","messages":[]}`, nil, 403, "model 'mistral' is not allowed for this key"},
		{"refused OpenAI model path", "GET", "/v1/models/mistral", teamKey, "", nil, 403, "model 'mistral' is not allowed for this key"},
		{"refused other tag", "POST", "/api/chat", teamKey, `{"model":"llama3.2:1b","messages":[]}`, nil, 403, "model 'llama3.2:1b' is not allowed for this key"},
		{"malformed body", "POST", "/api/chat", teamKey, `{"model":"llama3.2"`, nil, 400, ""},
		{"no model", "POST", "/api/chat", teamKey, `{"messages":[]}`, nil, 400, ""},
		{"empty body", "POST", "/api/embed", teamKey, ``, nil, 400, ""},
		{"compressed body", "POST", "/api/chat", teamKey, `{"model":"llama3.2"}`, []string{"Content-Encoding", "gzip"}, 400, ""},
		{"plain key unrestricted", "POST", "/api/chat", testKey, `{"model":"mistral","stream":false,"messages":[]}`, nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fake.RequestsTo(tt.path)
			status, body := call(t, gw.URL, tt.method, tt.path, tt.key, tt.body, tt.hdr...)
			if status != tt.want {
				t.Fatalf("status = %d (%s); want %d", status, body, tt.want)
			}
			if tt.want == 200 {
				return
			}
			if got := fake.RequestsTo(tt.path) - before; got != 0 {
				t.Errorf("the backend saw %d requests; want 0", got)
			}
			if msg := errorOf(t, body); tt.wantErr != "" && msg != tt.wantErr {
				t.Errorf("error = %q; want %q", msg, tt.wantErr)
			}
		})
	}
}

// listedNames returns the model names of a listing.
func listedNames(t *testing.T, body string) []string {
	t.Helper()
	var l struct {
		Models []struct{ Name string } `json:"models"`
		Data   []struct{ ID string }   `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatalf("listing %q: %v", body, err)
	}
	var names []string
	for _, m := range l.Models {
		names = append(names, m.Name)
	}
	for _, m := range l.Data {
		names = append(names, m.ID)
	}
	slices.Sort(names)
	return names
}

// TestModelListingsFiltered: a restricted key sees only its models in
// /api/tags, /api/ps and /v1/models, passed through from one backend or
// merged from several; a plain key sees them all.
func TestModelListingsFiltered(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen2.5:7b"))
	other := ollamatest.New(t, ollamatest.WithModels("mistral"))
	single := ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen2.5:7b", "mistral"))
	for _, backends := range [][]string{{single.URL}, {fake.URL, other.URL}} {
		gw := startGateway(t, policyKeys, backends...)
		if len(backends) > 1 {
			eventually(t, "both model lists known", func() bool {
				_, body := call(t, gw.URL, "GET", "/api/tags", testKey, "")
				return strings.Count(body, `"name"`) == 3
			})
		}
		testListings(t, gw)
	}
}

func testListings(t *testing.T, gw *testGateway) {
	for _, path := range []string{"/api/tags", "/api/ps", "/v1/models"} {
		t.Run(path, func(t *testing.T) {
			status, body := call(t, gw.URL, "GET", path, teamKey, "")
			if got, want := listedNames(t, body), []string{"llama3.2:latest", "qwen2.5:7b"}; status != 200 || !slices.Equal(got, want) {
				t.Errorf("team key: %d %v; want 200 %v", status, got, want)
			}
			status, body = call(t, gw.URL, "GET", path, testKey, "")
			if got := listedNames(t, body); status != 200 || len(got) != 3 {
				t.Errorf("plain key: %d %v; want 200 and all 3 models", status, got)
			}
		})
	}
}

func TestFilterModelList(t *testing.T) {
	keep := func(n string) bool { return n == "a:latest" }
	tests := []struct{ in, member, want string }{
		{`{"models":[{"name":"a:latest","size":1},{"name":"b:latest"}]}`, "models", `{"models":[{"name":"a:latest","size":1}]}`},
		{`{"models":[{"model":"a:latest"},{"model":"b"}]}`, "models", `{"models":[{"model":"a:latest"}]}`},
		{`{"object":"list","data":[{"id":"b"},{"id":"a:latest"}]}`, "data", `{"data":[{"id":"a:latest"}],"object":"list"}`},
		{`{"models":null}`, "models", `{"models":null}`},
		{`{"models":[]}`, "models", `{"models":[]}`},
	}
	for _, tt := range tests {
		got, err := FilterModelList([]byte(tt.in), tt.member, keep)
		if err != nil || string(got) != tt.want {
			t.Errorf("FilterModelList(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"models":{}}`, `{"models":[1]}`, `{"models":[`} {
		if _, err := FilterModelList([]byte(bad), "models", keep); err == nil {
			t.Errorf("FilterModelList(%q) = nil error; want one", bad)
		}
	}
}

// TestKeyExpiry: a key past its expiresAt gets 401 "key expired"; one
// before it passes.
func TestKeyExpiry(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = []config.KeyEntry{{Key: testKey, KeyPolicy: config.KeyPolicy{ExpiresAt: "2099-01-01T00:00:00Z"}},
			{Key: teamKey, KeyPolicy: config.KeyPolicy{Name: "old", ExpiresAt: "2020-01-01T00:00:00Z"}}}
	}, fake.URL)
	if status, body := call(t, gw.URL, "GET", "/api/version", testKey, ""); status != 200 {
		t.Errorf("unexpired key: %d %s; want 200", status, body)
	}
	status, body := call(t, gw.URL, "GET", "/api/version", teamKey, "")
	if status != 401 || errorOf(t, body) != "key expired" {
		t.Errorf("expired key: %d %s; want 401 key expired", status, body)
	}
}

// TestKeyOwnRate: a key's own rateLimit applies although rateLimit is not
// enabled, with the X-RateLimit-* headers.
func TestKeyOwnRate(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = []config.KeyEntry{{Key: testKey},
			{Key: teamKey, KeyPolicy: config.KeyPolicy{RateLimit: &config.RateOverride{MaxRequests: 2, TimeWindowSeconds: 3600}}}}
	}, fake.URL)
	var got []int
	for range 3 {
		s, _ := call(t, gw.URL, "GET", "/api/version", teamKey, "")
		got = append(got, s)
	}
	if want := []int{200, 200, 429}; !slices.Equal(got, want) {
		t.Errorf("statuses of the rated key = %v; want %v", got, want)
	}
	for range 3 {
		if s, _ := call(t, gw.URL, "GET", "/api/version", testKey, ""); s != 200 {
			t.Fatalf("the plain key got %d; want 200 (rate limiting is off)", s)
		}
	}
}

// TestModelManagementAdminOnly: pull, push, create, copy, delete and blob
// uploads need an admin key by default (403 naming the reason, nothing
// reaches a backend); security.modelManagement "any" lets a plain key.
func TestModelManagementAdminOnly(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, policyKeys, fake.URL)
	reqs := []struct{ method, path, body string }{
		{"POST", "/api/pull", `{"model":"llama3.2","stream":false}`},
		{"POST", "/api/push", `{"model":"me/llama3.2"}`},
		{"POST", "/api/create", `{"model":"x","from":"llama3.2"}`},
		{"POST", "/api/copy", `{"source":"llama3.2","destination":"y"}`},
		{"DELETE", "/api/delete", `{"model":"llama3.2"}`},
		{"POST", "/api/blobs/sha256:" + strings.Repeat("0", 64), `blob`},
	}
	for _, r := range reqs {
		before := fake.RequestsTo(r.path)
		status, body := call(t, gw.URL, r.method, r.path, testKey, r.body)
		if status != 403 || !strings.Contains(errorOf(t, body), "needs an admin key") {
			t.Errorf("plain key %s %s: %d %s; want 403 needing an admin key", r.method, r.path, status, body)
		}
		if fake.RequestsTo(r.path) != before {
			t.Errorf("plain key %s %s reached the backend", r.method, r.path)
		}
	}
	if status, body := call(t, gw.URL, "POST", "/api/pull", adminKey, reqs[0].body); status != 200 {
		t.Errorf("admin key pull: %d %s; want 200", status, body)
	}

	open := startGateway(t, func(c *config.Config) { policyKeys(c); plainKeysManageModels(c) }, fake.URL)
	if status, body := call(t, open.URL, "POST", "/api/pull", testKey, reqs[0].body); status != 200 {
		t.Errorf(`with modelManagement "any", plain key pull: %d %s; want 200`, status, body)
	}
	// A restricted key still names only its models.
	for _, r := range []struct{ path, body string }{
		{"/api/pull", `{"model":"mistral"}`}, {"/api/create", `{"model":"mistral","from":"llama3.2"}`},
		// The other model a request names: the base of a create, the
		// destination of a copy.
		{"/api/create", `{"model":"qwen2.5:mine","from":"mistral"}`},
		{"/api/copy", `{"source":"llama3.2","destination":"mistral"}`},
	} {
		if status, body := call(t, open.URL, "POST", r.path, teamKey, r.body); status != 403 {
			t.Errorf("restricted key %s %s: %d %s; want 403", r.path, r.body, status, body)
		}
	}
	if status, body := call(t, open.URL, "POST", "/api/copy", teamKey, `{"source":"llama3.2","destination":"qwen2.5:copy"}`); status != 200 {
		t.Errorf("restricted key copying between its models: %d %s; want 200", status, body)
	}
}

// TestKeyPolicyReloadLive: a reload that changes a key's policy applies to
// the very next request.
func TestKeyPolicyReloadLive(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2", "mistral"))
	cfg := baseConfig(fake.URL)
	cfg.APIKeys = []config.KeyEntry{{Key: testKey, KeyPolicy: config.KeyPolicy{Name: "team", Models: []string{"llama3.2"}}}}
	gw := startFileGateway(t, cfg)
	chat := `{"model":"mistral","stream":false,"messages":[]}`
	if status, _ := call(t, gw.URL, "POST", "/api/chat", testKey, chat); status != 403 {
		t.Fatalf("before the reload: %d; want 403", status)
	}
	cfg.APIKeys[0].Models = []string{"mistral"}
	writeConfig(t, gw.path, cfg)
	if _, err := gw.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if status, body := call(t, gw.URL, "POST", "/api/chat", testKey, chat); status != 200 {
		t.Errorf("after the reload: %d %s; want 200", status, body)
	}
	if status, _ := call(t, gw.URL, "POST", "/api/chat", testKey, `{"model":"llama3.2","messages":[]}`); status != 403 {
		t.Errorf("the model taken away: %d; want 403", status)
	}
}

// TestNewKeyWithPolicy: POST /config/new-key with a JSON body saves the
// key as an object entry with that policy, live at once; with
// ?store=digest the entry has "sha256". A bad body is 400 naming the
// field, and no key is made.
func TestNewKeyWithPolicy(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2", "mistral"))
	gw := startFileGateway(t, baseConfig(fake.URL))
	mint := func(query, body string) (int, string, string) {
		t.Helper()
		status, b := call(t, gw.URL, "POST", "/config/new-key"+query, testKey, body)
		var nk struct{ Key, ID string }
		_ = json.Unmarshal([]byte(b), &nk)
		return status, nk.Key, b
	}
	for _, store := range []string{"", "?store=digest"} {
		status, key, body := mint(store, `{"name":"team-b","models":["llama3.2"],"tokens":{"max":1000,"windowSeconds":60},`+
			`"rateLimit":{"maxRequests":100,"timeWindowSeconds":60},"expiresAt":"2099-01-01T00:00:00Z"}`)
		if status != 200 || len(key) != 43 {
			t.Fatalf("new-key%s: %d %s", store, status, body)
		}
		if s, b := call(t, gw.URL, "POST", "/api/chat", key, `{"model":"mistral","messages":[]}`); s != 403 {
			t.Errorf("minted key used another model: %d %s; want 403", s, b)
		}
		if s, b := call(t, gw.URL, "POST", "/api/chat", key, `{"model":"llama3.2","stream":false,"messages":[]}`); s != 200 {
			t.Errorf("minted key on its model: %d %s; want 200", s, b)
		}
		onDisk, err := config.Load(gw.path)
		if err != nil {
			t.Fatal(err)
		}
		e := onDisk.APIKeys[len(onDisk.APIKeys)-1]
		if e.Name != "team-b" || e.Tokens == nil || e.Tokens.Max != 1000 || e.ExpiresAt != "2099-01-01T00:00:00Z" ||
			(store == "" && e.Key != key) || (store != "" && (e.Key != "" || "sha256:"+e.SHA256 != config.DigestEntry(key))) {
			t.Errorf("entry saved for new-key%s = %+v", store, e)
		}
	}
	before, _ := config.Load(gw.path)
	for _, bad := range []struct{ body, want string }{
		{`{"tokens":{"max":0,"windowSeconds":60}}`, "tokens.max: must be > 0"},
		{`{"modles":[]}`, "modles"},
		{`{"key":"chosen-by-client"}`, "key"},
		{`{"expiresAt":"soon"}`, "expiresAt"},
	} {
		status, _, body := mint("", bad.body)
		if status != 400 || !strings.Contains(errorOf(t, body), bad.want) {
			t.Errorf("new-key with %s: %d %s; want 400 naming %q", bad.body, status, body, bad.want)
		}
	}
	if after, _ := config.Load(gw.path); len(after.APIKeys) != len(before.APIKeys) {
		t.Errorf("a refused new-key added a key")
	}
}
