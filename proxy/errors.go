package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// Errors the proxy answers with a status of its own.
var (
	// ErrBodyTooLarge: the request body exceeds Options.MaxRequestBodyBytes.
	ErrBodyTooLarge = errors.New("proxy: request body too large")
	// ErrClientBody: reading the request body from the client failed.
	ErrClientBody = errors.New("proxy: reading request body")
)

// WriteError answers ctx with status and a JSON body {"error": msg}, the
// shape Ollama itself uses for errors.
func WriteError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	b, err := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	if err != nil { // cannot happen for a struct of one string
		b = []byte(`{"error":"internal error"}`)
	}
	ctx.SetBody(b)
}

// statusFor maps an error from a backend exchange to the status the client
// gets and a message safe to show it.
func statusFor(err error) (int, string) {
	var se StatusError
	switch {
	case errors.As(err, &se):
		return se.HTTPStatus()
	case errors.Is(err, ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "request body too large"
	case errors.Is(err, ErrClientBody):
		return fasthttp.StatusBadRequest, "error reading request body"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusBadGateway, "the Ollama backend's answer is too large to pass on"
	case errors.Is(err, errBadStatus):
		return fasthttp.StatusBadGateway, "the Ollama backend sent an invalid response"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.StatusServiceUnavailable, "no Ollama backend available: all connections busy"
	case !isDialError(err) && isTimeout(err):
		return fasthttp.StatusGatewayTimeout, "Ollama backend did not answer in time"
	default:
		return fasthttp.StatusBadGateway, "no Ollama backend could be reached"
	}
}

// safeError returns err if its message cannot hold bytes of a backend's
// answer (model output, possibly personal data), else err wrapped so that
// its message only says what went wrong. fasthttp quotes the offending
// bytes in its parse errors ("contents: ..."). The allowlist is by identity
// and type of err itself, not of what it wraps: a wrapper's own message may
// quote bytes. errors.Is and errors.As still see the cause.
func safeError(err error) error {
	switch err.(type) {
	case nil, *net.OpError, syscall.Errno:
		return err
	}
	switch err {
	case io.EOF, io.ErrUnexpectedEOF, os.ErrDeadlineExceeded,
		fasthttp.ErrConnectionClosed, fasthttp.ErrNoFreeConns, fasthttp.ErrTimeout,
		fasthttp.ErrBodyTooLarge, errUnsafeConn, errBadStatus, errIncomplete:
		return err
	}
	if _, ok := err.(*unreadableError); ok {
		return err
	}
	return &unreadableError{err: err}
}

// unreadableError is a backend error whose own message may quote the
// backend's bytes; it shows only the kind of failure.
type unreadableError struct{ err error }

func (e *unreadableError) Error() string {
	return "proxy: the backend's answer could not be read (" + FailureKind(e.err) + ")"
}

func (e *unreadableError) Unwrap() error { return e.err }
