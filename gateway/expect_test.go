package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// TestExpectContinueAfterAuth is the regression test of issue 10 item 8:
// "Expect: 100-continue" was answered 100 Continue before the key was
// checked, inviting any client to send its body. The IP rules and the key
// are checked first; a refusal is the final status, without 100 Continue.
func TestExpectContinueAfterAuth(t *testing.T) {
	fake := ollamatest.New(t)
	open := startGateway(t, nil, fake.URL)
	denied := startGateway(t, func(c *config.Config) { c.Security.DenyIPs = []string{"127.0.0.1"} }, fake.URL)
	const body = `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}`

	cases := []struct {
		name   string
		gwURL  string
		path   string
		auth   string
		want   int // the first status line's code
		reason string
	}{
		{name: "no key", gwURL: open.URL, path: "/api/chat", want: 401, reason: "missing API key"},
		{name: "wrong key", gwURL: open.URL, path: "/api/chat", auth: "Authorization: Bearer nope-0000000000000\r\n", want: 401, reason: "invalid API key"},
		{name: "denied IP", gwURL: denied.URL, path: "/api/chat", auth: authHeader, want: 403, reason: "forbidden"},
		{name: "admin path without key", gwURL: open.URL, path: "/config/new-key", want: 401, reason: "missing API key"},
		{name: "valid key", gwURL: open.URL, path: "/api/chat", auth: authHeader, want: 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(tc.gwURL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			head := "POST " + tc.path + " HTTP/1.1\r\nHost: gw\r\n" + tc.auth +
				"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
				itoa(len(body)) + "\r\n\r\n"
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if got := statusOfLine(line); got != tc.want {
				t.Fatalf("first status line %q; want %d", line, tc.want)
			}
			if tc.want == 100 {
				// The interim response ends with an empty line; then the
				// body goes and the real answer follows.
				if _, err := br.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				if _, err := io.WriteString(c, body); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("after 100 Continue: %d; want 200", resp.StatusCode)
				}
				return
			}
			// A refusal: the rest of the response is Ollama's error shape.
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := errorOf(t, string(b)); !strings.Contains(got, tc.reason) {
				t.Errorf("error %q; want it to contain %q", got, tc.reason)
			}
		})
	}
	if n := fake.RequestsTo("/api/chat"); n != 1 {
		t.Errorf("Ollama saw %d chat requests; want 1 (the authenticated one)", n)
	}
}

// statusOfLine returns the code of an HTTP/1.1 status line, 0 if none.
func statusOfLine(line string) int {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0
	}
	n := 0
	for _, c := range f[1] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestExpectContinueBodyBudget: a body the gateway would buffer is refused
// from its announced length, before 100 Continue, when it is over
// proxy.maxRequestBodyBytes (413) or the budget cannot take it now (503
// with Retry-After); a model upload, streamed, is not held to either.
func TestExpectContinueBodyBudget(t *testing.T) {
	fake := ollamatest.New(t)
	gw := startGateway(t, func(c *config.Config) {
		c.APIKeys = config.Keys(testKey, "other-key-0123456789")
		c.Proxy.MaxRequestBodyBytes = 1 << 20
		c.Proxy.MaxBufferedBodyBytes = 1 << 20
		plainKeysManageModels(c) // the streamed upload is /api/create
	}, fake.URL)
	addr := strings.TrimPrefix(gw.URL, "http://")
	startBody(t, addr, "other-key-0123456789", 900_000, []byte("{"+strings.Repeat(" ", 10_000)))
	eventually(t, "the first body held", func() bool { return gw.gw.BufferedBodyBytes() == 900_000 })

	for _, tc := range []struct {
		name       string
		path       string
		size       int
		want       int
		retryAfter bool
	}{
		{name: "over the largest body", path: "/api/chat", size: 2 << 20, want: 413},
		{name: "over the budget left", path: "/api/chat", size: 200_000, want: 503, retryAfter: true},
		{name: "within the budget left", path: "/api/chat", size: 100_000, want: 100},
		{name: "streamed upload", path: "/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2", size: 2 << 20, want: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, addr)
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, "POST "+tc.path+" HTTP/1.1\r\nHost: gw\r\n"+authHeader+
				"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: "+itoa(tc.size)+"\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if got := statusOfLine(line); got != tc.want {
				t.Fatalf("first status line %q; want %d", line, tc.want)
			}
			if tc.want == 100 {
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			errorOf(t, string(b))
			if got := resp.Header.Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After %q; want one: %v", resp.Header.Get("Retry-After"), tc.retryAfter)
			}
		})
	}
}
