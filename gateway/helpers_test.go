package gateway

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
)

// testGateway is a gateway serving on a real loopback socket.
type testGateway struct {
	gw  *Gateway
	URL string
}

// startGateway runs a gateway in front of backends, with cfg adjusted by
// mutate (may be nil), on 127.0.0.1. It stops when the test ends.
func startGateway(t testing.TB, mutate func(*config.Config), backends ...string) *testGateway {
	t.Helper()
	return startGatewayOn(t, listen(t), mutate, backends...)
}

// startGatewayOn is startGateway serving on ln.
func startGatewayOn(t testing.TB, ln net.Listener, mutate func(*config.Config), backends ...string) *testGateway {
	t.Helper()
	cfg := config.Default()
	cfg.OllamaAddresses = backends
	cfg.APIKeys = config.Keys(testKey)
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	return serve(t, ln, &cfg, nil)
}

// serve runs a gateway for cfg on ln until the test ends; log nil sends
// warnings and errors to t.Log.
func serve(t testing.TB, ln net.Listener, cfg *config.Config, log *slog.Logger, opts ...Option) *testGateway {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	gw, err := New(cfg, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := gw.NewServer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		// Shutdown returns at once if Serve has not registered its
		// listener yet: closing the listener makes Serve return anyway.
		_ = srv.Shutdown()
		ln.Close()
		<-done
		gw.Close()
	})
	return &testGateway{gw: gw, URL: "http://" + ln.Addr().String()}
}

// listen opens a loopback listener.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// eventually waits, bounded, for cond: for states reached just after the
// response the client saw (a slot released, a file reloaded).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// deadAddress returns an http URL on which nothing listens.
func deadAddress(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// testKey is the API key startGateway configures.
const testKey = "test-key-0123456789abcdef"

// authHeader is the Authorization header of testKey.
const authHeader = "Authorization: Bearer " + testKey + "\r\n"

// httpClient is a client that authenticates with testKey, with a generous
// overall timeout: a test that would hang (a buffering proxy, a lost
// stream) fails instead.
func httpClient() *http.Client {
	return clientWithKey("Bearer " + testKey)
}

// clientWithKey is httpClient sending authorization as the Authorization
// header ("" sends none).
func clientWithKey(authorization string) *http.Client {
	h := http.Header{}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: authTransport{header: h}}
}

// authTransport adds headers to every request, e.g. for the Go ollama
// client, which has no header option of its own.
type authTransport struct{ header http.Header }

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range a.header {
		r.Header[k] = v
	}
	return noCompression.RoundTrip(r)
}

var noCompression = &http.Transport{DisableCompression: true}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// get performs a GET and returns status, headers and body.
func get(t testing.TB, rawURL string) (int, http.Header, string) {
	t.Helper()
	resp, err := httpClient().Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// post performs a POST of a JSON body.
func post(t testing.TB, rawURL, body string) (int, http.Header, string) {
	t.Helper()
	resp, err := httpClient().Post(rawURL, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// rawRequest writes req verbatim to addr and returns the response.
func rawRequest(t testing.TB, gwURL, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(gwURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func hexDigest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// plainKeysManageModels lets every API key manage models, as before
// security.modelManagement: for tests of uploads and pulls as such.
func plainKeysManageModels(c *config.Config) { c.Security.ModelManagement = config.ModelManagementAny }
