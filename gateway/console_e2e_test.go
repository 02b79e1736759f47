package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// consoleE2EDir holds the browser test's script and its pinned npm
// dependency (npm ci there installs it).
const consoleE2EDir = "console/e2e"

// browserTools finds node, Debian's chromium and playwright-core. Outside CI
// a missing tool skips the test; in CI (CI=1) it fails it.
func browserTools(t *testing.T) (node string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %s is missing (see .ci/run)", what)
		}
		t.Skipf("%s is missing: install it to run the browser test (see .ci/run)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing("/usr/bin/chromium (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join(consoleE2EDir, "node_modules", "playwright-core")); err != nil {
		missing("playwright-core (npm ci in gateway/" + consoleE2EDir + ")")
	}
	return node
}

// TestConsoleInBrowser drives the console in headless chromium as a new
// operator would (issue 15): a plain key is refused at sign-in, the admin
// key signs in, both backends and their models show, request counts move
// after traffic, a key is minted and revoked through the page, and a
// killed backend turns down. Screenshots go to $CONSOLE_ARTIFACTS (or a
// temporary directory, logged).
func TestConsoleInBrowser(t *testing.T) {
	node := browserTools(t)
	const admin = "console-admin-key-0123456789"
	fakeA := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	fakeB := ollamatest.New(t, ollamatest.WithModels("qwen2.5:7b"))
	cfg := baseConfig(fakeA.URL, fakeB.URL)
	cfg.AdminKeys = config.Keys(admin)
	cfg.Console.Enabled = true
	cfg.LoadBalancer.HealthCheckIntervalInSeconds = 1
	cfg.LoadBalancer.FailThreshold = 1
	gw := startFileGateway(t, cfg)

	shots := os.Getenv("CONSOLE_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	backends, _ := json.Marshal([]map[string]string{
		{"name": fakeA.URL, "model": "llama3.2:latest"},
		{"name": fakeB.URL, "model": "qwen2.5:7b"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "console.e2e.js")
	cmd.Dir = consoleE2EDir
	cmd.Env = append(os.Environ(),
		"GATEWAY_URL="+gw.URL, "ADMIN_KEY="+admin, "PLAIN_KEY="+testKey,
		"SHOTS="+shots, "BACKENDS="+string(backends), "CONSOLE_PATH="+cfg.Console.Path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var steps []string
	for sc.Scan() {
		line := sc.Text()
		cmdName, isCmd := strings.CutPrefix(line, "CMD ")
		if !isCmd {
			t.Log(line)
			steps = append(steps, line)
			continue
		}
		answer := "ok"
		switch cmdName {
		case "traffic":
			for i := 0; i < 5; i++ {
				if err := generate(gw.URL, "llama3.2"); err != nil {
					answer = "traffic failed: " + err.Error()
				}
			}
		case "kill":
			fakeB.Close()
		default:
			answer = "unknown command " + cmdName
		}
		if _, err := io.WriteString(stdin, answer+"\n"); err != nil {
			t.Errorf("answering %s: %v", cmdName, err)
		}
	}
	err = cmd.Wait()
	t.Logf("screenshots in %s", shots)
	if err != nil {
		t.Fatalf("browser test failed (%v) after %q:\n%s", err, steps, stderr.String())
	}
	if len(steps) == 0 || steps[len(steps)-1] != "STEP done" {
		t.Fatalf("browser test ended early after %q:\n%s", steps, stderr.String())
	}
}
