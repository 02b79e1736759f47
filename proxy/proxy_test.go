package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// The proxy's own behaviour (streaming, retries, timeouts, a client gone,
// bodies), through a real fasthttp server on loopback in front of fake
// Ollamas, as the gateway serves it.

// startProxy serves a Proxy over backends (base URLs) on 127.0.0.1 with a
// server set up as the gateway's, until the test ends, and returns its URL.
// Backend errors are logged to t.Log when opts.Logger is nil.
func startProxy(t testing.TB, opts proxy.Options, bopts proxy.BackendOptions, backends ...string) string {
	t.Helper()
	return startProxyFor(t, nil, opts, bopts, backends...)
}

// startProxyFor is startProxy handing every request's results to fin.
func startProxyFor(t testing.TB, fin proxy.Finisher, opts proxy.Options, bopts proxy.BackendOptions, backends ...string) string {
	t.Helper()
	var bs []*proxy.Backend
	for _, u := range backends {
		b, err := proxy.NewBackend(u, bopts)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	pool, err := proxy.NewPool(bs)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	p := proxy.New(pool, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler:                      func(ctx *fasthttp.RequestCtx) { p.Handle(ctx, nil, fin) },
		ReadBufferSize:               16 << 10,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(); ln.Close(); <-done; pool.Close() })
	return "http://" + ln.Addr().String()
}

// testLog sends log output to t.Log.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// client has a generous overall timeout: a test that would hang (a
// buffering proxy, a lost stream) fails instead.
var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}

// get performs a GET and returns status, headers and body.
func get(t testing.TB, rawURL string) (int, http.Header, string) {
	t.Helper()
	resp, err := client.Get(rawURL)
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
	resp, err := client.Post(rawURL, "application/json", strings.NewReader(body))
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

// TestStreamingIsUnbuffered proves, without timing, that each NDJSON line
// reaches the client before the backend writes the next: the fake writes
// chunk k+1 only after the test received chunk k through the proxy, so a
// proxy that buffers would hang this test (and fail on the client timeout).
func TestStreamingIsUnbuffered(t *testing.T) {
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = fmt.Sprintf(" t%d", i)
	}
	fake := ollamatest.New(t, ollamatest.WithPaced(), ollamatest.WithTokens(tokens...))
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, fake.URL)

	fake.Release() // the first chunk carries the response headers
	resp, err := client.Post(url+"/api/chat", "application/json",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q; want application/x-ndjson", ct)
	}
	br := bufio.NewReader(resp.Body)
	var text strings.Builder
	for i := 0; i <= len(tokens); i++ {
		if i > 0 {
			fake.Release()
		}
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("chunk %d: %v (is the proxy buffering?)", i, err)
		}
		var chunk api.ChatResponse
		if err := json.Unmarshal(line, &chunk); err != nil {
			t.Fatalf("chunk %d is not JSON: %q", i, line)
		}
		text.WriteString(chunk.Message.Content)
		if done := i == len(tokens); chunk.Done != done {
			t.Fatalf("chunk %d: done = %v; want %v", i, chunk.Done, done)
		}
	}
	if want := strings.Join(tokens, ""); text.String() != want {
		t.Errorf("assembled %q; want %q", text.String(), want)
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("bytes after the done line: %q", rest)
	}
}

func TestRootAndHead(t *testing.T) {
	fake := ollamatest.New(t)
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, fake.URL)
	status, h, body := get(t, url+"/")
	if status != 200 || body != "Ollama is running" || h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("GET / = %d %q %q", status, h.Get("Content-Type"), body)
	}
	resp, err := client.Head(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len("Ollama is running")) {
		t.Errorf("HEAD / = %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, len("Ollama is running"))
	}
}

