package proxy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// hostileBackend is a raw-TCP HTTP/1.1 server that answers a request with
// ?q=first with a response of the test's choosing and then, on the test's
// signal, writes an unsolicited response on the now idle connection: what a
// broken or hostile backend does to desynchronize a proxy's connection pool.
// Every other request is answered {"q":"<q>"}.
type hostileBackend struct {
	ln       net.Listener
	first    string // the raw answer to ?q=first
	late     bool   // answer the next request on the connection with the injected response instead
	inject   chan struct{}
	injected chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	conns    atomic.Int64 // connections accepted
}

// injectedBody is the body of the unsolicited response.
const injectedBody = `{"q":"INJECTED"}`

func newHostileBackend(t *testing.T, first string, late bool) *hostileBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newHostileBackendOn(t, ln, first, late)
}

// newHostileBackendOn is newHostileBackend serving on ln.
func newHostileBackendOn(t *testing.T, ln net.Listener, first string, late bool) *hostileBackend {
	t.Helper()
	h := &hostileBackend{ln: ln, first: first, late: late, inject: make(chan struct{}), injected: make(chan struct{}), done: make(chan struct{})}
	h.wg.Add(1)
	go h.serve()
	t.Cleanup(func() { close(h.done); ln.Close(); h.wg.Wait() })
	return h
}

func (h *hostileBackend) serve() {
	defer h.wg.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.conns.Add(1)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer c.Close()
			go func() { <-h.done; c.Close() }()
			br := bufio.NewReader(c)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				q := req.URL.Query().Get("q")
				if q != "first" || h.first == "" {
					body := fmt.Sprintf(`{"q":%q}`, q)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
					continue
				}
				_, _ = io.WriteString(c, h.first)
				if h.late {
					// The next request on this connection gets the
					// injected answer, whatever it asked.
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(injectedBody), injectedBody)
					continue
				}
				select {
				case <-h.inject:
				case <-h.done:
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(injectedBody), injectedBody)
				close(h.injected)
			}
		}()
	}
}

