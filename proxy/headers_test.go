package proxy

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestStripRequestHopHeaders(t *testing.T) {
	var req fasthttp.Request
	raw := "POST /api/chat HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, X-Secret-Hop\r\n" +
		"Keep-Alive: timeout=5\r\nTe: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic x\r\n" +
		"X-Secret-Hop: 1\r\nX-Kept: yes\r\nContent-Length: 0\r\n\r\n"
	if err := req.Read(bufioReader(raw)); err != nil {
		t.Fatal(err)
	}
	stripRequestHopHeaders(&req.Header, nil)
	for _, h := range []string{"Connection", "Keep-Alive", "Te", "Upgrade", "Proxy-Authorization", "X-Secret-Hop"} {
		if v := req.Header.Peek(h); v != nil {
			t.Errorf("header %s = %q survived; want removed", h, v)
		}
	}
	if got := string(req.Header.Peek("X-Kept")); got != "yes" {
		t.Errorf("X-Kept = %q; want yes", got)
	}
	if req.Header.ConnectionClose() {
		t.Error("connection close flag kept")
	}
}

func TestCopyResponseHeaders(t *testing.T) {
	var resp fasthttp.Response
	resp.Header.DisableNormalizing()
	raw := "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nkeep-alive: timeout=5\r\n" +
		"connection: keep-alive, x-hop\r\nx-hop: 1\r\nX-Ollama: kept\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	if err := resp.Read(bufioReader(raw)); err != nil {
		t.Fatal(err)
	}
	var dst fasthttp.ResponseHeader
	copyResponseHeaders(&dst, &resp.Header)
	out := dst.String()
	for _, h := range []string{"keep-alive", "x-hop", "transfer-encoding"} {
		if strings.Contains(strings.ToLower(out), "\n"+h+":") {
			t.Errorf("hop header %s forwarded:\n%s", h, out)
		}
	}
	if got := string(dst.ContentType()); got != "application/x-ndjson" {
		t.Errorf("Content-Type = %q; want application/x-ndjson", got)
	}
	if got := string(dst.Peek("X-Ollama")); got != "kept" {
		t.Errorf("X-Ollama = %q; want kept", got)
	}
}

func TestListedInConnection(t *testing.T) {
	tests := []struct {
		conn, key string
		want      bool
	}{
		{"keep-alive, X-Foo", "x-foo", true},
		{"X-Foo", "X-Foo", true},
		{"close", "X-Foo", false},
		{"X-Foobar", "X-Foo", false},
		{"", "X-Foo", false},
		{" , ,x-foo ", "X-FOO", true},
	}
	for _, tt := range tests {
		if got := listedInConnection([]byte(tt.conn), []byte(tt.key)); got != tt.want {
			t.Errorf("listedInConnection(%q, %q) = %v; want %v", tt.conn, tt.key, got, tt.want)
		}
	}
}

func TestRing(t *testing.T) {
	var r ring
	var all []byte
	for i := range 500 {
		line := []byte(strings.Repeat(string(rune('a'+i%26)), i%37) + "\n")
		r.write(line)
		all = append(all, line...)
	}
	want := all[len(all)-tailSize:]
	if got := r.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("ring tail differs from the last %d bytes written", tailSize)
	}
	r.reset()
	r.write([]byte("short"))
	if got := string(r.bytes()); got != "short" {
		t.Errorf("after reset ring = %q; want short", got)
	}
	big := bytes.Repeat([]byte("xy"), tailSize)
	r.write(big)
	if got := r.bytes(); !bytes.Equal(got, big[len(big)-tailSize:]) {
		t.Error("a write larger than the ring did not keep its own tail")
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
