package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMalformedRequestsLogNoKey is the regression test of issue 10 item 1:
// fasthttp logged a "contents: ..." dump of any request it could not parse,
// Authorization header and all. Each malformed request here carries keys in
// every header that can hold one; the log must hold none of them, and still
// name the kind of error and the client.
func TestMalformedRequestsLogNoKey(t *testing.T) {
	fake := ollamatest.New(t)
	const (
		admin   = "admin-secret-0000000000000001"
		custom  = "custom-secret-000000000000002"
		cookie  = "cookie-secret-000000000000003"
		apiKey  = "xapikey-secret-00000000000004"
		proxied = "proxyauth-secret-000000000005"
	)
	secrets := []string{testKey, admin, custom, cookie, apiKey, proxied}
	keyHeaders := authHeader +
		"X-Gateway-Key: " + custom + "\r\n" +
		"Proxy-Authorization: Bearer " + proxied + "\r\n" +
		"Cookie: session=" + cookie + "\r\n" +
		"X-Api-Key: " + apiKey + "\r\n" +
		"X-Admin: Bearer " + admin + "\r\n"
	logs := &logBuffer{}
	cfg := config.Default()
	cfg.OllamaAddresses = []string{fake.URL}
	cfg.APIKeys = config.Keys(testKey, custom)
	cfg.AdminKeys = config.Keys(admin)
	cfg.Proxy.HeaderReadTimeoutSeconds = 1
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gw := serve(t, listen(t), &cfg, slog.New(slog.NewTextHandler(logs, nil)))
	addr := strings.TrimPrefix(gw.URL, "http://")

	cases := []struct {
		name string
		req  string
		// half closes the write side after req: a client gone mid-headers.
		half bool
		// want is in the log line of the failure ("" when fasthttp logs
		// nothing for it, as for a header timeout).
		want string
	}{
		{name: "space before colon", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders + "Content-Type : application/json\r\n\r\n", want: "kind=\"malformed header\""},
		{name: "bad method", req: "P(ST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders + "\r\n", want: "kind=\"bad method\""},
		{name: "bad content-length", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders + "Content-Length: 12x\r\n\r\n", want: "kind=\"bad Content-Length\""},
		{name: "duplicate content-length", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", want: "kind=\"bad Content-Length\""},
		{name: "chunked, identity", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders + "Transfer-Encoding: chunked, identity\r\n\r\n", want: "kind=\"bad Transfer-Encoding\""},
		{name: "NUL in a value", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders + "X-Note: a\x00b " + testKey + "\r\n\r\n", want: "kind=\"malformed header\""},
		{name: "bare CR", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders + "X-Note: a\rb " + testKey + "\r\n\r\n", want: "kind=\"malformed header\""},
		{name: "no Host", req: "GET /api/tags HTTP/1.1\r\n" + keyHeaders + "\r\n", want: "kind=\"bad Host\""},
		{name: "two Host", req: "GET /api/tags HTTP/1.1\r\nHost: gw\r\nHost: other\r\n" + keyHeaders + "\r\n", want: "kind=\"bad Host\""},
		{name: "gone mid-headers", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders, half: true, want: "kind=\"client closed the connection\""},
		{name: "timeout mid-headers", req: "POST /api/chat HTTP/1.1\r\nHost: gw\r\n" + keyHeaders},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(logs.String())
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			if tc.half {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			// The server logs the failure before it closes the
			// connection, so after EOF the line is there.
			answer, _ := io.ReadAll(c)
			if bytes.HasPrefix(answer, []byte("HTTP/1.1 200")) {
				t.Fatalf("malformed request answered 200: %q", answer)
			}
			got := logs.String()[before:]
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("log holds secret %q:\n%s", s, got)
					break
				}
			}
			if tc.want != "" {
				if !strings.Contains(got, tc.want) || !strings.Contains(got, "client_ip=127.0.0.1") {
					t.Errorf("log = %q; want a line with %s and client_ip=127.0.0.1", got, tc.want)
				}
			}
		})
	}
}

// TestServerLogRedactsOtherMessages: fasthttp's other messages keep their
// format and numbers, never a string or error argument.
func TestServerLogRedactsOtherMessages(t *testing.T) {
	logs := &logBuffer{}
	l := serverLog{slog.New(slog.NewTextHandler(logs, nil))}
	l.Printf("cannot serve %q after %d tries", "Bearer "+testKey, 3)
	got := logs.String()
	if strings.Contains(got, testKey) || !strings.Contains(got, "[redacted]") || !strings.Contains(got, "after 3 tries") {
		t.Errorf("log = %q; want the format with 3 and the string redacted", got)
	}
}