// rawGetKeep is rawGet with a deadline, for answers that may be odd.
func rawGetKeep(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestNoResponseToTheWrongClient (issue 10 item 3): bytes a backend writes
// on an idle pooled connection never reach the next, unrelated client,
// whatever the previous response was: complete, a 101, framed with both
// Content-Length and Transfer-Encoding, or with a status outside 100-599.
// Those last two kinds, and a 101 nobody asked for, are a 502.
func TestNoResponseToTheWrongClient(t *testing.T) {
	const one = `{"q":"first"}`
	cases := []struct {
		name       string
		first      string // the backend's answer to the first client
		wantStatus int
		wantBody   string // "" for any
	}{
		{"complete", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n" + one, 200, one},
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n" + one + "\r\n0\r\n\r\n", 200, one},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 502, ""},
		{"CL then TE", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n" + one + "\r\n0\r\n\r\n", 200, one},
		{"TE then CL", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 300\r\n\r\nd\r\n" + one + "\r\n0\r\n\r\n", 200, one},
		{"interim then CL and TE", "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length : 3\r\ntransfer-encoding: chunked\r\n\r\nd\r\n" + one + "\r\n0\r\n\r\n", 200, one},
		{"status 600", "HTTP/1.1 600 Odd\r\nContent-Length: 13\r\n\r\n" + one, 502, ""},
		{"status 999", "HTTP/1.1 999 Odd\r\nContent-Length: 13\r\n\r\n" + one, 502, ""},
		{"status 099", "HTTP/1.1 099 Odd\r\nContent-Length: 13\r\n\r\n" + one, 502, ""},
		{"status 000", "HTTP/1.1 000 OK\r\nContent-Length: 13\r\n\r\n" + one, 502, ""},
		{"interim then status 600", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 600 Odd\r\nContent-Length: 13\r\n\r\n" + one, 502, ""},
	}
	for _, late := range []bool{false, true} {
		for _, tc := range cases {
			if late && tc.wantStatus == 200 && !strings.Contains(tc.name, "TE") {
				// A backend that answers a request wrongly cannot be
				// told from one whose answer is right: only a
				// connection known to be unsafe can be kept from it.
				continue
			}
			// /api/version is read whole, /other streamed: two code paths.
			for _, path := range []string{"/api/version", "/other"} {
				name := tc.name + " " + path
				if late {
					name += " injected after the next request"
				}
				t.Run(name, func(t *testing.T) {
					h := newHostileBackend(t, tc.first, late)
					addr := serveProxy(t, h.ln.Addr().String(), proxy.BackendOptions{FirstByteTimeout: 5 * time.Second}, nil)
					status, body := rawGetKeep(t, addr, path+"?q=first")
					if status != tc.wantStatus || (tc.wantBody != "" && body != tc.wantBody) {
						t.Errorf("first client: %d %q; want %d %q", status, body, tc.wantStatus, tc.wantBody)
					}
					if !late {
						h.inject <- struct{}{}
						<-h.injected
					}
					for _, q := range []string{"second", "third"} {
						status, body = rawGetKeep(t, addr, path+"?q="+q)
						if want := `{"q":"` + q + `"}`; status != 200 || body != want {
							t.Errorf("next client (%s): %d %q; want 200 %q", q, status, body, want)
						}
					}
				})
			}
		}
	}
}

// TestNoResponseToTheWrongClientTLS: the same over TLS, where the framing
// is checked on the plaintext and the peek on the socket.
func TestNoResponseToTheWrongClientTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	const one = `{"q":"first"}`
	cases := []struct {
		name, first string
		late        bool
	}{
		{"complete", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n" + one, false},
		{"CL then TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n" + one + "\r\n0\r\n\r\n", false},
		{"CL then TE, injected after the next request", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nd\r\n" + one + "\r\n0\r\n\r\n", true},
	}
	for _, tc := range cases {
		for _, path := range []string{"/api/version", "/other"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				h := newHostileBackendOn(t, tls.NewListener(ln, &tls.Config{Certificates: ts.TLS.Certificates}), tc.first, tc.late)
				b, err := proxy.NewBackend("https://"+h.ln.Addr().String(), proxy.BackendOptions{FirstByteTimeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				proxy.TrustRootsForTest(b, roots)
				addr := serveBackends(t, proxy.Options{}, nil, b)
				if status, body := rawGetKeep(t, addr, path+"?q=first"); status != 200 || body != one {
					t.Errorf("first client: %d %q; want 200 %q", status, body, one)
				}
				if !tc.late {
					h.inject <- struct{}{}
					<-h.injected
				}
				for _, q := range []string{"second", "third"} {
					status, body := rawGetKeep(t, addr, path+"?q="+q)
					if want := `{"q":"` + q + `"}`; status != 200 || body != want {
						t.Errorf("next client (%s): %d %q; want 200 %q", q, status, body, want)
					}
				}
			})
		}
	}
}

// TestHonestBackendConnectionReused: the reuse check costs an honest
// backend no connection, over TCP and TLS: sequential requests share one.
func TestHonestBackendConnectionReused(t *testing.T) {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	for _, useTLS := range []bool{false, true} {
		for _, path := range []string{"/api/version", "/other"} {
			t.Run(fmt.Sprintf("TLS %v %s", useTLS, path), func(t *testing.T) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				scheme := "http://"
				if useTLS {
					ln = tls.NewListener(ln, &tls.Config{Certificates: ts.TLS.Certificates})
					scheme = "https://"
				}
				h := newHostileBackendOn(t, ln, "", false)
				b, err := proxy.NewBackend(scheme+h.ln.Addr().String(), proxy.BackendOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if useTLS {
					proxy.TrustRootsForTest(b, roots)
				}
				addr := serveBackends(t, proxy.Options{}, nil, b)
				for i := range 5 {
					q := fmt.Sprint(i)
					if status, body := rawGetKeep(t, addr, path+"?q="+q); status != 200 || body != `{"q":"`+q+`"}` {
						t.Fatalf("request %d: %d %q", i, status, body)
					}
				}
				if n := h.conns.Load(); n != 1 {
					t.Errorf("backend accepted %d connections; want 1", n)
				}
			})
		}
	}
}