// TestDeadBackendCostsNoRequest: with one of two backends refusing
// connections, every request, POST included, still succeeds.
func TestDeadBackendCostsNoRequest(t *testing.T) {
	fake := ollamatest.New(t)
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, deadAddress(t), fake.URL)
	for i := range 20 {
		status, _, body := post(t, url+"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
		if status != 200 || !strings.Contains(body, "The sky is blue.") {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	if n := fake.RequestsTo("/api/chat"); n != 20 {
		t.Errorf("live backend served %d; want 20", n)
	}
}

// TestBackendKilledMidway: a backend that dies after serving (its pooled
// keep-alive connections now dead) costs no request either.
func TestBackendKilledMidway(t *testing.T) {
	a, b := ollamatest.New(t), ollamatest.New(t)
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, a.URL, b.URL)
	for range 4 {
		if status, _, _ := get(t, url+"/api/tags"); status != 200 {
			t.Fatal(status)
		}
	}
	a.Close()
	for i := range 20 {
		status, _, body := post(t, url+"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
		if status != 200 {
			t.Fatalf("request %d after kill: %d %s", i, status, body)
		}
	}
}

// TestStaleKeepAliveSingleBackend: a backend that dropped the proxy's
// pooled connections (restarted, idle timeout) costs no request, POST
// included, even when it is the only backend: the retry uses a fresh
// connection, not the next stale one.
func TestStaleKeepAliveSingleBackend(t *testing.T) {
	fake := ollamatest.New(t)
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, fake.URL)
	// Warm several pooled connections with concurrent requests.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { get(t, url+"/api/tags") })
	}
	wg.Wait()
	for i := range 3 {
		fake.CloseClientConnections()
		status, _, body := post(t, url+"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
		if status != 200 {
			t.Fatalf("round %d: POST after the backend dropped its connections: %d %s", i, status, body)
		}
		if status, _, _ := get(t, url+"/api/tags"); status != 200 {
			t.Fatalf("round %d: GET after the backend dropped its connections: %d", i, status)
		}
	}
}

// TestUploadClientHangsUp: a client that stops sending a streamed upload
// gets 400 (its fault), and the backend is not blamed or retried.
func TestUploadClientHangsUp(t *testing.T) {
	a, b := ollamatest.New(t), ollamatest.New(t)
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, a.URL, b.URL)
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	digest := "sha256:" + strings.Repeat("ab", 32)
	fmt.Fprintf(c, "POST /api/blobs/%s HTTP/1.1\r\nHost: proxy\r\nContent-Length: 1048576\r\n\r\n", digest)
	c.Write(bytes.Repeat([]byte("x"), 100000))
	c.(*net.TCPConn).CloseWrite() // the client is done sending, 948576 bytes short
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("short upload: %d; want 400", resp.StatusCode)
	}
	// One backend may see the upload (and the HEAD that precedes it); it
	// must not be retried on the other.
	if na, nb := a.RequestsTo("/api/blobs/"+digest), b.RequestsTo("/api/blobs/"+digest); na > 0 && nb > 0 {
		t.Errorf("short upload was retried on the other backend (%d and %d requests)", na, nb)
	}
}

func TestAllBackendsDead(t *testing.T) {
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, deadAddress(t), deadAddress(t))
	status, h, body := post(t, url+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
	var e struct{ Error string }
	if status != 502 || h.Get("Content-Type") != "application/json; charset=utf-8" ||
		json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
		t.Errorf("all dead: %d %q %s; want 502 with a JSON error", status, h.Get("Content-Type"), body)
	}
}

func TestFirstByteTimeout(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithPaced()) // never released
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{FirstByteTimeout: time.Second}, fake.URL)
	status, _, body := post(t, url+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
	if status != 504 || !strings.Contains(body, `"error"`) {
		t.Errorf("silent backend: %d %s; want 504 JSON", status, body)
	}
	// A timeout is not retried: the backend saw exactly one request.
	if n := fake.RequestsTo("/api/chat"); n != 1 {
		t.Errorf("backend saw %d chat requests; want 1", n)
	}
}

// TestClientGoneStopsBackend: when the client hangs up mid-stream the
// proxy drops the backend connection, so Ollama stops generating.
func TestClientGoneStopsBackend(t *testing.T) {
	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i] = "x"
	}
	fake := ollamatest.New(t, ollamatest.WithPaced(), ollamatest.WithTokens(tokens...))
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, fake.URL)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/api/chat",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	fake.Release()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	fake.Release()
	for i := range 2 {
		if _, err := br.ReadBytes('\n'); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	cancel() // the client goes away
	resp.Body.Close()
	// Let the backend go on: the proxy finds the client gone on its next
	// write and must close the backend connection.
	go func() {
		for range tokens {
			fake.Release()
		}
	}()
	select {
	case <-fake.Aborted():
	case <-time.After(20 * time.Second):
		t.Fatal("backend stream was not cancelled after the client left")
	}
}

