package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Options configure a Proxy. The zero value of a field selects the default
// given in its comment.
type Options struct {
	// MaxRequestBodyBytes caps request bodies, which are buffered so that a
	// failed attempt can be replayed on another backend. Larger bodies get
	// 413. Bodies of uploads (ollamaapi.Route.Upload: POST /api/blobs/*
	// and /api/create, model files of gigabytes) are streamed instead and
	// not capped. Default 64 MiB.
	MaxRequestBodyBytes int64
	// IdleTimeout bounds the client side of a stream: the silence while
	// reading a request body and the time to write one response chunk.
	// Default 5 min.
	IdleTimeout time.Duration
	// OnBackendError, if set, is called for every failed attempt to reach
	// a backend (before any response byte), for metrics and passive health
	// checks. FailureKind tells a dead backend ("connect", "timeout") from
	// a busy one or a stale pooled connection.
	OnBackendError func(*Backend, error)
	// Logger receives backend errors. Default slog.Default().
	Logger *slog.Logger
}

// Proxy forwards requests to a Pool. It is immutable and safe for
// concurrent use.
type Proxy struct {
	pool      *Pool
	opts      Options
	exchanges sync.Pool
}

// New returns a Proxy over pool.
func New(pool *Pool, opts Options) *Proxy {
	if opts.MaxRequestBodyBytes <= 0 {
		opts.MaxRequestBodyBytes = 64 << 20
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Proxy{pool: pool, opts: opts}
	p.exchanges.New = func() any { return &exchange{p: p} }
	return p
}

// Pool returns the proxy's backend pool.
func (p *Proxy) Pool() *Pool { return p.pool }

// exchange is the per-request state of the proxy, pooled. It lives until the
// response body has been passed on, which is after Handle returns.
type exchange struct {
	p       *Proxy
	ctx     *fasthttp.RequestCtx
	api     *ollamaapi.Route // the request's route
	res     Result
	counted bool // res.Backend.inFlight was incremented
	fin     Finisher
	upload  uploadBody
	route   route // model-aware selection, set with the buffered body
	body    responseBody
	tail    ring
	scratch []byte
}

// Finisher is told the Result of an exchange once its response has been
// passed on completely or abandoned: for a stream, after Handle returned,
// from the goroutine serving the request, while the RequestCtx is still
// valid. The Result is valid only during the call.
type Finisher interface {
	Finish(*Result)
}

// Handle forwards the request of ctx to a backend and sets up the response
// to stream back. rt is the request's route (ollamaapi.Lookup of its method
// and path, looked up once by the caller); nil looks it up. Connection
// failures before any response byte are retried on the next backend;
// errors are answered as JSON {"error": ...}. f, if not nil, is called
// exactly once with the Result.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx, rt *ollamaapi.Route, f Finisher) {
	if rt == nil {
		rt = ollamaapi.Lookup(ctx.Method(), ctx.Path())
	}
	x := p.exchanges.Get().(*exchange)
	x.ctx = ctx
	x.api = rt
	x.fin = f
	x.res = Result{Start: time.Now()}

	upReq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(upReq)
	ctx.Request.Header.CopyTo(&upReq.Header)
	x.scratch = stripRequestHopHeaders(&upReq.Header, x.scratch)
	// Expect was answered by our server already. A browser's Origin makes
	// a loopback Ollama answer 403; CORS is the gateway's business.
	upReq.Header.Del(fasthttp.HeaderExpect)
	upReq.Header.Del(fasthttp.HeaderOrigin)
	x.scratch = setForwardedHeaders(&upReq.Header, ctx, x.scratch)

	if err := x.prepareBody(upReq); err != nil {
		x.fail(err)
		return
	}
	upResp := fasthttp.AcquireResponse()
	buffered := rt.Buffered
	upResp.StreamBody = !buffered
	if err := x.roundTrip(upReq, upResp); err != nil {
		fasthttp.ReleaseResponse(upResp)
		if err == errBlobExists {
			// What Ollama answers for a blob it has, without the body.
			x.discardBody(ctx.RequestBodyStream())
			ctx.SetStatusCode(fasthttp.StatusOK)
			x.res.Status = fasthttp.StatusOK
			x.finish(nil)
			return
		}
		x.fail(err)
		return
	}
	if x.upload.active && !x.upload.eof {
		// The backend answered without reading the whole body: do not let
		// the server drain a possibly huge remainder for keep-alive.
		ctx.SetConnectionClose()
	}

	if s := upResp.StatusCode(); s < 100 || s > 599 || s == fasthttp.StatusSwitchingProtocols {
		// Never passed on: a 101 nobody asked for (the proxy forwards no
		// Upgrade) or a status HTTP does not have. deadlineConn does not
		// reuse the connection.
		if upResp.BodyStream() != nil {
			upResp.SetConnectionClose()
			_ = upResp.CloseBodyStream()
		}
		fasthttp.ReleaseResponse(upResp)
		x.backendFailed(x.res.Backend, errBadStatus)
		x.fail(errBadStatus)
		return
	}
	x.res.Status = upResp.StatusCode()
	copyResponseHeaders(&ctx.Response.Header, &upResp.Header)
	if buffered {
		x.passBuffered(upResp)
		return
	}
	body := upResp.BodyStream()
	if body == nil { // HEAD, 204, 304
		if ctx.IsHead() {
			ctx.Response.SkipBody = true
			ctx.Response.Header.SetContentLength(upResp.Header.ContentLength())
		}
		fasthttp.ReleaseResponse(upResp)
		x.finish(nil)
		return
	}
	size := upResp.Header.ContentLength()
	if size < 0 {
		// Chunked or until close: a stream. Send the headers at once so
		// the client sees the status before the first token.
		size = -1
		ctx.Response.ImmediateHeaderFlush = true
	}
	x.body = responseBody{x: x, up: upResp, body: body, track: isText(upResp.Header.ContentType()),
		bound: size < 0 || size > boundedWriteSize}
	ctx.SetBodyStream(&x.body, size)
}

