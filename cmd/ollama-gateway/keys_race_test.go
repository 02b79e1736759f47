package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/gateway"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// TestKeyWritersRace is the regression test for keys lost and revocations
// undone by a second writer of config.json (issue 10, item 2): 40 runs of
// the real `keys new`, 100 POST /config/new-key and 40 DELETE
// /config/keys/<id>, all at once, against a gateway whose file watch
// reloads every 20 ms. Every key printed or answered with 200 must be in
// the file and accepted; every revoked key gone from the file and refused.
// Keys the gateway minted must be accepted at once, whatever the watch did
// meanwhile.
func TestKeyWritersRace(t *testing.T) {
	const cliRuns, apiMints, revocations = 40, 100, 40
	fake := ollamatest.New(t)
	const admin = "admin-key-race-0123456789"
	revocable := make([]string, revocations)
	for i := range revocable {
		revocable[i] = fmt.Sprintf("revocable-key-%02d-0123456789", i)
	}
	doc, _ := json.Marshal(map[string]any{
		"ollamaAddresses": []string{fake.URL},
		"gatewayAddress":  "127.0.0.1:0",
		"apiKeys":         revocable,
		"adminKeys":       []string{admin},
		// Revoked keys are tried on purpose: no throttling of failures.
		"rateLimit": map[string]any{"authFailuresPerMinute": 1000000},
	})
	path := writeFile(t, string(doc)+"\n")

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := gateway.New(cfg, log, gateway.WithConfigPath(path))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := gw.NewServer()
	go srv.Serve(ln)
	ctx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); gw.WatchConfig(ctx, 20*time.Millisecond) }()
	t.Cleanup(func() {
		stopWatch()
		<-watchDone
		srv.Shutdown()
		gw.Close()
		gw.Snapshot().Proxy.Pool().Close()
	})
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 30 * time.Second}
	call := func(method, path, key string) (int, string, error) {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	var (
		mu       sync.Mutex
		cliKeys  []string
		apiKeys  []string
		wg       sync.WaitGroup
		start    = make(chan struct{})
		parallel = func(workers, runs int, run func()) {
			for w := range workers {
				wg.Go(func() {
					<-start
					for i := w; i < runs; i += workers {
						run()
					}
				})
			}
		}
	)
	parallel(8, cliRuns, func() {
		out, err := exec.Command(binary, "keys", "new", "-config", path).Output()
		key := strings.TrimSpace(string(out))
		if err != nil || len(key) != 43 {
			t.Errorf("keys new: %q, %v", out, err)
			return
		}
		mu.Lock()
		cliKeys = append(cliKeys, key)
		mu.Unlock()
	})
	parallel(10, apiMints, func() {
		status, body, err := call("POST", "/config/new-key", admin)
		var nk struct{ Key string }
		if err != nil || status != 200 || json.Unmarshal([]byte(body), &nk) != nil {
			t.Errorf("new-key: %d %s %v", status, body, err)
			return
		}
		mu.Lock()
		apiKeys = append(apiKeys, nk.Key)
		mu.Unlock()
	})
	next := make(chan string, revocations)
	for _, k := range revocable {
		next <- config.KeyID(config.KeyDigest(k))
	}
	close(next)
	parallel(4, revocations, func() {
		id := <-next
		if status, body, err := call("DELETE", "/config/keys/"+id, admin); err != nil || status != 200 {
			t.Errorf("revoke %s: %d %s %v", id, status, body, err)
		}
	})
	close(start)
	wg.Wait()

	accepted := func(key string) int {
		status, _, err := call("GET", "/api/version", key)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	// What the gateway saved itself is live now: no reload by the watch
	// may have put an older file in its place.
	for _, k := range apiKeys {
		if s := accepted(k); s != 200 {
			t.Errorf("a key answered by new-key is refused: %d", s)
		}
	}
	for _, k := range revocable {
		if s := accepted(k); s != 401 {
			t.Errorf("a revoked key is accepted: %d", s)
		}
	}

	onDisk, err := config.Load(path)
	if err != nil {
		t.Fatalf("file after the race: %v", err)
	}
	lost := 0
	for _, k := range slices.Concat(cliKeys, apiKeys) {
		if !slices.Contains(config.Credentials(onDisk.APIKeys), k) {
			lost++
		}
	}
	resurrected := 0
	for _, k := range revocable {
		if slices.Contains(config.Credentials(onDisk.APIKeys), k) {
			resurrected++
		}
	}
	if lost > 0 || resurrected > 0 {
		t.Errorf("file after the race: %d of %d keys lost, %d of %d revoked keys back", lost,
			len(cliKeys)+len(apiKeys), resurrected, revocations)
	}
	if want := len(cliKeys) + len(apiKeys); len(onDisk.APIKeys) != want {
		t.Errorf("file holds %d API keys; want %d", len(onDisk.APIKeys), want)
	}

	// The CLI's keys become live through the file watch.
	deadline := time.Now().Add(20 * time.Second)
	for _, k := range cliKeys {
		for accepted(k) != 200 {
			if time.Now().After(deadline) {
				t.Fatalf("a key printed by keys new is still refused after 20s")
			}
			time.Sleep(20 * time.Millisecond) // the watch's interval: it has no signal to wait on
		}
	}
	for _, k := range revocable {
		if s := accepted(k); s != 401 {
			t.Errorf("a revoked key is accepted after the watch caught up: %d", s)
		}
	}
	if _, err := os.Stat(path + ".new"); err == nil {
		t.Errorf("a recovery copy was left beside the file")
	}
}
