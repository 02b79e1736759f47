package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// fileGateway is a gateway serving a configuration file.
type fileGateway struct {
	*testGateway
	path string
}

// writeConfig writes cfg to path atomically (as an editor or a ConfigMap
// would: a new file renamed over the old one).
func writeConfig(t testing.TB, path string, cfg config.Config) {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// baseConfig is the test configuration in front of backends.
func baseConfig(backends ...string) config.Config {
	cfg := config.Default()
	cfg.OllamaAddresses = backends
	cfg.APIKeys = config.Keys(testKey)
	cfg.Logging = false
	return cfg
}

// startFileGateway serves cfg from a file in a temporary directory.
func startFileGateway(t testing.TB, cfg config.Config) *fileGateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, path, cfg)
	loaded, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return &fileGateway{testGateway: serve(t, listen(t), loaded, nil, WithConfigPath(path)), path: path}
}

// TestReloadUnderLoad: clients stream chats and make short requests while
// the configuration is reloaded again and again (backends added and
// removed, keys and limits changed): no request fails, no stream is cut.
func TestReloadUnderLoad(t *testing.T) {
	tokens := make([]string, 30)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("t%d ", i)
	}
	want := strings.Join(tokens, "")
	a := ollamatest.New(t, ollamatest.WithTokens(tokens...), ollamatest.WithTokenDelay(2*time.Millisecond))
	b := ollamatest.New(t, ollamatest.WithTokens(tokens...), ollamatest.WithTokenDelay(2*time.Millisecond))
	cfgA, cfgAB := baseConfig(a.URL), baseConfig(a.URL, b.URL)
	cfgAB.APIKeys = append(cfgAB.APIKeys, config.KeyEntry{Key: "another-key-000000000000"})
	cfgAB.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 1 << 20, TimeWindowSeconds: 1, AuthFailuresPerMinute: 10}
	gw := startFileGateway(t, cfgA)

	stop := make(chan struct{})
	var failures atomic.Int64
	var streams, shorts atomic.Int64
	var wg sync.WaitGroup
	fail := func(format string, args ...any) {
		failures.Add(1)
		t.Errorf(format, args...)
	}
	for range 6 { // streaming clients
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := httpClient().Post(gw.URL+"/api/chat", "application/json",
					strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
				if err != nil {
					fail("stream: %v", err)
					return
				}
				var text strings.Builder
				done := false
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					var c struct {
						Message struct{ Content string }
						Done    bool
					}
					if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
						fail("stream line %q: %v", sc.Text(), err)
					}
					text.WriteString(c.Message.Content)
					done = done || c.Done
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || !done || text.String() != want || sc.Err() != nil {
					fail("stream: status %d, done %v, %d bytes of text, err %v", resp.StatusCode, done, text.Len(), sc.Err())
					return
				}
				streams.Add(1)
			}
		})
	}
	for range 4 { // short requests
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, _, body := get(t, gw.URL+"/api/tags")
				if status != 200 {
					fail("short request: %d %s", status, body)
					return
				}
				shorts.Add(1)
			}
		})
	}
	for i := range 40 {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgAB
		}
		writeConfig(t, gw.path, cfg)
		if i%4 == 1 { // through the admin endpoint, as an operator would
			resp, body := do(t, gw.URL, "POST", "/config/reload", "Bearer "+testKey, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("reload %d: %d %s", i, resp.StatusCode, body)
			}
		} else if _, err := gw.gw.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(10 * time.Millisecond) // let traffic run on this configuration
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || streams.Load() == 0 || shorts.Load() == 0 {
		t.Errorf("%d failures, %d streams and %d short requests completed", failures.Load(), streams.Load(), shorts.Load())
	}
	t.Logf("40 reloads under load: %d streams and %d short requests, %d failures", streams.Load(), shorts.Load(), failures.Load())
}