// passBuffered sets a response read whole as the client's answer and ends
// the exchange.
func (x *exchange) passBuffered(upResp *fasthttp.Response) {
	body := upResp.Body()
	if len(body) > 0 {
		x.res.FirstByte = time.Since(x.res.Start)
		x.res.BytesOut = int64(len(body))
		if x.body.track = isText(upResp.Header.ContentType()); x.body.track {
			x.tail.write(body)
		}
	}
	x.ctx.SetBody(body)
	fasthttp.ReleaseResponse(upResp)
	x.finish(nil)
}

// prepareBody sets the upstream request body: streamed for model uploads,
// else read (up to the limit) so it can be replayed on another backend.
func (x *exchange) prepareBody(upReq *fasthttp.Request) error {
	ctx := x.ctx
	x.upload = uploadBody{}
	size := ctx.Request.Header.ContentLength()
	r := ctx.RequestBodyStream()
	if size == 0 || r == nil {
		return nil
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
	x.route.set(x.p.pool, x.api, b)
	return nil
}

// boundedWriteSize is the response size above which the client's write
// deadline is moved while the body is passed on; smaller fixed-size bodies
// are written in one go.
const boundedWriteSize = 64 << 10

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

// isText reports whether a response of this content type is JSON, NDJSON or
// SSE, whose tail is kept for metrics.
func isText(ct []byte) bool {
	return bytes.Contains(ct, []byte("json")) || bytes.HasPrefix(ct, []byte("text/event-stream"))
}

// roundTrip sends upReq to backends in round-robin order until one answers
// or an error may not be retried. A request routed by model (route.go)
// tries the available backends known to have its model first, each once in
// their own round-robin order (the stale-connection retry below goes to the
// same one if no other has the model), then the others as any request. At
// most max(2, pool size) attempts are made:
//   - a connection that could not be made (or no free connection) is
//     retried on the next backend: nothing was sent;
//   - a connection closed under us before any response byte (a stale
//     keep-alive connection) is retried once, after dropping that backend's
//     idle connections, so a single backend gets a fresh one. Only once: the
//     request may have reached a backend that then died on it, and it must
//     not be replayed on every backend in turn;
//   - anything else (a first-byte timeout, a malformed answer) is final;
//   - a streamed body that was read from cannot be sent again.
func (x *exchange) roundTrip(upReq *fasthttp.Request, upResp *fasthttp.Response) error {
	pool := x.p.pool
	pos := pool.next.Add(1) - 1
	attempts := max(2, pool.Len())
	staleRetried := false
	var err error
	for range attempts {
		b := x.route.next(pool)
		if b == nil {
			var at uint64
			b, at = pool.pick(pos)
			pos = at + 1
		}
		x.res.Backend = b
		x.setURI(upReq, b)
		if x.upload.streamed && !x.upload.started && x.api.HeadFirst {
			// Ollama answers a blob it already has without reading the
			// body, but fasthttp writes the whole body first and fails
			// on the closed connection: ask first, as Ollama's own
			// client does.
			if x.blobExists(upReq, b) {
				return errBlobExists
			}
		}
		b.inFlight.Add(1)
		err = b.client.Do(upReq, upResp)
		if err == nil {
			x.counted = true
			return nil
		}
		b.inFlight.Add(-1)
		if x.upload.err != nil {
			// The client's body failed, not the backend.
			return fmt.Errorf("%w: %w", ErrClientBody, x.upload.err)
		}
		err = safeError(err)
		x.backendFailed(b, err)
		kind := classify(err)
		if x.upload.streamed && (x.upload.started || !upReq.IsBodyStream()) {
			return err
		}
		switch kind {
		case failDial, failBusy:
			continue
		case failUnsafe:
			// Nothing was sent; the backend's other idle connections
			// are suspect too.
			b.client.CloseIdleConnections()
			x.route.retryLast()
			continue
		case failStale:
			if staleRetried {
				return err
			}
			staleRetried = true
			b.client.CloseIdleConnections()
			x.route.retryLast()
			continue
		}
		return err
	}
	return err
}

// backendFailed logs and reports a failed attempt to reach backend b.
func (x *exchange) backendFailed(b *Backend, err error) {
	x.p.opts.Logger.Warn("backend request failed", "backend", b.name, "err", err)
	if f := x.p.opts.OnBackendError; f != nil {
		f(b, err)
	}
}

// errBlobExists ends an upload the backend does not need.
var errBlobExists = errors.New("proxy: blob exists")

// blobExists asks backend b (HEAD, same URI as upReq) whether it has the
// blob; any failure means "no", and the upload goes ahead.
func (x *exchange) blobExists(upReq *fasthttp.Request, b *Backend) bool {
	head := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(head)
	defer fasthttp.ReleaseResponse(resp)
	upReq.Header.CopyTo(&head.Header)
	head.Header.SetMethod(fasthttp.MethodHead)
	head.Header.SetContentLength(0)
	head.SetRequestURIBytes(x.scratch) // setURI left upReq's full URI there
	resp.SkipBody = true
	if err := b.client.Do(head, resp); err != nil {
		return false
	}
	return resp.StatusCode() == fasthttp.StatusOK
}

// setURI points upReq at backend b: its scheme, host and path prefix, then
// the client's path and query exactly as sent.
func (x *exchange) setURI(upReq *fasthttp.Request, b *Backend) {
	s := x.scratch[:0]
	if b.client.IsTLS {
		s = append(s, "https://"...)
	} else {
		s = append(s, "http://"...)
	}
	s = append(s, b.host...)
	s = append(s, b.prefix...)
	uri := x.ctx.URI()
	path := uri.PathOriginal()
	if len(path) == 0 || path[0] != '/' {
		s = append(s, '/')
	}
	s = append(s, path...)
	if q := uri.QueryString(); len(q) > 0 {
		s = append(s, '?')
		s = append(s, q...)
	}
	upReq.SetRequestURIBytes(s)
	x.scratch = s
}

// fail answers the client with the status for err and ends the exchange.
func (x *exchange) fail(err error) {
	status, msg := statusFor(err)
	if status == fasthttp.StatusRequestEntityTooLarge {
		msg = fmt.Sprintf("request body too large: the limit is %d bytes", x.p.opts.MaxRequestBodyBytes)
	}
	WriteError(x.ctx, status, msg)
	x.res.Status = status
	x.finish(err)
}

// finish reports the result and returns x to the pool. It runs exactly once
// per exchange: from Handle when there is no body to stream, else when the
// server closes the body stream.
func (x *exchange) finish(err error) {
	x.res.Err = err
	x.res.Duration = time.Since(x.res.Start)
	if x.body.track {
		x.res.tail = x.tail.bytes()
	}
	if x.counted {
		x.res.Backend.inFlight.Add(-1)
	}
	if x.fin != nil {
		x.fin.Finish(&x.res)
	}
	x.fin = nil
	x.ctx = nil
	x.api = nil
	x.res = Result{}
	x.counted = false
	x.upload = uploadBody{}
	x.route.reset()
	x.body = responseBody{}
	x.tail.reset()
	x.p.exchanges.Put(x)
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
