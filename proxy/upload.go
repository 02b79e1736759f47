package proxy

import (
	"fmt"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// prepareBody sets the upstream request body: streamed for model uploads,
// else read (up to the limit) so it can be replayed on another backend.
func (x *exchange) prepareBody(upReq *fasthttp.Request) error {
	ctx := x.ctx
	x.upload = uploadBody{}
	size := ctx.Request.Header.ContentLength()
	r := ctx.RequestBodyStream()
	if size == 0 || r == nil {
		if x.api.Upload {
			return nil
		}
		return x.checkBody(nil)
	}
	x.upload = uploadBody{r: r, ctx: ctx, idle: x.p.opts.IdleTimeout, active: true, size: int64(size)}
	if x.api.Upload {
		x.upload.streamed = true
		if size < 0 {
			size = -1
		}
		upReq.SetBodyStream(&x.upload, size)
		return nil
	}
	limit := x.p.opts.MaxRequestBodyBytes
	if int64(size) > limit {
		x.discardBody(r)
		return ErrBodyTooLarge
	}
	if size > 0 && size <= prefetched {
		// Already in memory: no network read, no deadline to move.
		x.upload.idle = 0
	}
	if g, ok := x.fin.(BodyGate); ok {
		x.upload.r = g.GateBody(ctx, r, int64(size))
	}
	b, err := readAll(upReq.SwapBody(nil)[:0], &x.upload, limit)
	upReq.SwapBody(b)
	switch {
	case err == ErrBodyTooLarge:
		x.discardBody(r)
		return err
	case err != nil:
		ctx.SetConnectionClose()
		return fmt.Errorf("%w: %w", ErrClientBody, err)
	}
	if err := x.checkBody(b); err != nil {
		return err
	}
	x.route.set(x.p.pool, x.api, b)
	if x.api.StreamUsage {
		x.askUsage(upReq, b)
	}
	return nil
}

// askUsage makes a streamed OpenAI request whose body b does not ask for
// its usage ask for it upstream, so that its tokens are counted whatever
// the client asked; the usage-only chunk that adds to the answer is cut
// out of it (usageStrip). The body's buffers are swapped, not copied: the
// one given up is kept for the next rewrite.
func (x *exchange) askUsage(upReq *fasthttp.Request, b []byte) {
	out, ok := ollamaapi.AppendStreamUsage(x.rewrite[:0], b)
	if !ok {
		x.rewrite = out
		return
	}
	x.rewrite = upReq.SwapBody(out)[:0]
	if cap(x.rewrite) > maxKeptRewrite {
		x.rewrite = nil
	}
	x.addedUsage = true
}

// maxKeptRewrite is the largest body buffer an exchange keeps for the next
// rewrite.
const maxKeptRewrite = 64 << 10

// checkBody lets a BodyChecker Finisher vet the buffered body.
func (x *exchange) checkBody(b []byte) error {
	c, ok := x.fin.(BodyChecker)
	if !ok {
		return nil
	}
	err := c.CheckBody(b)
	if err == nil {
		return nil
	}
	if _, ok := err.(StatusError); !ok {
		err = fmt.Errorf("%w: %w", ErrClientBody, err)
	}
	return err
}

// Bounds on reading away a refused request body.
const (
	discardMax     = 8 << 20
	discardTimeout = 5 * time.Second
)

// discardBody reads away what is left of a request body that will not be
// forwarded, so the client receives our answer: closing a socket with
// unread data makes the kernel send a reset, which destroys the response
// in flight. Past discardMax bytes or discardTimeout the connection is
// closed instead.
func (x *exchange) discardBody(r io.Reader) {
	_ = x.ctx.SetReadDeadline(time.Now().Add(discardTimeout))
	n, err := io.CopyN(io.Discard, r, discardMax)
	if err != io.EOF || n >= discardMax {
		x.ctx.SetConnectionClose()
	}
}

// prefetched is how much of a request body the fasthttp server reads with
// the headers when StreamRequestBody is on (see readBodyWithStreaming).
const prefetched = 8 << 10

// readAll appends r's content to b, failing with ErrBodyTooLarge past limit.
func readAll(b []byte, r io.Reader, limit int64) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b, ErrBodyTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// uploadBody reads the client's request body, keeping the client
// connection's read deadline moving while bytes flow and recording whether
// any byte was consumed (after which a request cannot be retried).
type uploadBody struct {
	r        io.Reader
	ctx      *fasthttp.RequestCtx
	idle     time.Duration
	deadline time.Time
	active   bool  // there is a request body
	streamed bool  // it is streamed to the backend, not buffered
	started  bool  // a byte of it was read
	err      error // reading it failed (not io.EOF)
	size     int64 // announced length, < 0 if chunked
	n        int64 // bytes read
	eof      bool
}

func (u *uploadBody) Read(p []byte) (int, error) {
	if u.idle > 0 {
		if want := time.Now().Add(u.idle); want.Sub(u.deadline) > deadlineSlack {
			_ = u.ctx.SetReadDeadline(want)
			u.deadline = want
		}
	}
	n, err := u.r.Read(p)
	if n > 0 {
		u.started = true
		u.n += int64(n)
	}
	if err == io.EOF && u.size >= 0 && u.n < u.size {
		// The client stopped before its Content-Length.
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		u.eof = true
	} else if err != nil {
		u.err = err
	}
	return n, err
}
