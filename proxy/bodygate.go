package proxy

import (
	"io"

	"github.com/valyala/fasthttp"
)

// BodyGate is implemented by a Finisher that meters the request bodies the
// proxy buffers in memory (every body but the streamed model uploads):
// before reading such a body, the proxy asks GateBody for the reader to
// read it through, in place of r. size is the announced length, or -1 when the
// body is chunked (negative); it is at most Options.MaxRequestBodyBytes. The gate's
// reader may refuse the body with an error; a StatusError chooses the
// client's status and message, any other error is answered 400. The reader
// is used only until Handle returns.
type BodyGate interface {
	GateBody(ctx *fasthttp.RequestCtx, r io.Reader, size int64) io.Reader
}

// StatusError is an error that chooses the status and the message (safe to
// show the client) the proxy answers with, as a BodyGate's refusal does.
type StatusError interface {
	error
	HTTPStatus() (status int, msg string)
}

// BodyChecker is implemented by a Finisher that vets a request before any
// backend is chosen, once its buffered body has been read whole (nil for a
// request without a body), as the gateway checks the model a key may use.
// It is not called for streamed uploads (ollamaapi.Route.Upload). An error
// refuses the request: a StatusError chooses the status and message; any
// other error is answered 400.
type BodyChecker interface {
	CheckBody(body []byte) error
}
