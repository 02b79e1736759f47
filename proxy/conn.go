package proxy

import (
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
// It also keeps one client's answer from reaching another: a connection is
// reused only if nothing is waiting to be read on it when the next request
// starts (a response has no business arriving before its request) and its
// last response was framed unambiguously (frameCheck). Otherwise the first
// write fails with errUnsafeConn and the connection is closed, before any
// byte of the request was sent.
//
// A connection is used by one exchange at a time and fasthttp hands it
// between goroutines through its pool, so no locking is needed. Close may be
// called concurrently (it only touches the embedded net.Conn).
type deadlineConn struct {
	net.Conn
	firstByte, idle time.Duration

	awaiting      bool      // a request was written, no response byte read yet
	used          bool      // a request was written before: the conn was pooled
	readDeadline  time.Time // deadline currently set for reads
	writeDeadline time.Time // deadline currently set for writes
	frames        frameCheck
	peek          peeker
}

func newDeadlineConn(c net.Conn, firstByte, idle time.Duration) *deadlineConn {
	d := &deadlineConn{Conn: c, firstByte: firstByte, idle: idle}
	d.peek.init(c)
	return d
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	now := time.Now()
	if !c.awaiting {
		// A new exchange starts (fasthttp writes a whole request before
		// it reads the response).
		if c.used && !c.reusable(now) {
			c.Conn.Close()
			return 0, errUnsafeConn
		}
		c.used = true
		c.awaiting = true
		// The previous read deadline belongs to the last exchange.
		c.readDeadline = time.Time{}
		c.frames.start()
	}
	if want := now.Add(c.idle); want.Sub(c.writeDeadline) > deadlineSlack {
		if err := c.Conn.SetWriteDeadline(want); err != nil {
			return 0, err
		}
		c.writeDeadline = want
	}
	return c.Conn.Write(p)
}

// reusable reports whether the pooled connection may carry a new request:
// the last response was framed unambiguously and nothing is waiting to be
// read, not even an end of file.
func (c *deadlineConn) reusable(now time.Time) bool {
	if c.frames.unsafe {
		return false
	}
	if !c.readDeadline.IsZero() && now.After(c.readDeadline) {
		// A deadline that passed while the connection sat in the pool
		// would fail the check below.
		if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
			return false
		}
		c.readDeadline = time.Time{}
	}
	return c.peek.idle()
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
		if c.frames.active {
			c.frames.feed(p[:n])
			if c.frames.badStatus {
				return 0, errBadStatus
			}
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