func TestLargeBodiesByteIdentical(t *testing.T) {
	fake := ollamatest.New(t)
	url := startProxy(t, proxy.Options{}, proxy.BackendOptions{}, fake.URL)

	up := ollamatest.DeterministicBytes(4 << 20)
	resp, err := client.Post(url+"/_test/echo", "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	var echo struct {
		BodyLen    int64  `json:"bodyLen"`
		BodySHA256 string `json:"bodySHA256"`
	}
	err = json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	sum := sha256.Sum256(up)
	if err != nil || echo.BodyLen != int64(len(up)) || echo.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("4 MiB upload arrived as %d bytes sha %s (%v); want %d bytes sha %x", echo.BodyLen, echo.BodySHA256, err, len(up), sum)
	}

	const n = 8 << 20
	status, _, body := get(t, fmt.Sprintf("%s/_test/bytes?n=%d", url, n))
	if status != 200 || body != string(ollamatest.DeterministicBytes(n)) {
		t.Errorf("8 MiB download: status %d, %d bytes, identical %v", status, len(body), body == string(ollamatest.DeterministicBytes(n)))
	}
}

func TestRequestBodyLimit(t *testing.T) {
	fake := ollamatest.New(t)
	url := startProxy(t, proxy.Options{MaxRequestBodyBytes: 1 << 20}, proxy.BackendOptions{}, fake.URL)
	big := bytes.Repeat([]byte("a"), 2<<20)

	// Known length: refused before reading.
	status, h, body := post(t, url+"/api/chat", string(big))
	if status != 413 || h.Get("Content-Type") != "application/json; charset=utf-8" || !strings.Contains(body, "1048576") {
		t.Errorf("2 MiB body: %d %q %s; want 413 JSON naming the limit", status, h.Get("Content-Type"), body)
	}
	// Unknown length (chunked): refused once past the limit.
	resp, err := client.Post(url+"/api/chat", "application/json", io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked 2 MiB body: %d; want 413", resp.StatusCode)
	}
	if fake.RequestsTo("/api/chat") != 0 {
		t.Error("an oversized body reached the backend")
	}
	// At the limit: passes.
	status, _, _ = post(t, url+"/_test/echo", string(big[:1<<20]))
	if status != 200 {
		t.Errorf("body at the limit: %d; want 200", status)
	}
}

// modifier records the calls of a ResponseModifier and its Finisher and adds
// a header.
type modifier struct {
	mu     sync.Mutex
	calls  []string // "modify <Content-Type seen>" and "finish <status>", in order
	finish chan struct{}
}

func (m *modifier) ModifyResponse(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Added", "yes")
	m.mu.Lock()
	m.calls = append(m.calls, "modify "+string(ctx.Response.Header.ContentType()))
	m.mu.Unlock()
}

func (m *modifier) Finish(res *proxy.Result) {
	m.mu.Lock()
	m.calls = append(m.calls, fmt.Sprintf("finish %d", res.Status))
	m.mu.Unlock()
	m.finish <- struct{}{}
}

// TestResponseModifier (issue 11 item 5): a Finisher that is a
// ResponseModifier adds its headers through the hook, once per request,
// after the backend's headers (or the proxy's error answer) are in place
// and before Finish: on a stream, a response read whole, a HEAD and an
// error.
func TestResponseModifier(t *testing.T) {
	fake := ollamatest.New(t)
	m := &modifier{finish: make(chan struct{}, 1)}
	url := startProxyFor(t, m, proxy.Options{}, proxy.BackendOptions{}, fake.URL)
	dead := startProxyFor(t, m, proxy.Options{}, proxy.BackendOptions{}, deadAddress(t))
	cases := []struct {
		name, method, url, body string
		status                  int
		contentType             string
	}{
		{"stream", "POST", url + "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, 200, "application/x-ndjson"},
		{"read whole", "GET", url + "/api/version", "", 200, "application/json; charset=utf-8"},
		{"head", "HEAD", url + "/", "", 200, "text/plain; charset=utf-8"},
		{"error", "POST", dead + "/api/chat", `{}`, 502, "application/json; charset=utf-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m.mu.Lock()
			m.calls = nil
			m.mu.Unlock()
			req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			<-m.finish
			if resp.StatusCode != tc.status || resp.Header.Get("X-Added") != "yes" {
				t.Errorf("status %d, X-Added %q; want %d, yes", resp.StatusCode, resp.Header.Get("X-Added"), tc.status)
			}
			m.mu.Lock()
			got := strings.Join(m.calls, ", ")
			m.mu.Unlock()
			if want := fmt.Sprintf("modify %s, finish %d", tc.contentType, tc.status); got != want {
				t.Errorf("calls: %s; want %s", got, want)
			}
		})
	}
}
