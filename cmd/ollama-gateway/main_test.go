package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// binary is the gateway built once for these tests: they drive the real
// executable, its exit codes and signals.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ollama-gateway-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ollama-gateway")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		// -race needs cgo; fall back to a plain build.
		build = exec.Command("go", "build", "-o", binary, ".")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadConfigExitsTwo(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"missing file", "", "no such file"},
		{"malformed", `{"ollamaAddresses": [`, "line 1"},
		{"bad URL", `{"ollamaAddresses":["http://localhost:11434","htp://x"]}`, `ollamaAddresses[1]: "htp://x" is not an http(s) URL`},
		{"rate limit", `{"ollamaAddresses":["http://localhost:11434"],"rateLimit":{"enabled":true}}`, "rateLimit.maxRequests: must be > 0 when enabled"},
		{"interval", `{"ollamaAddresses":["http://localhost:11434"],"loadBalancer":{"healthCheckIntervalInSeconds":0}}`, "loadBalancer.healthCheckIntervalInSeconds: must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "absent.json")
			if tt.content != "" {
				path = writeFile(t, tt.content)
			}
			cmd := exec.Command(binary, "-config", path)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			out := stderr.String()
			if code != 2 {
				t.Errorf("exit code %d; want 2 (stderr %q)", code, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("stderr %q; want it to contain %q", out, tt.want)
			}
			if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
				t.Errorf("stderr shows a panic: %q", out)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, "ollama-gateway: ") {
					t.Errorf("stderr line %q is not a one-line error", line)
				}
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(binary, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "ollama-gateway ") {
		t.Errorf("-version: %q, %v", out, err)
	}
}

// startBinary runs the gateway on cfg and returns its base URL once it
// logged its startup line, with a channel carrying the process's exit.
func startBinary(t *testing.T, cfg string) (string, *exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "OLLAMA_GATEWAY_CONFIG="+writeFile(t, cfg))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("gateway:", sc.Text())
			select {
			case lines <- sc.Text():
			default: // nobody reads any more (the test failed early)
			}
		}
	}()
	// The log reader ends before the test does: t.Log after the end panics.
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-logged })
	exited := make(chan error, 1)
	var url string
	timeout := time.After(30 * time.Second)
	for url == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("gateway exited before its startup line")
			}
			var rec struct{ Msg, Listen string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "ollama-gateway started" {
				url = "http://" + rec.Listen
			}
		case <-timeout:
			t.Fatal("no startup line within 30s")
		}
	}
	go func() {
		for range lines { // keep draining the log
		}
		exited <- cmd.Wait()
	}()
	return url, cmd, exited
}

// TestSIGTERMLetsStreamsFinish: on SIGTERM the gateway stops accepting but a
// stream in flight runs to its done line, then the process exits 0.
func TestSIGTERMLetsStreamsFinish(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithPaced())
	url, cmd, exited := startBinary(t, fmt.Sprintf(`{"ollamaAddresses":[%q],"gatewayAddress":"127.0.0.1:0","apiKeys":["k-test-123"]}`, fake.URL))

	fake.Release()
	req, _ := http.NewRequest("POST", url+"/api/chat",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer k-test-123")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadBytes('\n'); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range 5 { // 4 more tokens and the done line
		fake.Release()
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut by shutdown: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n")
	if last := lines[len(lines)-1]; len(lines) != 5 || !strings.Contains(last, `"done":true`) {
		t.Fatalf("after SIGTERM got %d lines, last %q; want 5 ending with done", len(lines), last)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after graceful shutdown: %v; want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not exit after its streams finished")
	}
}

func TestServesRepoStyleConfig(t *testing.T) {
	fake := ollamatest.New(t)
	url, _, _ := startBinary(t, fmt.Sprintf(`{"ollamaAddresses":[%q],"gatewayAddress":"127.0.0.1:0","logging":true,"apiKeys":["k-test-123"]}`, fake.URL+"/"))
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("GET / without a key = %d; want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", url+"/", nil)
	req.Header.Set("Authorization", "k-test-123")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Ollama is running" {
		t.Errorf("GET / with a raw key = %d %q", resp.StatusCode, body)
	}
}