func TestReloadInvalidFileKeepsRunning(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	if err := os.WriteFile(gw.path, []byte(`{"ollamaAddresses":["htp://x"],"apiKeys":["k"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, gw.URL, "POST", "/config/reload", "Bearer "+testKey, nil)
	if resp.StatusCode != 422 || !strings.Contains(errorOf(t, body), `ollamaAddresses[0]: "htp://x" is not an http(s) URL`) {
		t.Errorf("invalid reload: %d %s; want 422 naming the field", resp.StatusCode, body)
	}
	// Still serving the old configuration, old key included.
	if status, _, _ := get(t, gw.URL+"/api/tags"); status != 200 {
		t.Errorf("after a refused reload: %d", status)
	}
	if v := sample(t, scrape(t, gw.URL, "/metrics"), `gateway_config_reloads_total{result="failure"}`); v != 1 {
		t.Errorf("failed reloads counted %v; want 1", v)
	}
}

func TestReloadReply(t *testing.T) {
	a, b := ollamatest.New(t), ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(a.URL))
	cfg := baseConfig(a.URL, b.URL)
	cfg.GatewayAddress = "127.0.0.1:9999"
	cfg.APIKeys = append(cfg.APIKeys, config.KeyEntry{Key: "second-key-00000000000"})
	cfg.Security.DenyIPs = []string{"127.0.0.1"}
	writeConfig(t, gw.path, cfg)
	res, err := gw.gw.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Backends.Added) != 1 || res.Backends.Added[0] != b.URL || len(res.Backends.Kept) != 1 ||
		res.APIKeys != 2 || len(res.RestartRequired) != 1 || res.RestartRequired[0] != "gatewayAddress" {
		t.Errorf("reload result %+v", res)
	}
	// The new IP rule applies at once.
	if status, _, _ := get(t, gw.URL+"/api/tags"); status != 403 {
		t.Errorf("deny rule after reload: %d; want 403", status)
	}
}

func TestReloadKeepsBackendPools(t *testing.T) {
	a := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(a.URL))
	before := gw.gw.Snapshot().Proxy.Pool().Backends()[0]
	cfg := baseConfig(a.URL)
	cfg.Logging = true
	writeConfig(t, gw.path, cfg)
	if _, err := gw.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if after := gw.gw.Snapshot().Proxy.Pool().Backends()[0]; after != before {
		t.Error("an unchanged backend was rebuilt: its connection pool and health were lost")
	}
	if !gw.gw.Snapshot().Config.Logging {
		t.Error("logging change not applied")
	}
}

func TestWatchConfigReloadsOnRename(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	ctx, cancel := contextWithCancel()
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); gw.gw.WatchConfig(ctx, 20*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	cfg := baseConfig(fake.URL)
	cfg.APIKeys = append(cfg.APIKeys, config.KeyEntry{Key: "watched-key-000000000000"})
	writeConfig(t, gw.path, cfg)
	eventually(t, "the file watch reloads a renamed-over config", func() bool { return gw.gw.Snapshot().policy.keys.Len() == 2 })
	if status, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer watched-key-000000000000", nil); status.StatusCode != 200 {
		t.Errorf("watched key refused: %d", status.StatusCode)
	}
}

func TestNewKey(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	resp, body := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, nil)
	var nk struct{ Key, ID string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &nk) != nil || len(nk.Key) != 43 {
		t.Fatalf("new-key: %d %s", resp.StatusCode, body)
	}
	// Live for the very next request, and saved.
	if r, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+nk.Key, nil); r.StatusCode != 200 {
		t.Errorf("new key refused: %d", r.StatusCode)
	}
	onDisk, err := config.Load(gw.path)
	if err != nil || !containsString(config.Credentials(onDisk.APIKeys), nk.Key) {
		t.Errorf("new key not in the file (%v)", err)
	}
	// Revoked: refused at once and gone from the file.
	if r, body := do(t, gw.URL, "DELETE", "/config/keys/"+nk.ID, "Bearer "+testKey, nil); r.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", r.StatusCode, body)
	}
	if r, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+nk.Key, nil); r.StatusCode != 401 {
		t.Errorf("revoked key: %d; want 401", r.StatusCode)
	}
}

// TestNewKeyConcurrent: 30 concurrent new-key calls give 30 distinct keys,
// all usable and all in a file that still loads.
func TestNewKeyConcurrent(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	keys := make([]string, 30)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			resp, body := do(t, gw.URL, "GET", "/config/new-key", "Bearer "+testKey, nil)
			var nk struct{ Key string }
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &nk) != nil {
				t.Errorf("new-key %d: %d %s", i, resp.StatusCode, body)
			}
			keys[i] = nk.Key
		})
	}
	wg.Wait()
	onDisk, err := config.Load(gw.path)
	if err != nil {
		t.Fatalf("file after 30 concurrent new keys: %v", err)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k == "" || seen[k] {
			t.Fatalf("duplicate or missing key")
		}
		seen[k] = true
		if !containsString(config.Credentials(onDisk.APIKeys), k) {
			t.Errorf("a key is missing from the file")
		}
		if r, _ := do(t, gw.URL, "GET", "/api/version", "Bearer "+k, nil); r.StatusCode != 200 {
			t.Errorf("a new key is refused: %d", r.StatusCode)
		}
	}
	if len(onDisk.APIKeys) != 31 {
		t.Errorf("file has %d keys; want 31", len(onDisk.APIKeys))
	}
}

// TestNewKeyNotLiveWhenNotSaved: if the file cannot be written the key is
// not created: 500 with the reason, and nothing is live.
func TestNewKeyNotLiveWhenNotSaved(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	if err := os.RemoveAll(filepath.Dir(gw.path)); err != nil {
		t.Fatal(err)
	}
	before := gw.gw.Snapshot()
	resp, body := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, nil)
	if resp.StatusCode != 500 || !strings.Contains(errorOf(t, body), "not created") {
		t.Errorf("new-key with an unwritable file: %d %s; want 500", resp.StatusCode, body)
	}
	if gw.gw.Snapshot() != before {
		t.Error("the running configuration changed although the key was not saved")
	}
}

func TestHealthEndpointsAndPassiveEjection(t *testing.T) {
	fake := ollamatest.New(t)
	dead := deadAddress(t)
	gw := startFileGateway(t, baseConfig(dead, fake.URL))
	if status, _, body := get(t, gw.URL+"/healthz"); status != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %s", status, body)
	}
	eventually(t, "/readyz ready, without a key, with one live backend", func() bool {
		resp, err := http.Get(gw.URL + "/readyz") // no key sent
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// One request that hits the dead backend ejects it at once.
	// (Not /api/tags: with two backends the gateway answers it itself.)
	for range 2 {
		if status, _, _ := get(t, gw.URL+"/api/version"); status != 200 {
			t.Fatalf("request failed: %d", status)
		}
	}
	var deadB *proxy.Backend
	for _, b := range gw.gw.Snapshot().Proxy.Pool().Backends() {
		if b.Name() == dead {
			deadB = b
		}
	}
	if deadB.Health() != proxy.HealthDown {
		t.Errorf("dead backend state %v; want down", deadB.Health())
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// TestReadyAcrossReload: a reload that keeps the backends does not make
// the gateway unready, not even for an instant (review finding).
func TestReadyAcrossReload(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	ready := func() int {
		status, _, _ := get(t, gw.URL+"/readyz")
		return status
	}
	eventually(t, "ready", func() bool { return ready() == 200 })
	for i := range 5 {
		cfg := baseConfig(fake.URL)
		cfg.Logging = i%2 == 0
		if _, err := gw.gw.apply(&cfg); err != nil {
			t.Fatal(err)
		}
		if status := ready(); status != 200 {
			t.Fatalf("reload %d: /readyz = %d right after; want 200", i, status)
		}
	}
}

// TestNewKeyReadOnlyFile is the regression test for new-key rewriting a
// mode 0444 config.json (issue 10, item 8): the README says an unwritable
// file answers 500 and the key is not created. Revocation likewise.
func TestNewKeyReadOnlyFile(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	if err := os.Chmod(gw.path, 0o444); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(gw.path)
	if err != nil {
		t.Fatal(err)
	}
	state := gw.gw.Snapshot()
	resp, body := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, nil)
	if resp.StatusCode != 500 || !strings.Contains(errorOf(t, body), "not created") {
		t.Errorf("new-key on a read-only file: %d %s; want 500", resp.StatusCode, body)
	}
	id := config.KeyID(config.KeyDigest(testKey))
	if resp, body := do(t, gw.URL, "DELETE", "/config/keys/"+id, "Bearer "+testKey, nil); resp.StatusCode != 500 {
		t.Errorf("revoke on a read-only file: %d %s; want 500", resp.StatusCode, body)
	}
	if after, _ := os.ReadFile(gw.path); string(after) != string(before) {
		t.Errorf("read-only file rewritten:\n%s", after)
	}
	if fi, _ := os.Stat(gw.path); fi.Mode().Perm() != 0o444 {
		t.Errorf("mode = %v; want 0444", fi.Mode().Perm())
	}
	if gw.gw.Snapshot() != state {
		t.Error("the running configuration changed although nothing was saved")
	}
}

// TestNewKeyStoreDigest: ?store=digest saves the key's sha256: form, not
// the key, which is live and shown once; the default still saves the key.
func TestNewKeyStoreDigest(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startFileGateway(t, baseConfig(fake.URL))
	for _, tc := range []struct {
		query  string
		status int
		digest bool
	}{
		{"", 200, false},
		{"?store=key", 200, false},
		{"?store=digest", 200, true},
		{"?store=plain", 400, false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			before, _ := os.ReadFile(gw.path)
			resp, body := do(t, gw.URL, "POST", "/config/new-key"+tc.query, "Bearer "+testKey, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("new-key%s: %d %s; want %d", tc.query, resp.StatusCode, body, tc.status)
			}
			saved, _ := os.ReadFile(gw.path)
			if tc.status != 200 {
				errorOf(t, body)
				if string(saved) != string(before) {
					t.Errorf("file changed by a refused new-key")
				}
				return
			}
			var nk struct{ Key, ID string }
			if err := json.Unmarshal([]byte(body), &nk); err != nil || len(nk.Key) != 43 {
				t.Fatalf("new-key answer %s (%v)", body, err)
			}
			if got := strings.Contains(string(saved), config.DigestEntry(nk.Key)); got != tc.digest {
				t.Errorf("file holds the digest: %v; want %v", got, tc.digest)
			}
			if got := strings.Contains(string(saved), `"`+nk.Key+`"`); got == tc.digest {
				t.Errorf("file holds the key: %v; want %v", got, !tc.digest)
			}
			if r, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+nk.Key, nil); r.StatusCode != 200 {
				t.Errorf("new key refused: %d", r.StatusCode)
			}
		})
	}
}

// TestRevokeLastAdminKey: revoking the only admin key would silently hand
// the admin endpoints to the loopback fallback (issue 10, item 6): 409
// unless ?force=true.
func TestRevokeLastAdminKey(t *testing.T) {
	const admin1, admin2 = "admin-one-0123456789", "admin-two-0123456789"
	fake := ollamatest.New(t)
	cfg := baseConfig(fake.URL)
	cfg.AdminKeys = config.Keys(admin1, admin2)
	gw := startFileGateway(t, cfg)
	id := func(k string) string { return config.KeyID(config.KeyDigest(k)) }

	// Not the last: revoked.
	if r, body := do(t, gw.URL, "DELETE", "/config/keys/"+id(admin2), "Bearer "+admin1, nil); r.StatusCode != 200 {
		t.Fatalf("revoke one of two admin keys: %d %s; want 200", r.StatusCode, body)
	}
	before, _ := os.ReadFile(gw.path)
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"", 409},
		{"?force=false", 409},
		{"?force=yes", 400},
	} {
		r, body := do(t, gw.URL, "DELETE", "/config/keys/"+id(admin1)+tc.query, "Bearer "+admin1, nil)
		if r.StatusCode != tc.status {
			t.Errorf("revoke the last admin key%s: %d %s; want %d", tc.query, r.StatusCode, body, tc.status)
		}
		if msg := errorOf(t, body); strings.Contains(msg, admin1) {
			t.Errorf("error %q holds the key", msg)
		}
	}
	if after, _ := os.ReadFile(gw.path); string(after) != string(before) {
		t.Errorf("file changed by a refused revocation:\n%s", after)
	}
	if r, _ := do(t, gw.URL, "GET", "/config/reload", "Bearer "+admin1, nil); r.StatusCode != 200 {
		t.Errorf("the last admin key stopped working: %d", r.StatusCode)
	}
	// Forced: revoked, and refused at once.
	if r, body := do(t, gw.URL, "DELETE", "/config/keys/"+id(admin1)+"?force=true", "Bearer "+admin1, nil); r.StatusCode != 200 {
		t.Fatalf("forced revocation: %d %s; want 200", r.StatusCode, body)
	}
	if r, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+admin1, nil); r.StatusCode != 401 {
		t.Errorf("revoked admin key: %d; want 401", r.StatusCode)
	}
}
