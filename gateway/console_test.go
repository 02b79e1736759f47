package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

const consoleAdmin = "console-admin-key-abcdef0123"

// consoleGateway serves a file-backed gateway with the console on, in
// front of one fake backend, with cfg adjusted by mutate (may be nil).
func consoleGateway(t *testing.T, mutate func(*config.Config)) (*fileGateway, *ollamatest.Server) {
	t.Helper()
	fake := ollamatest.New(t)
	cfg := baseConfig(fake.URL)
	cfg.AdminKeys = config.Keys(consoleAdmin)
	cfg.Console.Enabled = true
	if mutate != nil {
		mutate(&cfg)
	}
	return startFileGateway(t, cfg), fake
}

// consoleDo sends one request to the console, with the session cookie and
// CSRF token when not empty, and returns the answer with its body read.
func consoleDo(t *testing.T, method, u, cookie, csrf string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: consoleCookie, Value: cookie})
	}
	if csrf != "" {
		req.Header.Set(csrfHeader, csrf)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := clientWithKey("")
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs in with key and returns the session cookie and CSRF token.
func signIn(t *testing.T, gwURL, key string) (*http.Cookie, string) {
	t.Helper()
	resp, body := consoleDo(t, "POST", gwURL+"/ui/session", "", "", url.Values{"key": {key}}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d %s; want 200", resp.StatusCode, body)
	}
	var ans struct{ CSRF string }
	if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.CSRF == "" {
		t.Fatalf("sign-in answer %s: %v", body, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == consoleCookie {
			return c, ans.CSRF
		}
	}
	t.Fatalf("sign-in set no %s cookie: %v", consoleCookie, resp.Header)
	return nil, ""
}

// TestConsolePage: the page and its assets carry a strict CSP and refuse
// framing; the page holds no data; the bare path redirects to the slash.
func TestConsolePage(t *testing.T) {
	gw, fake := consoleGateway(t, nil)
	for _, p := range []string{"/ui/", "/ui/console.js", "/ui/console.css", "/ui/state"} {
		resp, body := consoleDo(t, "GET", gw.URL+p, "", "", nil, nil)
		if got := resp.Header.Get("Content-Security-Policy"); got != consoleCSP {
			t.Errorf("GET %s: CSP %q; want %q", p, got, consoleCSP)
		}
		if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("GET %s: X-Frame-Options %q; want DENY", p, got)
		}
		if strings.Contains(body, fake.URL) {
			t.Errorf("GET %s without a session shows a backend: %s", p, body)
		}
	}
	if resp, body := consoleDo(t, "GET", gw.URL+"/ui/state", "", "", nil, nil); resp.StatusCode != 401 {
		t.Errorf("GET /ui/state without a session: %d %s; want 401", resp.StatusCode, body)
	}
	resp, _ := consoleDo(t, "GET", gw.URL+"/ui", "", "", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/ui/") {
		t.Errorf("GET /ui: %d Location %q; want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := consoleDo(t, "GET", gw.URL+"/ui/", "", "", nil, nil)
	if strings.Contains(page, "<script>") || strings.Contains(page, " style=") || strings.Contains(page, "http") {
		t.Errorf("the page has inline script or style, or an outside URL:\n%s", page)
	}
}

// TestConsoleOffByDefault: without console.enabled its path is Ollama's,
// behind the API key like any other.
func TestConsoleOffByDefault(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	resp, body := consoleDo(t, "GET", gw.URL+"/ui/", "", "", nil, nil)
	if resp.StatusCode != 401 || strings.Contains(body, "<html") {
		t.Errorf("GET /ui/ with the console off: %d %s; want the API's 401", resp.StatusCode, body)
	}
}

// TestConsoleSignIn: only an admin key gets a session; the cookie is
// HttpOnly, SameSite=Strict, scoped to the console, expiring, and is not
// the key.
func TestConsoleSignIn(t *testing.T) {
	gw, _ := consoleGateway(t, nil)
	for _, tt := range []struct {
		name, key string
		want      string
	}{
		{"no key", "", "enter an admin key"},
		{"wrong key", "nope", "invalid key"},
		{"plain key", testKey, "not an admin key"},
	} {
		resp, body := consoleDo(t, "POST", gw.URL+"/ui/session", "", "", url.Values{"key": {tt.key}}, nil)
		if resp.StatusCode != 401 || !strings.Contains(body, tt.want) || len(resp.Cookies()) != 0 {
			t.Errorf("%s: %d %s cookies %v; want 401 %q and no cookie", tt.name, resp.StatusCode, body, resp.Cookies(), tt.want)
		}
	}
	c, csrf := signIn(t, gw.URL, consoleAdmin)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui" || c.MaxAge != 480*60 || c.Secure {
		t.Errorf("cookie %+v; want HttpOnly, SameSite=Strict, Path=/ui, Max-Age=28800, not Secure over plain HTTP", c)
	}
	if strings.Contains(c.Value, consoleAdmin) || strings.Contains(c.Value, hexDigest(consoleAdmin)) {
		t.Errorf("the cookie holds the key or its digest: %q", c.Value)
	}
	resp, body := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"csrf":"`+csrf+`"`) {
		t.Fatalf("state: %d %s; want 200 with the CSRF token", resp.StatusCode, body)
	}
	if strings.Contains(body, consoleAdmin) || strings.Contains(body, testKey) {
		t.Errorf("the state shows a key: %s", body)
	}
	// Sign out ends the session.
	if resp, body := consoleDo(t, "DELETE", gw.URL+"/ui/session", c.Value, csrf, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("sign out: %d %s", resp.StatusCode, body)
	}
	if resp, _ := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil); resp.StatusCode != 401 {
		t.Errorf("state after sign-out: %d; want 401", resp.StatusCode)
	}
}

// TestConsoleSecureCookie: behind a trusted proxy saying https the cookie
// is Secure; the header from anyone else changes nothing.
func TestConsoleSecureCookie(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []string
		want    bool
	}{
		{"trusted proxy", []string{"127.0.0.1"}, true},
		{"untrusted", nil, false},
	} {
		gw, _ := consoleGateway(t, func(c *config.Config) { c.Security.TrustedProxies = tt.trusted })
		resp, body := consoleDo(t, "POST", gw.URL+"/ui/session", "", "", url.Values{"key": {consoleAdmin}},
			map[string]string{"X-Forwarded-Proto": "https"})
		if resp.StatusCode != 200 || len(resp.Cookies()) != 1 {
			t.Fatalf("%s: sign-in %d %s", tt.name, resp.StatusCode, body)
		}
		if got := resp.Cookies()[0].Secure; got != tt.want {
			t.Errorf("%s: Secure = %v; want %v", tt.name, got, tt.want)
		}
	}
}

// TestConsoleSignInThrottled: failed sign-ins count toward
// rateLimit.authFailuresPerMinute of the client's address.
func TestConsoleSignInThrottled(t *testing.T) {
	gw, _ := consoleGateway(t, func(c *config.Config) { c.RateLimit.AuthFailuresPerMinute = 2 })
	for i, want := range []int{401, 401, 429} {
		resp, body := consoleDo(t, "POST", gw.URL+"/ui/session", "", "", url.Values{"key": {testKey}}, nil)
		if resp.StatusCode != want {
			t.Errorf("attempt %d: %d %s; want %d", i+1, resp.StatusCode, body, want)
		}
	}
	// The API's failures share the budget.
	if resp, _ := consoleDo(t, "GET", gw.URL+"/api/tags", "", "", nil, nil); resp.StatusCode != 429 {
		t.Errorf("API after console failures: %d; want 429", resp.StatusCode)
	}
}

// TestConsoleActions: actions need the session's CSRF token; with it they
// reload, mint and revoke through the gateway's own functions.
func TestConsoleActions(t *testing.T) {
	gw, _ := consoleGateway(t, nil)
	c, csrf := signIn(t, gw.URL, consoleAdmin)
	for _, tok := range []string{"", "wrong"} {
		for _, a := range []struct{ method, path string }{{"POST", "/ui/reload"}, {"POST", "/ui/keys"}, {"DELETE", "/ui/keys/x"}, {"DELETE", "/ui/session"}} {
			if resp, body := consoleDo(t, a.method, gw.URL+a.path, c.Value, tok, nil, nil); resp.StatusCode != 403 {
				t.Errorf("%s %s with CSRF %q: %d %s; want 403", a.method, a.path, tok, resp.StatusCode, body)
			}
		}
	}
	if resp, body := consoleDo(t, "POST", gw.URL+"/ui/reload", c.Value, csrf, nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"apiKeys":2`) {
		t.Errorf("reload: %d %s; want 200 with apiKeys 2", resp.StatusCode, body)
	}
	resp, body := consoleDo(t, "POST", gw.URL+"/ui/keys", c.Value, csrf, nil, nil)
	var minted struct{ Key, ID string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &minted) != nil || minted.Key == "" {
		t.Fatalf("mint: %d %s", resp.StatusCode, body)
	}
	if resp, _ := consoleDo(t, "GET", gw.URL+"/api/tags", "", "", nil, map[string]string{"Authorization": "Bearer " + minted.Key}); resp.StatusCode != 200 {
		t.Errorf("the minted key: %d; want 200", resp.StatusCode)
	}
	_, state := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil)
	if !strings.Contains(state, `"id":"`+minted.ID+`"`) || !strings.Contains(state, `"ok":true`) {
		t.Errorf("state after mint and reload lacks the key or the reload: %s", state)
	}
	if resp, body := consoleDo(t, "DELETE", gw.URL+"/ui/keys/"+minted.ID, c.Value, csrf, nil, nil); resp.StatusCode != 200 || body != `{"removed":1}` {
		t.Errorf("revoke: %d %s; want 200 removed 1", resp.StatusCode, body)
	}
	if resp, _ := consoleDo(t, "GET", gw.URL+"/api/tags", "", "", nil, map[string]string{"Authorization": "Bearer " + minted.Key}); resp.StatusCode != 401 {
		t.Errorf("the revoked key: %d; want 401", resp.StatusCode)
	}
	if resp, body := consoleDo(t, "DELETE", gw.URL+"/ui/keys/"+minted.ID, c.Value, csrf, nil, nil); resp.StatusCode != 404 {
		t.Errorf("revoke again: %d %s; want 404", resp.StatusCode, body)
	}
	adminID := config.KeyID(config.KeyDigest(consoleAdmin))
	if resp, body := consoleDo(t, "DELETE", gw.URL+"/ui/keys/"+adminID, c.Value, csrf, nil, nil); resp.StatusCode != 409 {
		t.Errorf("revoke the last admin key: %d %s; want 409", resp.StatusCode, body)
	}
}

