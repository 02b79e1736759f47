package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"time"
)

// deadlineSlack is how stale a deadline may get before it is pushed again.
// Extending a deadline costs a runtime timer update; doing it at most once a
// second per connection keeps it off the per-chunk path while timeouts stay
// accurate to within a second.
const deadlineSlack = time.Second

// errUnsafeConn fails the first write of a request on a pooled connection
// that must not be reused: the backend wrote bytes nobody asked for while it
// was idle (or closed it), or its last response left its framing in doubt
// (see frameCheck). Nothing was sent; the connection is closed.
var errUnsafeConn = errors.New("proxy: pooled backend connection has unread bytes or was closed")

// deadlineConn enforces the two timeouts a streaming proxy needs on an
// upstream connection, which fasthttp's whole-exchange ReadTimeout cannot
// express:
//
//   - after a request was written, the first response byte must arrive
//     within firstByte (Ollama may be loading a model);
//   - after that, successive reads may be at most idle apart, however long
//     the whole stream lasts; writes likewise.
//
// On a plain connection it also carries the reuseGuard; under TLS the
// guard sits above the TLS layer (guardedTLSConn), where the HTTP bytes
// are, and uses this connection only for its peek.
//
// A connection is used by one exchange at a time and fasthttp hands it
// between goroutines through its pool, so no locking is needed. Close may be
// called concurrently (it only touches the embedded net.Conn).
type deadlineConn struct {
	net.Conn
	firstByte, idle time.Duration

	awaiting      bool      // a request was written, no response byte read yet
	readDeadline  time.Time // deadline currently set for reads
	writeDeadline time.Time // deadline currently set for writes
	guarded       bool      // guard is in use (not under TLS)
	guard         reuseGuard
	peek          peeker
}

// newDeadlineConn wraps c, guarding its reuse unless guard is false (a TLS
// connection will be guarded above its TLS layer).
func newDeadlineConn(c net.Conn, firstByte, idle time.Duration, guard bool) *deadlineConn {
	d := &deadlineConn{Conn: c, firstByte: firstByte, idle: idle, guarded: guard}
	d.peek.init(c)
	d.guard.raw = d
	return d
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	now := time.Now()
	if c.guarded && !c.guard.beginWrite(now) {
		c.Conn.Close()
		return 0, errUnsafeConn
	}
	if !c.awaiting {
		c.awaiting = true
		// A new exchange starts: the previous read deadline belongs to
		// the last one.
		c.readDeadline = time.Time{}
	}
	if want := now.Add(c.idle); want.Sub(c.writeDeadline) > deadlineSlack {
		if err := c.Conn.SetWriteDeadline(want); err != nil {
			return 0, err
		}
		c.writeDeadline = want
	}
	return c.Conn.Write(p)
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	d := c.idle
	if c.awaiting {
		d = c.firstByte
	}
	now := time.Now()
	want := now.Add(d)
	if c.readDeadline.IsZero() || want.Sub(c.readDeadline) > deadlineSlack {
		if err := c.Conn.SetReadDeadline(want); err != nil {
			return 0, err
		}
		c.readDeadline = want
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if c.awaiting {
			c.awaiting = false
			// Switch from the first-byte budget to the idle budget now,
			// not a second later.
			c.readDeadline = time.Time{}
		}
		if c.guarded {
			if gerr := c.guard.read(p[:n]); gerr != nil {
				return 0, gerr
			}
		}
	}
	return n, err
}

// idleNow reports whether nothing, not even an end of file, waits to be
// read on the connection.
func (c *deadlineConn) idleNow(now time.Time) bool {
	if !c.readDeadline.IsZero() && now.After(c.readDeadline) {
		// A deadline that passed while the connection sat in the pool
		// would fail the peek.
		if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
			return false
		}
		c.readDeadline = time.Time{}
	}
	return c.peek.idle()
}

// reuseGuard keeps one client's answer from reaching another: a pooled
// connection carries a new request only if nothing waits to be read on it
// when the request starts (a response has no business arriving before its
// request) and its last response was framed unambiguously (frameCheck).
// Otherwise the first write fails with errUnsafeConn and the connection is
// closed, before any byte of the request was sent. It relies on fasthttp
// writing a whole request before reading its response.
type reuseGuard struct {
	raw      *deadlineConn // the TCP connection, for the peek
	used     bool          // a request was written before: the conn was pooled
	awaiting bool          // a request was written, no response byte read yet
	frames   frameCheck
}

// beginWrite is called before every write of a request; when a new request
// starts on a pooled connection it reports whether the connection may carry
// it.
func (g *reuseGuard) beginWrite(now time.Time) bool {
	if g.awaiting {
		return true
	}
	if g.used && !g.reusable(now) {
		return false
	}
	g.used, g.awaiting = true, true
	g.frames.start()
	return true
}

// reusable reports whether the pooled connection may carry a new request.
func (g *reuseGuard) reusable(now time.Time) bool {
	return !g.frames.unsafe && g.raw.idleNow(now)
}

// read examines response bytes as they are read; errBadStatus fails the
// read of a status line with a code outside 100-599.
func (g *reuseGuard) read(p []byte) error {
	g.awaiting = false
	if g.frames.active {
		g.frames.feed(p)
		if g.frames.badStatus {
			return errBadStatus
		}
	}
	return nil
}

// guardedTLSConn is a TLS connection whose reuse is guarded on its
// plaintext. Its Handshake method (of the embedded tls.Conn) tells fasthttp
// it is a TLS connection already.
type guardedTLSConn struct {
	*tls.Conn
	guard reuseGuard
}

func (c *guardedTLSConn) Write(p []byte) (int, error) {
	if !c.guard.beginWrite(time.Now()) {
		c.Conn.Close()
		return 0, errUnsafeConn
	}
	return c.Conn.Write(p)
}

func (c *guardedTLSConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if gerr := c.guard.read(p[:n]); gerr != nil {
			return 0, gerr
		}
	}
	return n, err
}

// peeker tells whether a connection has bytes (or an end of file) waiting
// to be read, without reading them. The zero value (a connection that is
// not a socket) always answers idle.
type peeker struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool // p.peekFD, bound once per connection
	buf  [1]byte
	n    int // result of the last peek: 1 a byte waits, 0 end of file or error, -1 nothing
	have bool
}

func (p *peeker) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok || !peekSupported {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.rc, p.fn, p.have = rc, p.peekFD, true
}

// idle reports whether nothing is waiting to be read on the connection.
func (p *peeker) idle() bool {
	if !p.have {
		return true
	}
	if err := p.rc.Read(p.fn); err != nil {
		return false
	}
	return p.n < 0 // nothing there: would block
}
