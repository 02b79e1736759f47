package proxy_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBackendAnswerNotLogged (issue 10 item 1): a backend answer that
// cannot be parsed is logged (and reported in Result.Err) as an error,
// never with the answer's bytes, which may be model output.
func TestBackendAnswerNotLogged(t *testing.T) {
	const secret = "SECRET-MODEL-OUTPUT"
	cases := []struct{ name, answer string }{
		{"garbage", secret + " is not HTTP\r\n\r\n"},
		{"bad status code", "HTTP/1.1 2x0 " + secret + "\r\n\r\n"},
		{"bad header value", "HTTP/1.1 200 OK\r\nX-Out: " + secret + "\x01\r\nContent-Length: 2\r\n\r\nok"},
		{"bad header name", "HTTP/1.1 200 OK\r\n" + secret + "\x01: x\r\nContent-Length: 2\r\n\r\nok"},
		{"bad transfer encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + secret + "\r\n\r\n"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nS" + secret + "\r\n"},
		{"bad trailer", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n2\r\nok\r\n0\r\n" + secret + "\x01: y\r\n\r\n"},
	}
	for _, tc := range cases {
		for _, path := range []string{"/api/version", "/api/chat"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				h := newHostileBackend(t, tc.answer, false)
				var logs lockedBuffer
				fin := &results{done: make(chan struct{}, 1)}
				addr := serveProxyOpts(t, h.ln.Addr().String(), proxy.Options{
					Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				}, fin)
				status, _ := rawGetKeep(t, addr, path+"?q=first")
				<-fin.done
				fin.mu.Lock()
				res := fin.last
				fin.mu.Unlock()
				if status == 200 && res.Err == nil {
					t.Fatalf("status %d, no error: the case does not exercise a parse error", status)
				}
				if strings.Contains(logs.String(), secret) {
					t.Errorf("log holds the backend's bytes:\n%s", logs.String())
				}
				if res.Err != nil && strings.Contains(res.Err.Error(), secret) {
					t.Errorf("Result.Err holds the backend's bytes: %v", res.Err)
				}
				if res.Err == nil {
					t.Errorf("Result.Err = nil; want the parse error")
				}
			})
		}
	}
}