// TestConsoleSessionEndsWithKey: a session lasts only while its key is an
// admin key of the running configuration.
func TestConsoleSessionEndsWithKey(t *testing.T) {
	const other = "console-other-admin-0123456789"
	gw, _ := consoleGateway(t, func(c *config.Config) { c.AdminKeys = append(c.AdminKeys, config.Keys(other)...) })
	c, _ := signIn(t, gw.URL, other)
	if _, err := gw.gw.RevokeKey(config.KeyID(config.KeyDigest(other)), false); err != nil {
		t.Fatal(err)
	}
	if resp, body := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil); resp.StatusCode != 401 {
		t.Errorf("state after the key was revoked: %d %s; want 401", resp.StatusCode, body)
	}
}

// TestConsoleTraffic: the ring counts the gateway's requests (not the
// console's own), and backend errors are noted.
func TestConsoleTraffic(t *testing.T) {
	gw, fake := consoleGateway(t, func(c *config.Config) { c.Logging = false })
	for i := 0; i < 3; i++ {
		if err := generate(gw.URL, "llama3.2"); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := signIn(t, gw.URL, consoleAdmin)
	fake.Close()
	_ = generate(gw.URL, "llama3.2") // refused by the backend: a 502, noted
	_, body := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil)
	var st struct {
		Traffic struct {
			Points []trafficPoint
			Models []modelTraffic
		}
		Errors []backendErrorNote
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("state %s: %v", body, err)
	}
	var req, errs, tokens int64
	for _, p := range st.Traffic.Points {
		req, errs, tokens = req+p.Requests, errs+p.Errors, tokens+p.Tokens
	}
	if req != 4 || errs != 1 || tokens != 3*5 {
		t.Errorf("traffic: %d requests, %d errors, %d tokens; want 4, 1, 15", req, errs, tokens)
	}
	// By the model the answers named: the refused request names none.
	if want := []modelTraffic{{"llama3.2", 3}}; !reflect.DeepEqual(st.Traffic.Models, want) {
		t.Errorf("traffic by model = %v; want %v", st.Traffic.Models, want)
	}
	connect := false
	for _, e := range st.Errors {
		connect = connect || e.Backend == fake.URL && e.Kind == "connect"
	}
	if !connect {
		t.Errorf("errors = %+v; want a connect error of %s", st.Errors, fake.URL)
	}
}

