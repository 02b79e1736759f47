package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

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
//   - a pooled connection that was unsafe to reuse (deadlineConn: unread
//     bytes, closed, or an ambiguous last response) is closed before any
//     byte is sent, with that backend's other idle connections, and the
//     request goes to the same backend again on a fresh one (once without
//     counting as an attempt; a request routed by model goes there unless
//     the scheduler finds another backend better now);
//   - anything else (a first-byte timeout, a malformed answer) is final;
//   - a streamed body that was read from cannot be sent again.
func (x *exchange) roundTrip(upReq *fasthttp.Request, upResp *fasthttp.Response) error {
	pool := x.p.pool
	pos := pool.next.Add(1) - 1
	attempts := max(2, pool.Len())
	busyLeft := pool.Len() + 1 // "server busy" answers retried or queued
	staleRetried := false
	unsafeLeft := 1 // an unsafe pooled connection retried, uncounted, on the same backend
	var err error
	x.pinBlobs(upReq)
	for attempt := 0; attempt < attempts; attempt++ {
		reserved := false
		b := x.takePin() // blob affinity (affinity.go), first attempt only
		var v verdict
		if b == nil {
			b, v = x.route.next(pool, &x.p.queue)
		} else {
			v = pickGo
		}
		switch v {
		case pickWait:
			if b, err = x.wait(); err != nil {
				return err
			}
			x.route.mark(pool.index(b))
			reserved = true
		case pickNone:
			if x.p.opts.LeastConnections && !x.route.named {
				b = pool.leastConnections(pos)
				pos++
			} else {
				var at uint64
				b, at = pool.pick(pos)
				pos = at + 1
			}
		}
		x.res.Backend = b
		x.setURI(upReq, b)
		if x.upload.streamed && !x.upload.started && x.api.HeadFirst {
			// Ollama answers a blob it already has without reading the
			// body, but fasthttp writes the whole body first and fails
			// on the closed connection: ask first, as Ollama's own
			// client does.
			if x.blobExists(upReq, b) {
				if reserved {
					x.route.sent.done()
					x.route.sent = nil
					x.p.release(b)
				}
				return errBlobExists
			}
		}
		if !reserved {
			b.inFlight.Add(1)
		}
		if x.route.named && x.route.sent == nil {
			// (A slot handed over by the queue was counted already.)
			x.route.sent = b.noteSent(x.route.hash, time.Now().UnixNano())
		}
		if x.route.loads && x.route.sent != nil {
			x.route.sent.loading.CompareAndSwap(0, time.Now().UnixNano())
		}
		err = b.client.Do(upReq, upResp)
		if err == nil {
			if x.route.named && busyLeft > 0 && isServerBusy(upResp) {
				// Ollama's own queue is full: never the client's answer
				// while another backend, or a slot here, can take it.
				busyLeft--
				attempt--
				x.backendFailed(b, errServerBusy)
				b.markBusy(b.inFlight.Load())
				if x.route.loads {
					x.route.sent.endLoad()
				}
				x.route.sent.done()
				x.route.sent = nil
				b.inFlight.Add(-1) // not released to the queue: no slot freed
				x.route.untry(pool.index(b))
				stream := upResp.StreamBody
				upResp.Reset()
				upResp.StreamBody = stream
				continue
			}
			x.counted = true
			x.p.loaded(b, x.route.sent)
			return nil
		}
		if x.route.loads {
			x.route.sent.endLoad()
		}
		x.route.sent.done()
		x.route.sent = nil
		x.p.release(b)
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
			// are suspect too. It stays the scheduler's candidate: the
			// next attempt goes there again on a fresh connection
			// unless another backend is better now.
			b.client.CloseIdleConnections()
			if unsafeLeft > 0 {
				unsafeLeft--
				attempt--
				x.route.untry(pool.index(b))
			}
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
	if err == nil {
		// Every attempt was answered "server busy".
		return errServerBusy
	}
	return err
}

// errServerBusy: backends answered Ollama's "server busy" (503) and no
// other could take the request.
var errServerBusy error = &QueueError{Err: errBusyAnswer, RetryAfter: time.Second}

// errBusyAnswer is the cause of errServerBusy: FailureKind "busy".
var errBusyAnswer = errors.New("proxy: the Ollama backend answered server busy")

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

// failure classifies an error from HostClient.Do for the retry decision.
type failure int

const (
	failOther  failure = iota // final: timeout, malformed answer, ...
	failDial                  // the connection could not be made: nothing was sent
	failBusy                  // every connection to the backend is busy: nothing was sent
	failStale                 // the connection closed before any response byte
	failUnsafe                // a pooled connection was unsafe to reuse: nothing was sent
)

// errBadStatus: the backend answered with a status the proxy does not pass
// on (outside 100-599, or 101).
var errBadStatus = errors.New("proxy: backend answered with an invalid status")

// FailureKind names the kind of a backend error for metrics: "connect",
// "busy" (no free connection, or Ollama's 503 server busy), "closed" (a connection closed before any response byte, or a
// pooled one unsafe to reuse), "timeout" or "other".
func FailureKind(err error) string {
	switch classify(err) {
	case failDial:
		return "connect"
	case failBusy:
		return "busy"
	case failStale, failUnsafe:
		return "closed"
	}
	if isTimeout(err) {
		return "timeout"
	}
	return "other"
}

func classify(err error) failure {
	switch {
	case isDialError(err), errors.Is(err, syscall.ECONNREFUSED):
		return failDial
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, errBusyAnswer):
		return failBusy
	case errors.Is(err, errUnsafeConn):
		return failUnsafe
	case errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return failStale
	}
	return failOther
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
