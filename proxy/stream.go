package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// errIncomplete ends an exchange whose response body was not read to its end
// without any other error, e.g. when the server stopped writing it.
var errIncomplete = errors.New("proxy: response body not read to the end")

// responseBody is the body stream handed to the fasthttp server: it reads
// the backend's body, meters it, keeps the client's write deadline moving,
// and releases the backend response exactly once when the server closes it.
type responseBody struct {
	x    *exchange
	up   *fasthttp.Response
	body io.Reader

	eof      bool
	closed   bool
	track    bool // keep the tail (text content types)
	strip    bool // cut the usage-only chunk out (exchange.strip)
	bound    bool // move the client's write deadline (streams, large bodies)
	deadline time.Time
}

// Read passes the backend's bytes on. The server flushes each chunk it gets
// from Read to the client before reading again.
func (r *responseBody) Read(p []byte) (int, error) {
	if !r.strip {
		n, err := r.read(p)
		if n > 0 {
			r.x.res.BytesOut += int64(n)
		}
		return n, err
	}
	// The usage-only chunk the gateway asked for is cut out.
	n, err := r.x.strip.read(p, (*backendBody)(r))
	r.x.res.BytesOut += int64(n)
	return n, err
}

// backendBody is the backend's body as responseBody reads it, before
// anything is cut out of it.
type backendBody responseBody

func (b *backendBody) Read(p []byte) (int, error) { return (*responseBody)(b).read(p) }

// read reads the backend's body into p, keeps its tail and moves the
// client's write deadline.
func (r *responseBody) read(p []byte) (int, error) {
	x := r.x
	n, err := r.body.Read(p)
	if n > 0 {
		now := time.Now()
		if x.res.FirstByte == 0 {
			x.res.FirstByte = now.Sub(x.res.Start)
		}
		if r.track {
			x.tail.write(p[:n])
		}
		// Bounds the write of what we return now, counted from now (not
		// from before a long backend silence): a client that stops
		// reading cannot pin the backend connection forever. A small
		// fixed-size body is written at once and needs none.
		if want := now.Add(x.p.opts.IdleTimeout); r.bound && want.Sub(r.deadline) > deadlineSlack {
			_ = x.ctx.SetWriteDeadline(want)
			r.deadline = want
		}
	}
	if err == io.EOF {
		r.eof = true
	} else if err != nil {
		// The server hands it back to CloseWithError, for Result.Err.
		err = safeError(err)
	}
	return n, err
}

// CloseWithError is called by the fasthttp server once it is done with the
// body, with the write error if the client went away. It closes the backend
// stream, telling fasthttp to drop (not pool) the connection unless the body
// was read to its end, which also makes Ollama stop generating.
func (r *responseBody) CloseWithError(err error) error {
	if r.closed {
		return nil
	}
	r.closed = true
	if err == nil && !r.eof {
		err = errIncomplete
	}
	if err != nil {
		r.up.SetConnectionClose()
	}
	if c, ok := r.body.(fasthttp.ReadCloserWithError); ok {
		_ = c.CloseWithError(err)
	} else {
		_ = r.up.CloseBodyStream()
	}
	fasthttp.ReleaseResponse(r.up)
	r.up, r.body = nil, nil
	r.x.finish(err)
	return nil
}
