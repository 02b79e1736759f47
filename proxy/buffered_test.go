package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// results records what a Proxy reports per exchange.
type results struct {
	mu   sync.Mutex
	done chan struct{}
	last proxy.Result
	tail []byte
}

func (r *results) Finish(res *proxy.Result) {
	r.mu.Lock()
	r.last = *res
	r.tail = append([]byte(nil), res.Tail()...)
	r.mu.Unlock()
	r.done <- struct{}{}
}

// manyModels names enough models that /api/tags is several KiB: net/http
// (the fake Ollama, like Ollama itself) sends that chunked.
func manyModels() []string {
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("model-%02d:7b-instruct-q4_K_M", i))
	}
	return names
}

// rawGet sends GET path over a new connection and returns the response as
// sent (chunked or not) and its body.
func rawGet(t *testing.T, addr, path string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestMetadataReadWhole: Ollama's metadata answers are read whole and
// passed on with a Content-Length, byte for byte, even when the backend
// sent them chunked, and the Result reports them like a stream's.
func TestMetadataReadWhole(t *testing.T) {
	backend := ollamatest.New(t, ollamatest.WithModels(manyModels()...))
	fin := &results{done: make(chan struct{}, 1)}
	addr := serveProxy(t, backend.Addr(), proxy.BackendOptions{}, fin)

	for _, tc := range []struct {
		path        string
		chunkedUp   bool // the backend itself sends it chunked
		contentType string
	}{
		{"/api/tags", true, "application/json; charset=utf-8"},
		{"/api/version", false, "application/json; charset=utf-8"},
		{"/", false, "text/plain; charset=utf-8"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			direct, want := rawGet(t, backend.Addr(), tc.path)
			if chunked := direct.ContentLength < 0; chunked != tc.chunkedUp {
				t.Fatalf("precondition: backend answer chunked = %v, want %v", chunked, tc.chunkedUp)
			}
			got, body := rawGet(t, addr, tc.path)
			<-fin.done
			if got.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("status %d, %d bytes equal %v, want 200 and the backend's %d bytes", got.StatusCode, len(body), bytes.Equal(body, want), len(want))
			}
			if got.ContentLength != int64(len(want)) || len(got.TransferEncoding) != 0 {
				t.Errorf("Content-Length %d Transfer-Encoding %v, want %d and none", got.ContentLength, got.TransferEncoding, len(want))
			}
			if ct := got.Header.Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			fin.mu.Lock()
			defer fin.mu.Unlock()
			res := fin.last
			if res.Status != 200 || res.Err != nil || res.BytesOut != int64(len(want)) || res.FirstByte <= 0 {
				t.Errorf("Result status %d err %v bytes %d first byte %v, want 200 nil %d >0", res.Status, res.Err, res.BytesOut, res.FirstByte, len(want))
			}
			wantTail := want
			if strings.HasPrefix(tc.contentType, "text/plain") {
				wantTail = nil // only JSON, NDJSON and SSE tails are kept
			} else if len(wantTail) > 2048 {
				wantTail = wantTail[len(wantTail)-2048:]
			}
			if !bytes.Equal(fin.tail, wantTail) {
				t.Errorf("Tail: %d bytes, want the last %d of the body", len(fin.tail), len(wantTail))
			}
		})
	}
}

// TestBufferedResponseCap: a metadata answer over MaxBufferedResponse is a
// 502 with Ollama's error shape; generations are streamed and not capped.
func TestBufferedResponseCap(t *testing.T) {
	tokens := make([]string, 200)
	for i := range tokens {
		tokens[i] = fmt.Sprintf(" token%03d", i)
	}
	backend := ollamatest.New(t, ollamatest.WithModels(manyModels()...), ollamatest.WithTokens(tokens...))
	addr := serveProxy(t, backend.Addr(), proxy.BackendOptions{MaxBufferedResponse: 1024}, nil)

	resp, body := rawGet(t, addr, "/api/tags")
	if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(body, []byte(`{"error":"the Ollama backend's answer is too large`)) {
		t.Errorf("oversized /api/tags: %d, %d bytes, want 502 with a JSON error", resp.StatusCode, len(body))
	}

	chat, err := http.Post("http://"+addr+"/api/chat", "application/json",
		strings.NewReader(`{"model":"model-00:7b-instruct-q4_K_M","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Body.Close()
	stream, err := io.ReadAll(chat.Body)
	if err != nil {
		t.Fatal(err)
	}
	if chat.StatusCode != 200 || len(stream) <= 1024 || !bytes.Contains(stream, []byte(`"done":true`)) {
		t.Errorf("chat: status %d, %d bytes, want 200, > 1024 bytes ending with done", chat.StatusCode, len(stream))
	}
}
