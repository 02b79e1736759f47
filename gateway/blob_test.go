package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// patternReader yields n bytes of a repeating pattern without holding them.
type patternReader struct{ n, off int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rem := r.n - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		n += copy(p[n:], pattern[(r.off+int64(n))%251:])
	}
	r.off += int64(n)
	return n, nil
}

// pattern holds byte i = i % 251 for long enough that any window of it
// starting below 251 fills a read buffer in a few copies.
var pattern = func() []byte {
	b := make([]byte, 251*256)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}

// TestBlobUploadStreams sends a 1 GiB model blob through the gateway: it
// arrives intact, and the peak RSS of the whole test process (client, gateway
// and fake Ollama together) grows by far less than the blob, so nothing held
// it in memory. -short uploads 128 MiB.
func TestBlobUploadStreams(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 128 << 20
	}
	fake := ollamatest.New(t)
	gw := startGateway(t, plainKeysManageModels, fake.URL)

	h := sha256.New()
	if _, err := io.Copy(h, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))

	before := peakRSS(t)
	req, err := http.NewRequest("POST", gw.URL+"/api/blobs/"+digest, &patternReader{n: size})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	// A slow, loaded CI machine moves 1 GiB under -race in tens of
	// seconds: a generous bound, still finite.
	client := httpClient()
	client.Timeout = 5 * time.Minute
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	growth := peakRSS(t) - before

	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s; want 201", resp.StatusCode, body)
	}
	if got := fake.BlobBytes(); got != size {
		t.Errorf("backend received %d bytes; want %d", got, size)
	}
	t.Logf("peak RSS growth during a %d MiB upload: %.1f MiB", size>>20, float64(growth)/(1<<20))
	if limit := int64(100 << 20); growth > limit {
		t.Errorf("peak RSS grew by %s during the upload; want under %s", mib(growth), mib(limit))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TestBlobUploadExisting: Ollama answers an upload of a blob it already has
// with 200 without reading the body; through the gateway that must be a
// 200 too, not a 502 from the broken pipe (review finding).
func TestBlobUploadExisting(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, plainKeysManageModels, fake.URL)
	body := ollamatest.DeterministicBytes(8 << 20)
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	upload := func() int {
		req, _ := http.NewRequest("POST", gw.URL+"/api/blobs/"+digest, bytes.NewReader(body))
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := upload(); status != http.StatusCreated {
		t.Fatalf("first upload: %d; want 201", status)
	}
	received := fake.BlobBytes()
	if status := upload(); status != http.StatusOK {
		t.Errorf("upload of an existing blob: %d; want 200", status)
	}
	if fake.BlobBytes() != received {
		t.Error("the existing blob was uploaded again")
	}
	if status := upload(); status != http.StatusOK {
		t.Errorf("third upload on the same client: %d; want 200", status)
	}
}
