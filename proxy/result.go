package proxy

import (
	"time"

	"github.com/valyala/fasthttp"
)

// tailSize is how much of the end of a text response is kept for
// Result.Tail: enough for Ollama's final NDJSON line (about 350 bytes) and
// an OpenAI usage chunk followed by "data: [DONE]".
const tailSize = 2048

// Result describes one finished exchange. It is passed to the Finisher given
// to Proxy.Handle and is valid only during its Finish call.
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
	hash uint64 // keyHash of the model the request named; 0: none
}

// ObserveLoad feeds fleet scheduling with what the response said: load is
// the model's load time it reported (Ollama's load_duration in its final
// NDJSON line; 0 if none). It learns, for the model and the backend that
// answered, the load time and the time of a request (Duration less load),
// which weigh waiting for a busy backend that has the model loaded against
// loading it on another. Call it from Finish for a complete successful
// response; a Result of a request that named no model ignores it.
func (r *Result) ObserveLoad(load time.Duration) {
	if r.hash == 0 || r.Backend == nil || r.Err != nil {
		return
	}
	r.Backend.observe(r.hash, load, r.Duration)
}

// Tail returns up to the last 2 KiB of a JSON, NDJSON or SSE response body
// (for a chat stream: its final line with the token counts), nil for other
// content types. The slice is valid only during the Finish call.
func (r *Result) Tail() []byte { return r.tail }

// Finisher is told the Result of an exchange once its response has been
// passed on completely or abandoned: for a stream, after Handle returned,
// from the goroutine serving the request, while the RequestCtx is still
// valid. The Result is valid only during the call.
type Finisher interface {
	Finish(*Result)
}

// ResponseModifier may be implemented by the Finisher given to Proxy.Handle
// to add headers of its own to the answer, as httputil.ReverseProxy's
// ModifyResponse does. ModifyResponse is called exactly once per request,
// from Handle, before Finish: after the backend's status and end-to-end
// headers were copied to ctx.Response (or the proxy's own error answer was
// set there), before anything is written to the client. It may set
// headers; it must not touch the body, which may be a stream.
type ResponseModifier interface {
	ModifyResponse(ctx *fasthttp.RequestCtx)
}

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