// TestSessionsBounded: the store holds at most maxConsoleSessions; a new
// sign-in beyond it drops the session closest to expiry, and an expired
// session is gone.
func TestSessionsBounded(t *testing.T) {
	var s sessions
	now := time.Unix(1_800_000_000, 0)
	first, _, err := s.create([32]byte{1}, "k", now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < maxConsoleSessions; i++ {
		if _, _, err := s.create([32]byte{1}, "k", now, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	last, _, _ := s.create([32]byte{1}, "k", now, time.Hour)
	if got := s.len(); got != maxConsoleSessions {
		t.Errorf("sessions held = %d; want %d", got, maxConsoleSessions)
	}
	if s.get(first, now) != nil {
		t.Errorf("the session closest to expiry survived a full store")
	}
	if s.get(last, now) == nil {
		t.Errorf("the newest session is missing")
	}
	if s.get(last, now.Add(time.Hour)) != nil {
		t.Errorf("an expired session is still valid")
	}
}

// generate makes one non-streamed generation through the gateway.
func generate(gwURL, model string) error {
	req, err := http.NewRequest("POST", gwURL+"/api/generate",
		strings.NewReader(`{"model":"`+model+`","prompt":"hi","stream":false}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// TestConsoleStatePolicy: the state shows each key's name and policy, a
// backend's cap and what it has loaded, and the queue.
func TestConsoleStatePolicy(t *testing.T) {
	fakeA := ollamatest.New(t, ollamatest.WithLoaded("llama3.2"))
	fakeB := ollamatest.New(t)
	cfg := baseConfig(fakeA.URL, fakeB.URL)
	cfg.AdminKeys = config.Keys(consoleAdmin)
	cfg.APIKeys = append(cfg.APIKeys, config.KeyEntry{Key: "alice-key-0123456789abcdef", KeyPolicy: config.KeyPolicy{Name: "alice", Models: []string{"llama3.2"}}})
	cfg.Console.Enabled = true
	cfg.LoadBalancer.HealthCheckIntervalInSeconds = 1
	gw := startFileGateway(t, cfg)
	c, _ := signIn(t, gw.URL, consoleAdmin)
	var st consoleState
	eventually(t, "the loaded model in the state", func() bool {
		_, body := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil)
		st = consoleState{}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("state %s: %v", body, err)
		}
		return len(st.Backends) == 2 && len(st.Backends[0].Loaded) == 1
	})
	if got := st.Backends[0].Loaded[0].Name; got != "llama3.2:latest" {
		t.Errorf("loaded = %q; want llama3.2:latest", got)
	}
	if b := st.Backends[0]; b.Cap != cfg.Proxy.MaxConnsPerBackend || b.CapSet || b.Health != "up" || b.Since == 0 {
		t.Errorf("backend = %+v; want up, with a since, cap %d from maxConnsPerBackend", b, cfg.Proxy.MaxConnsPerBackend)
	}
	var alice *consoleKey
	for i := range st.Keys {
		if st.Keys[i].Name == "alice" {
			alice = &st.Keys[i]
		}
	}
	if alice == nil || alice.Admin || !reflect.DeepEqual(alice.Models, []string{"llama3.2"}) {
		t.Errorf("keys = %+v; want alice, API scope, models [llama3.2]", st.Keys)
	}
}

// TestConsoleKeyUsage: the keys table's data holds each key's usage, in
// its budget window and since the start, and when it was last used: the
// figures GET /config/keys reports.
func TestConsoleKeyUsage(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithTokens("a", "b", "c", "d")) // eval_count 4; prompt_eval_count 26
	cfg := baseConfig(fake.URL)
	cfg.AdminKeys = config.Keys(consoleAdmin)
	cfg.APIKeys = append(cfg.APIKeys, config.KeyEntry{Key: teamKey,
		KeyPolicy: config.KeyPolicy{Name: "team-a", Tokens: &config.TokenBudget{Max: 1000, WindowSeconds: 3600}}})
	cfg.Console.Enabled = true
	gw := startFileGateway(t, cfg)
	chat := `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`
	for i := 0; i < 2; i++ {
		if status, body := call(t, gw.URL, "POST", "/api/chat", teamKey, chat); status != 200 {
			t.Fatalf("chat %d: %d %s", i, status, body)
		}
	}
	c, _ := signIn(t, gw.URL, consoleAdmin)
	_, body := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil)
	var st consoleState
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("state %s: %v", body, err)
	}
	byID := map[string]consoleKey{}
	for _, k := range st.Keys {
		byID[k.ID] = k
	}
	team, other := byID[config.KeyID(config.KeyDigest(teamKey))], byID[config.KeyID(config.KeyDigest(testKey))]
	if team.Requests != 2 || team.PromptTokens != 52 || team.CompletionTokens != 8 || team.LastUsed == 0 || team.LastUsed > st.Now {
		t.Errorf("team-a = %+v; want 2 requests, 52 prompt and 8 completion tokens, a last use before now", team)
	}
	if w := team.Window; w == nil || w.Requests != 2 || w.PromptTokens != 52 || w.CompletionTokens != 8 || w.Remaining != 1000-60 {
		t.Errorf("team-a window = %+v; want 2 requests, 52 + 8 tokens, 940 remaining", w)
	}
	if other.Window != nil || other.Requests != 0 || other.LastUsed != 0 {
		t.Errorf("the unused key without a budget = %+v; want no window, no use", other)
	}
}

// TestConsoleHealthChecks: each backend shows how long its last health
// check took, and a failed check is among the recent backend errors.
func TestConsoleHealthChecks(t *testing.T) {
	live, dead := ollamatest.New(t), ollamatest.New(t)
	dead.Close()
	cfg := baseConfig(live.URL, dead.URL)
	cfg.AdminKeys = config.Keys(consoleAdmin)
	cfg.Console.Enabled = true
	cfg.LoadBalancer.HealthCheckIntervalInSeconds = 1
	gw := startFileGateway(t, cfg)
	c, _ := signIn(t, gw.URL, consoleAdmin)
	var st consoleState
	eventually(t, "both backends checked, the dead one's failure noted", func() bool {
		_, body := consoleDo(t, "GET", gw.URL+"/ui/state", c.Value, "", nil, nil)
		st = consoleState{}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("state %s: %v", body, err)
		}
		return len(st.Backends) == 2 && st.Backends[0].CheckMs != nil && st.Backends[1].CheckMs != nil && len(st.Errors) > 0
	})
	for _, b := range st.Backends {
		if *b.CheckMs <= 0 || *b.CheckMs > 10000 {
			t.Errorf("backend %s: last check %v ms; want a positive duration under the timeout", b.Name, *b.CheckMs)
		}
	}
	e := st.Errors[0]
	if e.Backend != st.Backends[1].Name || e.Kind != "health check" || e.Message == "" || e.At == 0 {
		t.Errorf("errors = %+v; want a health check failure of %s first", st.Errors, st.Backends[1].Name)
	}
	for _, e := range st.Errors {
		if e.Backend == st.Backends[0].Name {
			t.Errorf("the live backend has an error: %+v", e)
		}
	}
}
