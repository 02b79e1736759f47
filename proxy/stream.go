package proxy

import (
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// tailSize is how much of the end of a text response is kept for
// Result.Tail: enough for Ollama's final NDJSON line (about 350 bytes) and
// an OpenAI usage chunk followed by "data: [DONE]".
const tailSize = 2048

// errIncomplete ends an exchange whose response body was not read to its end
// without any other error, e.g. when the server stopped writing it.
var errIncomplete = errors.New("proxy: response body not read to the end")

// Result describes one finished exchange. It is passed to Options.OnDone and
// is valid only during that call.
type Result struct {
	// Backend is the backend that answered, or the last one tried; nil if
	// the request never reached the backend stage.
	Backend *Backend
	// Status is the status code sent to the client.
	Status int
	// Start is when the gateway began handling the request.
	Start time.Time
	// FirstByte is the time from Start to the first response body byte
	// from the backend; zero if the body was empty.
	FirstByte time.Duration
	// Duration is the time from Start to the end of the response body.
	Duration time.Duration
	// BytesOut counts response body bytes passed to the client.
	BytesOut int64
	// Err is what ended the exchange early (client gone, backend error);
	// nil when the response was delivered completely.
	Err error

	tail []byte
}

// Tail returns up to the last 2 KiB of a JSON, NDJSON or SSE response body
// (for a chat stream: its final line with the token counts), nil for other
// content types. The slice is valid only during the OnDone call.
func (r *Result) Tail() []byte { return r.tail }

// ring keeps the last tailSize bytes written to it.
type ring struct {
	buf [tailSize]byte
	n   int64 // total bytes written
}

func (r *ring) write(p []byte) {
	if len(p) >= tailSize {
		copy(r.buf[:], p[len(p)-tailSize:])
		r.n = tailSize // position 0 is the oldest byte
		return
	}
	off := int(r.n % tailSize)
	k := copy(r.buf[off:], p)
	copy(r.buf[:], p[k:])
	r.n += int64(len(p))
}

// bytes linearizes the ring in place and returns its content, oldest first.
func (r *ring) bytes() []byte {
	if r.n <= tailSize {
		return r.buf[:r.n]
	}
	off := int(r.n % tailSize)
	// Rotate left by off with three reversals: no extra buffer.
	reverse(r.buf[:off])
	reverse(r.buf[off:])
	reverse(r.buf[:])
	r.n = tailSize
	return r.buf[:]
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

func (r *ring) reset() { r.n = 0 }

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
	bound    bool // move the client's write deadline (streams, large bodies)
	deadline time.Time
}

// Read passes the backend's bytes on. The server flushes each chunk it gets
// from Read to the client before reading again.
func (r *responseBody) Read(p []byte) (int, error) {
	x := r.x
	n, err := r.body.Read(p)
	if n > 0 {
		now := time.Now()
		if x.res.BytesOut == 0 {
			x.res.FirstByte = now.Sub(x.res.Start)
		}
		x.res.BytesOut += int64(n)
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
