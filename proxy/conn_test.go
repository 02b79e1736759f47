package proxy

import (
	"net"
	"testing"
	"time"
)

// connPair returns the two ends of a loopback TCP connection, the first
// wrapped as the proxy wraps a backend connection.
func connPair(t testing.TB) (*deadlineConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return newDeadlineConn(c, time.Minute, time.Minute, true), s
}

// TestReusable: a pooled connection is reusable while nothing waits on it;
// not once the peer wrote to it or closed it.
func TestReusable(t *testing.T) {
	if !peekSupported {
		t.Skip("no non-blocking peek on this platform")
	}
	for _, tc := range []struct {
		name string
		peer func(net.Conn)
		want bool
	}{
		{"idle", func(net.Conn) {}, true},
		{"bytes waiting", func(s net.Conn) { _, _ = s.Write([]byte("HTTP/1.1 200 OK\r\n")) }, false},
		{"closed by the peer", func(s net.Conn) { s.Close() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := connPair(t)
			tc.peer(s)
			// Loopback delivers a write or a FIN to the peer's receive
			// queue before the call returns.
			if got := c.guard.reusable(time.Now()); got != tc.want {
				t.Errorf("reusable = %v; want %v", got, tc.want)
			}
			if tc.want && c.guard.frames.unsafe {
				t.Error("frames marked unsafe")
			}
		})
	}
}

// TestReuseCheckNoAllocs: checking a pooled connection before each request
// and reading a response's headers along cost no allocation.
func TestReuseCheckNoAllocs(t *testing.T) {
	c, _ := connPair(t)
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\nok")
	allocs := testing.AllocsPerRun(1000, func() {
		if !c.guard.reusable(time.Now()) {
			t.Fatal("not reusable")
		}
		c.guard.frames.start()
		c.guard.frames.feed(head)
	})
	if allocs != 0 {
		t.Errorf("reuse check allocates %v times; want 0", allocs)
	}
}

// BenchmarkReuseCheck: what the guard adds to one request on a pooled
// connection (the peek and the header scan).
func BenchmarkReuseCheck(b *testing.B) {
	c, _ := connPair(b)
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\nContent-Length: 20\r\n\r\n")
	b.Run("peek", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !c.guard.reusable(time.Now()) {
				b.Fatal("not reusable")
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.guard.frames.start()
			c.guard.frames.feed(head)
		}
	})
}
