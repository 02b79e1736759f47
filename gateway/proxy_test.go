package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// TestStreamingIsUnbuffered proves, without timing, that each NDJSON line
// reaches the client before the backend writes the next: the fake writes
// chunk k+1 only after the test received chunk k through the gateway, so a
// proxy that buffers would hang this test (and fail on the client timeout).
func TestStreamingIsUnbuffered(t *testing.T) {
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = fmt.Sprintf(" t%d", i)
	}
	fake := ollamatest.New(t, ollamatest.WithPaced(), ollamatest.WithTokens(tokens...))
	gw := startGateway(t, nil, fake.URL)

	fake.Release() // the first chunk carries the response headers
	resp, err := httpClient().Post(gw.URL+"/api/chat", "application/json",
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
			t.Fatalf("chunk %d: %v (is the gateway buffering?)", i, err)
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

func TestOllamaGoClientThroughGateway(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	client := api.NewClient(mustURL(t, gw.URL), httpClient())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var chat strings.Builder
	var last api.ChatResponse
	err := client.Chat(ctx, &api.ChatRequest{
		Model:    "llama3.2",
		Messages: []api.Message{{Role: "user", Content: "Why is the sky blue?"}},
	}, func(r api.ChatResponse) error {
		chat.WriteString(r.Message.Content)
		last = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The Go client returns no error when a stream ends without its done
	// line: check the final chunk too.
	if chat.String() != "The sky is blue." || !last.Done || last.DoneReason != "stop" || last.EvalCount != 5 {
		t.Errorf("chat = %q, done %v, reason %q, eval_count %d; want %q, true, stop, 5",
			chat.String(), last.Done, last.DoneReason, last.EvalCount, "The sky is blue.")
	}

	var gen strings.Builder
	var lastGen api.GenerateResponse
	err = client.Generate(ctx, &api.GenerateRequest{Model: "llama3.2", Prompt: "Why is the sky blue?"},
		func(r api.GenerateResponse) error {
			gen.WriteString(r.Response)
			lastGen = r
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if gen.String() != "The sky is blue." || !lastGen.Done {
		t.Errorf("generate = %q, done %v; want %q, true", gen.String(), lastGen.Done, "The sky is blue.")
	}

	list, err := client.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 || list.Models[0].Name != "llama3.2:latest" {
		t.Errorf("tags = %+v; want llama3.2:latest", list.Models)
	}
	v, err := client.Version(ctx)
	if err != nil || v != "0.17.4" {
		t.Errorf("version = %q, %v; want 0.17.4", v, err)
	}

	// A missing model is Ollama's own 404, passed through.
	err = client.Chat(ctx, &api.ChatRequest{Model: "nope"}, func(api.ChatResponse) error { return nil })
	var se api.StatusError
	if !asStatusError(err, &se) || se.StatusCode != 404 || !strings.Contains(se.ErrorMessage, "nope' not found") {
		t.Errorf("missing model error = %v; want Ollama's 404", err)
	}
}

func asStatusError(err error, se *api.StatusError) bool {
	if e, ok := err.(api.StatusError); ok {
		*se = e
		return true
	}
	return false
}

func TestOpenAIStreamThroughGateway(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	status, h, body := post(t, gw.URL+"/v1/chat/completions",
		`{"model":"llama3.2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q; want 200 text/event-stream", status, h.Get("Content-Type"))
	}
	var text strings.Builder
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	if events[len(events)-1] != "data: [DONE]" {
		t.Errorf("last event %q; want data: [DONE]", events[len(events)-1])
	}
	sawUsage := false
	for _, ev := range events[:len(events)-1] {
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &chunk); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		for _, c := range chunk.Choices {
			text.WriteString(c.Delta.Content)
		}
		if chunk.Usage != nil && chunk.Usage.CompletionTokens == 5 {
			sawUsage = true
		}
	}
	if text.String() != "The sky is blue." || !sawUsage {
		t.Errorf("SSE text %q, usage seen %v; want %q and usage", text.String(), sawUsage, "The sky is blue.")
	}
}

func TestRootAndHead(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	status, h, body := get(t, gw.URL+"/")
	if status != 200 || body != "Ollama is running" || h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("GET / = %d %q %q", status, h.Get("Content-Type"), body)
	}
	resp, err := httpClient().Head(gw.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len("Ollama is running")) {
		t.Errorf("HEAD / = %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, len("Ollama is running"))
	}
}

// TestNoRedirects: paths are Ollama's, exactly as sent; the gateway must
// not answer a trailing slash or a dirty path with a redirect of its own.
// Whatever the backend answers directly, the gateway answers too.
func TestNoRedirects(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	for _, path := range []string{"/api/tags/", "//api/tags", "/api/../api/tags", "/config", "/api/chat/"} {
		req := "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + authHeader + "\r\n"
		direct := rawRequest(t, fake.URL, req)
		direct.Body.Close()
		via := rawRequest(t, gw.URL, req)
		via.Body.Close()
		if via.StatusCode != direct.StatusCode || via.Header.Get("Location") != direct.Header.Get("Location") {
			t.Errorf("GET %s via gateway = %d %q; direct = %d %q", path,
				via.StatusCode, via.Header.Get("Location"), direct.StatusCode, direct.Header.Get("Location"))
		}
	}
}

func TestRequestHeadersAndURI(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	gwHost := strings.TrimPrefix(gw.URL, "http://")
	resp := rawRequest(t, gw.URL, "GET /_test/echo?b=2&a=%2F&a=1 HTTP/1.1\r\n"+
		"Host: "+gwHost+"\r\n"+
		"Connection: keep-alive, X-Hop-Listed\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"X-Hop-Listed: secret\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\n"+
		"X-Forwarded-For: 198.51.100.1\r\n"+
		"X-Forwarded-Proto: gopher\r\n"+
		"Origin: http://evil.example\r\n"+
		"X-Custom: kept\r\n"+
		authHeader+
		"User-Agent: ollama-python/0.4\r\n\r\n")
	defer resp.Body.Close()
	var echo struct {
		RequestURI string              `json:"requestURI"`
		Host       string              `json:"host"`
		Headers    map[string][]string `json:"headers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	h := http.Header(echo.Headers)
	checks := []struct{ what, got, want string }{
		{"request URI", echo.RequestURI, "/_test/echo?b=2&a=%2F&a=1"},
		{"Host", echo.Host, fake.Addr()},
		{"X-Forwarded-For", strings.Join(h.Values("X-Forwarded-For"), "|"), "203.0.113.7, 198.51.100.1, 127.0.0.1"},
		{"X-Forwarded-Proto", strings.Join(h.Values("X-Forwarded-Proto"), "|"), "http"},
		{"X-Forwarded-Host", h.Get("X-Forwarded-Host"), gwHost},
		{"X-Custom", h.Get("X-Custom"), "kept"},
		{"User-Agent", h.Get("User-Agent"), "ollama-python/0.4"},
		{"Keep-Alive", h.Get("Keep-Alive"), ""},
		{"X-Hop-Listed", h.Get("X-Hop-Listed"), ""},
		{"Origin", h.Get("Origin"), ""},
		{"Authorization", h.Get("Authorization"), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s at backend = %q; want %q", c.what, c.got, c.want)
		}
	}
}

// TestRoundRobinSplitsEvenly counts /api/version: with two backends the
// health checks also request /api/tags (model lists).
func TestRoundRobinSplitsEvenly(t *testing.T) {
	a, b := ollamatest.New(t), ollamatest.New(t)
	gw := startGateway(t, nil, a.URL, b.URL)
	for range 100 {
		if status, _, _ := get(t, gw.URL+"/api/version"); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if a.RequestsTo("/api/version") != 50 || b.RequestsTo("/api/version") != 50 {
		t.Errorf("split %d/%d; want 50/50", a.RequestsTo("/api/version"), b.RequestsTo("/api/version"))
	}
}

// TestDeadBackendCostsNoRequest: with one of two backends refusing
// connections, every request, POST included, still succeeds.
func TestDeadBackendCostsNoRequest(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, deadAddress(t), fake.URL)
	for i := range 20 {
		status, _, body := post(t, gw.URL+"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
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
	gw := startGateway(t, nil, a.URL, b.URL)
	for range 4 {
		if status, _, _ := get(t, gw.URL+"/api/tags"); status != 200 {
			t.Fatal(status)
		}
	}
	a.Close()
	for i := range 20 {
		status, _, body := post(t, gw.URL+"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
		if status != 200 {
			t.Fatalf("request %d after kill: %d %s", i, status, body)
		}
	}
}

// TestStaleKeepAliveSingleBackend: a backend that dropped the gateway's
// pooled connections (restarted, idle timeout) costs no request, POST
// included, even when it is the only backend: the retry uses a fresh
// connection, not the next stale one.
func TestStaleKeepAliveSingleBackend(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	// Warm several pooled connections with concurrent requests.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { get(t, gw.URL+"/api/tags") })
	}
	wg.Wait()
	for i := range 3 {
		fake.CloseClientConnections()
		status, _, body := post(t, gw.URL+"/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
		if status != 200 {
			t.Fatalf("round %d: POST after the backend dropped its connections: %d %s", i, status, body)
		}
		if status, _, _ := get(t, gw.URL+"/api/tags"); status != 200 {
			t.Fatalf("round %d: GET after the backend dropped its connections: %d", i, status)
		}
	}
}

// TestUploadClientHangsUp: a client that stops sending a streamed upload
// gets 400 (its fault), and the backend is not blamed or retried.
func TestUploadClientHangsUp(t *testing.T) {
	a, b := ollamatest.New(t), ollamatest.New(t)
	gw := startGateway(t, nil, a.URL, b.URL)
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	digest := "sha256:" + strings.Repeat("ab", 32)
	fmt.Fprintf(c, "POST /api/blobs/%s HTTP/1.1\r\nHost: gw\r\n%sContent-Length: 1048576\r\n\r\n", digest, authHeader)
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
	gw := startGateway(t, nil, deadAddress(t), deadAddress(t))
	status, h, body := post(t, gw.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
	var e struct{ Error string }
	if status != 502 || h.Get("Content-Type") != "application/json; charset=utf-8" ||
		json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
		t.Errorf("all dead: %d %q %s; want 502 with a JSON error", status, h.Get("Content-Type"), body)
	}
}

func TestFirstByteTimeout(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithPaced()) // never released
	gw := startGateway(t, func(c *config.Config) { c.Proxy.FirstByteTimeoutSeconds = 1 }, fake.URL)
	status, _, body := post(t, gw.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
	if status != 504 || !strings.Contains(body, `"error"`) {
		t.Errorf("silent backend: %d %s; want 504 JSON", status, body)
	}
	// A timeout is not retried: the backend saw exactly one request.
	if n := fake.RequestsTo("/api/chat"); n != 1 {
		t.Errorf("backend saw %d chat requests; want 1", n)
	}
}

// TestClientGoneStopsBackend: when the client hangs up mid-stream the
// gateway drops the backend connection, so Ollama stops generating.
func TestClientGoneStopsBackend(t *testing.T) {
	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i] = "x"
	}
	fake := ollamatest.New(t, ollamatest.WithPaced(), ollamatest.WithTokens(tokens...))
	gw := startGateway(t, nil, fake.URL)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", gw.URL+"/api/chat",
		strings.NewReader(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`))
	fake.Release()
	resp, err := httpClient().Do(req)
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
	// Let the backend go on: the gateway finds the client gone on its next
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
	gw := startGateway(t, nil, fake.URL)

	up := ollamatest.DeterministicBytes(4 << 20)
	resp, err := httpClient().Post(gw.URL+"/_test/echo", "application/octet-stream", bytes.NewReader(up))
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
	status, _, body := get(t, fmt.Sprintf("%s/_test/bytes?n=%d", gw.URL, n))
	if status != 200 || body != string(ollamatest.DeterministicBytes(n)) {
		t.Errorf("8 MiB download: status %d, %d bytes, identical %v", status, len(body), body == string(ollamatest.DeterministicBytes(n)))
	}
}

func TestRequestBodyLimit(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) { c.Proxy.MaxRequestBodyBytes = 1 << 20 }, fake.URL)
	big := bytes.Repeat([]byte("a"), 2<<20)

	// Known length: refused before reading.
	status, h, body := post(t, gw.URL+"/api/chat", string(big))
	if status != 413 || h.Get("Content-Type") != "application/json; charset=utf-8" || !strings.Contains(body, "1048576") {
		t.Errorf("2 MiB body: %d %q %s; want 413 JSON naming the limit", status, h.Get("Content-Type"), body)
	}
	// Unknown length (chunked): refused once past the limit.
	resp, err := httpClient().Post(gw.URL+"/api/chat", "application/json", io.MultiReader(bytes.NewReader(big)))
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
	status, _, _ = post(t, gw.URL+"/_test/echo", string(big[:1<<20]))
	if status != 200 {
		t.Errorf("body at the limit: %d; want 200", status)
	}
}

func TestGatewayNamespace(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, nil, fake.URL)
	status, _, body := get(t, gw.URL+"/config/nope")
	if status != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("/config/nope = %d %s; want 404 JSON", status, body)
	}
	if fake.RequestsTo("/config/nope") != 0 {
		t.Error("a /config/ request reached Ollama")
	}
}
