package proxy

import (
	"net"
	"time"
)

// deadlineSlack is how stale a deadline may get before it is pushed again.
// Extending a deadline costs a runtime timer update; doing it at most once a
// second per connection keeps it off the per-chunk path while timeouts stay
// accurate to within a second.
const deadlineSlack = time.Second

// deadlineConn enforces the two timeouts a streaming proxy needs on an
// upstream connection, which fasthttp's whole-exchange ReadTimeout cannot
// express:
//
//   - after a request was written, the first response byte must arrive
//     within firstByte (Ollama may be loading a model);
//   - after that, successive reads may be at most idle apart, however long
//     the whole stream lasts; writes likewise.
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
}

func newDeadlineConn(c net.Conn, firstByte, idle time.Duration) *deadlineConn {
	return &deadlineConn{Conn: c, firstByte: firstByte, idle: idle}
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if !c.awaiting {
		c.awaiting = true
		// A new exchange starts: the previous read deadline belongs to
		// the last one.
		c.readDeadline = time.Time{}
	}
	now := time.Now()
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
	if n > 0 && c.awaiting {
		c.awaiting = false
		// Switch from the first-byte budget to the idle budget now, not
		// a second later.
		c.readDeadline = time.Time{}
	}
	return n, err
}
