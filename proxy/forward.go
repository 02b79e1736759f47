package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// exchange is the per-request state of the proxy, pooled. It lives until the
// response body has been passed on, which is after Handle returns.
type exchange struct {
	p       *Proxy
	ctx     *fasthttp.RequestCtx
	res     Result
	api     *ollamaapi.Route // the request's route
	counted bool             // res.Backend.inFlight was incremented
	fin     Finisher
	mod     ResponseModifier // fin, if it is one
	upload  uploadBody
	route   route    // model-aware selection, set with the buffered body
	pin     *Backend // blob affinity: tried first (affinity.go)
	waiter  waiter   // its place in the queue, when it waits
	body    responseBody
	tail    ring
	scratch []byte

	addedUsage bool       // askUsage asked the stream for its usage
	rewrite    []byte     // askUsage's buffer
	strip      usageStrip // cuts that usage out of the answer
}

// Handle forwards the request of ctx to a backend and sets up the response
// to stream back. rt is the request's route (ollamaapi.Lookup of its method
// and path, looked up once by the caller); nil looks it up. Connection
// failures before any response byte are retried on the next backend;
// errors are answered as JSON {"error": ...}. f, if not nil, is called
// exactly once with the Result; if it is also a ResponseModifier, its
// ModifyResponse is called before, once the response's status and headers
// are set.
func (p *Proxy) Handle(ctx *fasthttp.RequestCtx, rt *ollamaapi.Route, f Finisher) {
	if rt == nil {
		rt = ollamaapi.Lookup(ctx.Method(), ctx.Path())
	}
	x := p.exchanges.Get().(*exchange)
	x.ctx = ctx
	x.api = rt
	x.fin = f
	x.mod, _ = f.(ResponseModifier)
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
			x.modify()
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
	x.modify()
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
	ct := upResp.Header.ContentType()
	x.body = responseBody{x: x, up: upResp, body: body, track: isText(ct),
		bound: size < 0 || size > boundedWriteSize,
		strip: x.addedUsage && size < 0 && x.res.Status == fasthttp.StatusOK && bytes.HasPrefix(ct, []byte("text/event-stream"))}
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

// boundedWriteSize is the response size above which the client's write
// deadline is moved while the body is passed on; smaller fixed-size bodies
// are written in one go.
const boundedWriteSize = 64 << 10

// isText reports whether a response of this content type is JSON, NDJSON or
// SSE, whose tail is kept for metrics.
func isText(ct []byte) bool {
	return bytes.Contains(ct, []byte("json")) || bytes.HasPrefix(ct, []byte("text/event-stream"))
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
	var qe *QueueError
	if errors.As(err, &qe) {
		x.ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, qe.retryAfter())
	}
	x.res.Status = status
	x.modify()
	x.finish(err)
}

// modify lets the Finisher add its headers, once the response's own are
// set.
func (x *exchange) modify() {
	if x.mod != nil {
		x.mod.ModifyResponse(x.ctx)
	}
}

// finish reports the result and returns x to the pool. It runs exactly once
// per exchange: from Handle when there is no body to stream, else when the
// server closes the body stream.
func (x *exchange) finish(err error) {
	x.rememberBlob()
	x.res.Err = err
	x.res.Duration = time.Since(x.res.Start)
	if x.body.track {
		x.res.tail = x.tail.bytes()
	}
	if x.route.named {
		x.res.hash = x.route.hash
	}
	if x.counted {
		x.route.sent.done()
		x.p.release(x.res.Backend)
	}
	if x.fin != nil {
		x.fin.Finish(&x.res)
	}
	x.fin, x.mod = nil, nil
	x.ctx = nil
	x.api = nil
	x.res = Result{}
	x.counted = false
	x.pin = nil
	x.upload = uploadBody{}
	x.route.reset()
	x.body = responseBody{}
	x.tail.reset()
	x.addedUsage = false
	x.strip.reset()
	x.p.exchanges.Put(x)
}
