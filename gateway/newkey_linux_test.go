package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/keyfile"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// singleFileMount recreates what the image sees with the spec's
// docker run -v /host/config.json:/config.json: the file host bind-mounted
// onto config.json in a directory the gateway cannot write. It returns the
// mounted path. The container's "/" refuses the non-root user (EACCES);
// tests run as root, so the directory is made read-only instead (EROFS),
// which stops root too. It needs the right to mount and skips otherwise.
func singleFileMount(t *testing.T, host string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unmount := func(p string) {
		t.Cleanup(func() {
			if err := syscall.Unmount(p, 0); err != nil {
				t.Errorf("unmount %s: %v", p, err)
			}
		})
	}
	// A read-only directory: bind it onto itself, then remount that bind
	// read-only.
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Skip("cannot bind-mount here:", err)
	}
	unmount(dir)
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Skip("cannot remount read-only here:", err)
	}
	if err := syscall.Mount(host, path, "", syscall.MS_BIND, ""); err != nil {
		t.Skip("cannot bind-mount a file here:", err)
	}
	unmount(path)
	if f, err := os.CreateTemp(dir, "probe"); err == nil {
		f.Close()
		t.Fatal("the directory is writable; the test would not test the fallback")
	}
	return path
}

// TestNewKeySingleFileMountNonWritableDir is the regression test for
// new-key answering 500 in the Docker image with the spec's single-file
// mount: the recovery copy of the in-place rewrite could only go next to
// the file, in a directory the gateway cannot write. It now goes to the
// temporary directory, and is removed once the file is rewritten.
func TestNewKeySingleFileMountNonWritableDir(t *testing.T) {
	fake := ollamatest.New(t)
	host := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, host, baseConfig(fake.URL))
	path := singleFileMount(t, host)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	loaded, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw := serve(t, listen(t), loaded, nil, WithConfigPath(path))
	resp, body := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("new-key: %d %s; want 200", resp.StatusCode, body)
	}
	var nk struct{ Key string }
	if err := json.Unmarshal([]byte(body), &nk); err != nil || nk.Key == "" {
		t.Fatalf("new-key answer %q: %v", body, err)
	}
	key := nk.Key
	if r, _ := do(t, gw.URL, "GET", "/api/tags", "Bearer "+key, nil); r.StatusCode != 200 {
		t.Errorf("new key refused: %d", r.StatusCode)
	}
	// Saved to the host's file, through the mount.
	onHost, err := config.Load(host)
	if err != nil || !containsString(config.Credentials(onHost.APIKeys), key) {
		t.Errorf("new key not in the host's file (%v)", err)
	}
	// The recovery copy, which holds every key, is gone.
	if des, _ := os.ReadDir(tmp); len(des) != 0 {
		t.Errorf("temporary directory holds %v after the rewrite; want nothing", des)
	}
}

// TestNewKeyConcurrentSingleFileMount: on the single-file mount the file is
// rewritten in place, so a reader can see it half written; mints through
// the API and writers in other file descriptions (as other processes
// would: flock excludes per open file) lose nothing, and the watch, which
// reads without the lock, never applies a half-written file.
func TestNewKeyConcurrentSingleFileMount(t *testing.T) {
	fake := ollamatest.New(t)
	host := filepath.Join(t.TempDir(), "config.json")
	writeConfig(t, host, baseConfig(fake.URL))
	path := singleFileMount(t, host)
	t.Setenv("TMPDIR", t.TempDir())
	loaded, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw := serve(t, listen(t), loaded, nil, WithConfigPath(path))
	ctx, stop := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { defer close(watched); gw.gw.WatchConfig(ctx, 5*time.Millisecond) }()
	t.Cleanup(func() { stop(); <-watched })

	const n = 20
	var mu sync.Mutex
	var minted, written []string
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, body := do(t, gw.URL, "POST", "/config/new-key", "Bearer "+testKey, nil)
			var nk struct{ Key string }
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &nk) != nil {
				t.Errorf("new-key: %d %s", resp.StatusCode, body)
				return
			}
			mu.Lock()
			minted = append(minted, nk.Key)
			mu.Unlock()
		})
		wg.Go(func() {
			key := fmt.Sprintf("other-writer-key-%02d-0123456789", i)
			if _, err := keyfile.AddKey(path, key); err != nil {
				t.Errorf("AddKey: %v", err)
				return
			}
			mu.Lock()
			written = append(written, key)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, k := range minted {
		if r, _ := do(t, gw.URL, "GET", "/api/version", "Bearer "+k, nil); r.StatusCode != 200 {
			t.Errorf("a minted key is refused: %d", r.StatusCode)
		}
	}
	onHost, err := config.Load(host)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(minted, written...) {
		if !containsString(config.Credentials(onHost.APIKeys), k) {
			t.Errorf("a key is missing from the host's file")
		}
	}
	if got, want := len(onHost.APIKeys), 1+len(minted)+len(written); got != want {
		t.Errorf("host's file holds %d keys; want %d", got, want)
	}
}