// TestFirstStartMintsKey: a configuration without keys is neither open nor
// locked: the gateway creates a key, saves it and prints it once.
func TestFirstStartMintsKey(t *testing.T) {
	fake := ollamatest.New(t)
	path := writeFile(t, fmt.Sprintf(`{"ollamaAddresses":[%q],"gatewayAddress":"127.0.0.1:0"}`, fake.URL))
	cmd := exec.Command(binary, "-config", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	var key, url string
	for (key == "" || url == "") && sc.Scan() {
		line := sc.Text()
		if _, k, ok := strings.Cut(line, "shown only this once: "); ok {
			key = k
		}
		var rec struct{ Msg, Listen string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "ollama-gateway started" {
			url = "http://" + rec.Listen
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if len(key) != 43 || url == "" {
		t.Fatalf("no key printed (%q) or no startup line", key)
	}
	// Its digest is saved, not the key: a fresh clone's tracked
	// config.json must not hold a live secret (issue 10, item 8).
	saved, _ := os.ReadFile(path)
	if !strings.Contains(string(saved), config.DigestEntry(key)) || strings.Contains(string(saved), key) {
		t.Errorf("config file holds the key or not its digest:\n%s", saved)
	}
	req, _ := http.NewRequest("GET", url+"/api/tags", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("minted key refused: %d", resp.StatusCode)
	}
}

func TestKeysCommand(t *testing.T) {
	path := writeFile(t, `{
  "ollamaAddresses": ["http://localhost:11434"],
  "apiKeys": ["existing-key-0000000000"]
}
`)
	out, err := exec.Command(binary, "keys", "new", "-config", path).Output()
	key := strings.TrimSpace(string(out))
	if err != nil || len(key) != 43 {
		t.Fatalf("keys new: %q, %v", out, err)
	}
	saved, _ := os.ReadFile(path)
	if !strings.Contains(string(saved), `"existing-key-0000000000"`) || !strings.Contains(string(saved), key) {
		t.Errorf("file after keys new:\n%s", saved)
	}
	out, err = exec.Command(binary, "keys", "list", "-config", path).Output()
	if err != nil || strings.Count(string(out), " api\n") != 2 || strings.Contains(string(out), key) {
		t.Errorf("keys list: %q, %v; want two ids and no key", out, err)
	}

	// -digest: the file gets the sha256: form; the key is only printed.
	out, err = exec.Command(binary, "keys", "new", "-digest", "-config", path).Output()
	hidden := strings.TrimSpace(string(out))
	if err != nil || len(hidden) != 43 {
		t.Fatalf("keys new -digest: %q, %v", out, err)
	}
	saved, _ = os.ReadFile(path)
	if !strings.Contains(string(saved), config.DigestEntry(hidden)) || strings.Contains(string(saved), hidden) {
		t.Errorf("file after keys new -digest holds the key or not its digest:\n%s", saved)
	}
	out, err = exec.Command(binary, "keys", "list", "-config", path).Output()
	if err != nil || !strings.Contains(string(out), config.KeyID(config.KeyDigest(hidden))+" api\n") {
		t.Errorf("keys list after -digest: %q, %v; want the key's id", out, err)
	}
}

// TestKeysNewWithPolicy: keys new takes a policy as flags and saves an
// object entry; a bad flag value names the flag and changes nothing.
func TestKeysNewWithPolicy(t *testing.T) {
	path := writeFile(t, `{"ollamaAddresses": ["http://localhost:11434"], "apiKeys": ["existing-key-0000000000"]}`)
	out, err := exec.Command(binary, "keys", "new", "-config", path, "-name", "team-a", "-models", "llama3.2,qwen2.5:*",
		"-max-requests", "600", "-window", "60", "-tokens", "200000", "-tokens-window", "86400",
		"-expires", "2027-01-31T00:00:00Z").Output()
	key := strings.TrimSpace(string(out))
	if err != nil || len(key) != 43 {
		t.Fatalf("keys new with a policy: %q, %v", out, err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e := c.APIKeys[1]
	if e.Key != key || e.Name != "team-a" || len(e.Models) != 2 || e.Models[1] != "qwen2.5:*" ||
		e.RateLimit == nil || e.RateLimit.MaxRequests != 600 || e.Tokens == nil || e.Tokens.WindowSeconds != 86400 ||
		e.ExpiresAt != "2027-01-31T00:00:00Z" {
		t.Errorf("saved entry = %+v", e)
	}
	saved, _ := os.ReadFile(path)
	cmd := exec.Command(binary, "keys", "new", "-config", path, "-tokens", "0", "-tokens-window", "60")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "-tokens: must be > 0") {
		t.Errorf("keys new -tokens 0: %v, %q; want an error naming -tokens", err, stderr.String())
	}
	if now, _ := os.ReadFile(path); string(now) != string(saved) {
		t.Error("a refused keys new changed the file")
	}
}

// TestSIGHUPReloads: a key added to the file works after SIGHUP.
// TestKeysListPublicKeys: a public-key entry is listed by its id, the
// first 16 hex digits of its SSH fingerprint's digest.
func TestKeysListPublicKeys(t *testing.T) {
	line := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS alice@laptop"
	path := writeFile(t, `{"ollamaAddresses": ["http://localhost:11434"], "adminKeys": [{"publicKey": "`+line+`"}]}`)
	out, err := exec.Command(binary, "keys", "list", "-config", path).Output()
	want := config.KeyID(config.PublicKey{PublicKey: line}.Fingerprint()) + " admin publicKey\n"
	if err != nil || string(out) != want {
		t.Errorf("keys list: %q, %v; want %q", out, err, want)
	}
}

func TestSIGHUPReloads(t *testing.T) {
	fake := ollamatest.New(t)
	url, cmd, _ := startBinary(t, fmt.Sprintf(`{"ollamaAddresses":[%q],"gatewayAddress":"127.0.0.1:0","apiKeys":["k-test-123"]}`, fake.URL))
	path := strings.TrimPrefix(envValue(cmd.Env, "OLLAMA_GATEWAY_CONFIG"), "")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"ollamaAddresses":[%q],"gatewayAddress":"127.0.0.1:0","apiKeys":["k-test-123","k-added-456"]}`, fake.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url+"/api/tags", nil)
		req.Header.Set("Authorization", "k-added-456")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key added before SIGHUP still refused: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
