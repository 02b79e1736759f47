package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/internal/redistest"
	"github.com/ollamagw/ollama-gateway/redisstore"
)

// keyReplicas starts two gateways sharing the Redis at url, each from its
// own config file holding testKey and adminKey, with a Redis timeout of
// ms.
func keyReplicas(t *testing.T, url string, ms int, fake string) (a, b *fileGateway) {
	t.Helper()
	cfg := baseConfig(fake)
	cfg.AdminKeys = config.Keys(adminKey)
	cfg.Redis = &config.Redis{URL: url, KeyPrefix: "test:", FailMode: "open", TimeoutMilliseconds: ms, LeaseMilliseconds: 30000}
	return startFileGateway(t, cfg), startFileGateway(t, cfg)
}

// within polls cond for at most d, and returns how long it took, or fails.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
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

// TestReplicasShareKeys: a key minted on A works on B within a second; a
// key revoked on A fails on B within a second; Redis holds the key's
// digest and policy, never the key; config.json's keys keep working.
func TestReplicasShareKeys(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t)
	a, b := keyReplicas(t, srv.URL(), 2000, fake.URL)

	status, body := call(t, a.URL, "POST", "/config/new-key", adminKey, `{"name":"shared-one","models":["llama3.2"]}`)
	if status != 200 {
		t.Fatalf("new-key on A: %d %s", status, body)
	}
	var minted struct{ Key, ID string }
	if err := json.Unmarshal([]byte(body), &minted); err != nil || minted.Key == "" {
		t.Fatalf("new-key answer %s: %v", body, err)
	}
	works := func(gw *fileGateway, key string) func() bool {
		return func() bool { s, _ := call(t, gw.URL, "GET", "/api/tags", key, ""); return s == 200 }
	}
	if !works(a, minted.Key)() {
		t.Error("the minted key does not work at once on A")
	}
	took := within(t, time.Second, "minted on A works on B", works(b, minted.Key))
	t.Logf("minted key live on B after %v", took)
	if s, _ := call(t, b.URL, "POST", "/api/chat", minted.Key, `{"model":"other","messages":[]}`); s != 403 {
		t.Errorf("the shared key's model policy on B: %d; want 403", s)
	}
	if s, _ := call(t, b.URL, "GET", "/api/tags", testKey, ""); s != 200 {
		t.Errorf("config.json key on B: %d; want 200", s)
	}
	var keys struct{ Keys []KeyUsage }
	_, body = call(t, b.URL, "GET", "/config/keys", adminKey, "")
	if err := json.Unmarshal([]byte(body), &keys); err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, k := range keys.Keys {
		listed = listed || (k.ID == minted.ID && k.Name == "shared-one")
	}
	if !listed || strings.Contains(body, minted.Key) {
		t.Errorf("GET /config/keys on B: %s; want %s (shared-one) listed and no key", body, minted.ID)
	}

	inConsole := false
	for _, k := range b.gw.consoleState(b.gw.Snapshot(), &consoleSession{}, time.Now()).Keys {
		inConsole = inConsole || k.ID == minted.ID
	}
	if !inConsole {
		t.Errorf("the console on B does not list the shared key %s", minted.ID)
	}

	// Redis: the digest and the policy, never the key.
	c, err := redisstore.New(redisstore.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg, err := c.Do("t", func(bd rueidis.Builder) rueidis.Completed { return bd.Hgetall().Key("test:keys").Build() })
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := msg.AsStrMap()
	d := sha256.Sum256([]byte(minted.Key))
	if len(stored) != 1 || !strings.Contains(stored[hex.EncodeToString(d[:])], "shared-one") {
		t.Errorf("Redis keys hash = %v; want the key's digest with its policy", stored)
	}
	for f, v := range stored {
		if strings.Contains(f+v, minted.Key) {
			t.Errorf("Redis holds the key in plaintext: %s %s", f, v)
		}
	}
	for _, gw := range []*fileGateway{a, b} {
		if data, _ := os.ReadFile(gw.path); strings.Contains(string(data), minted.Key) || strings.Contains(string(data), minted.ID) {
			t.Errorf("the shared key was written to a config file")
		}
	}

	if s, body := call(t, a.URL, "DELETE", "/config/keys/"+minted.ID, adminKey, ""); s != 200 {
		t.Fatalf("revoke on A: %d %s", s, body)
	}
	if works(a, minted.Key)() {
		t.Error("the revoked key still works on A")
	}
	took = within(t, time.Second, "revoked on A fails on B", func() bool { return !works(b, minted.Key)() })
	t.Logf("revoked key refused on B after %v", took)
	if s, _ := call(t, b.URL, "DELETE", "/config/keys/"+minted.ID, adminKey, ""); s != 404 {
		t.Errorf("revoking it again on B: %d; want 404", s)
	}
}

// TestSharedKeyMintRedisDown: while Redis is down a mint is refused with
// 503 (nothing is created, nothing written), and keys already shared keep
// working from the replica's mirror.
func TestSharedKeyMintRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t)
	a, _ := keyReplicas(t, srv.URL(), 50, fake.URL)
	status, body := call(t, a.URL, "POST", "/config/new-key", adminKey, "")
	var minted struct{ Key, ID string }
	if err := json.Unmarshal([]byte(body), &minted); status != 200 || err != nil {
		t.Fatalf("new-key: %d %s", status, body)
	}
	before, _ := os.ReadFile(a.path)
	srv.Stop()
	status, body = call(t, a.URL, "POST", "/config/new-key", adminKey, "")
	if status != 503 || !strings.Contains(errorOf(t, body), "nothing was done") {
		t.Errorf("new-key with Redis down: %d %s; want 503 saying nothing was done", status, body)
	}
	if after, _ := os.ReadFile(a.path); string(after) != string(before) {
		t.Error("the refused mint changed the config file")
	}
	if s, _ := call(t, a.URL, "GET", "/api/tags", minted.Key, ""); s != 200 {
		t.Errorf("shared key with Redis down: %d; want 200 (the mirror)", s)
	}
	if s, _ := call(t, a.URL, "DELETE", "/config/keys/"+minted.ID, adminKey, ""); s != 503 {
		t.Errorf("revoke with Redis down: %d; want 503", s)
	}
}

// TestConsoleKeysRedisDown: the console's mint and revoke answer 503 with
// Retry-After while Redis is down, as the admin endpoints do, not 500.
func TestConsoleKeysRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	fake := ollamatest.New(t)
	cfg := baseConfig(fake.URL)
	cfg.AdminKeys = config.Keys(adminKey)
	cfg.Console.Enabled = true
	cfg.Redis = &config.Redis{URL: srv.URL(), KeyPrefix: "test:", FailMode: "open", TimeoutMilliseconds: 50, LeaseMilliseconds: 30000}
	gw := startFileGateway(t, cfg)
	c, csrf := signIn(t, gw.URL, adminKey)
	resp, body := consoleDo(t, "POST", gw.URL+"/ui/keys", c.Value, csrf, nil, nil)
	var minted struct{ Key, ID string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &minted) != nil || minted.ID == "" {
		t.Fatalf("mint with Redis up: %d %s", resp.StatusCode, body)
	}
	srv.Stop()
	for _, a := range []struct{ method, path string }{{"POST", "/ui/keys"}, {"DELETE", "/ui/keys/" + minted.ID}} {
		resp, body := consoleDo(t, a.method, gw.URL+a.path, c.Value, csrf, nil, nil)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(errorOf(t, body), "nothing was done") {
			t.Errorf("%s %s with Redis down: %d Retry-After %q %s; want 503, Retry-After 1, saying nothing was done",
				a.method, a.path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}
