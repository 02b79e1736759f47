package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/valyala/fasthttp"
)

// serverLog receives the fasthttp server's own messages. fasthttp puts
// raw request bytes into some of them: the "contents: ..." dump of a
// request it could not parse, and header values ("invalid header value
// %q") even with SecureErrorLogMessage. Those bytes can hold a key
// (Authorization, Cookie, the configured auth header), so no text fasthttp
// built from a request reaches the log: a failed connection is logged as a
// fixed kind and the client's address, and other messages with their
// format and only their numeric arguments.
type serverLog struct{ log *slog.Logger }

// connErrorFormat is the message fasthttp's worker pool logs when serving a
// connection failed (workerpool.go, fasthttp v1.78).
const connErrorFormat = "error when serving connection %q<->%q: %v"

func (l serverLog) Printf(format string, args ...any) {
	if format == connErrorFormat && len(args) == 3 {
		err, _ := args[2].(error)
		l.log.Warn("client connection error", "component", "fasthttp",
			"client_ip", addrIP(args[1]), "kind", connErrorKind(err))
		return
	}
	safe := make([]any, len(args))
	for i, a := range args {
		switch a.(type) {
		case int, int64, int32, uint, uint64, uint32, float64, bool:
			safe[i] = a
		default:
			safe[i] = "[redacted]"
		}
	}
	l.log.Warn(fmt.Sprintf(format, safe...), "component", "fasthttp")
}

// addrIP returns the IP of a net.Addr argument, "" for anything else.
func addrIP(a any) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case net.Addr:
		if host, _, err := net.SplitHostPort(a.String()); err == nil {
			return host
		}
	}
	return ""
}

// connErrorKind names what went wrong on a client connection from a fixed
// vocabulary. The error's text is only matched, never returned: it may
// hold request bytes.
func connErrorKind(err error) string {
	if err == nil {
		return "unknown"
	}
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrSmallReadBuffer):
		return "request headers too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "request body too large"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, fasthttp.ErrDuplicateContentLength), errors.Is(err, fasthttp.ErrNonNumericChars):
		return "bad Content-Length"
	case errors.Is(err, fasthttp.ErrUnsupportedTransferEncoding):
		return "bad Transfer-Encoding"
	case errors.Is(err, fasthttp.ErrUnsupportedRequestMethod), errors.Is(err, fasthttp.ErrMissingRequestMethod):
		return "bad method"
	}
	// fasthttp's messages, matched in order: the structural part of each
	// comes before any quoted request data.
	msg := strings.ToLower(err.Error())
	for _, k := range connErrorKinds {
		if strings.Contains(msg, k.match) {
			return k.kind
		}
	}
	return "malformed request"
}

var connErrorKinds = []struct{ match, kind string }{
	{"i/o timeout", "timeout"},
	{"reset by peer", "connection reset"},
	{"broken pipe", "connection reset"},
	{"unexpected eof", "client closed the connection"},
	{"request headers: eof", "client closed the connection"},
	{"invalid header key", "malformed header"},
	{"invalid header value", "malformed header"},
	{"content-length", "bad Content-Length"},
	{"transfer-encoding", "bad Transfer-Encoding"},
	{"host header", "bad Host"},
	{"request method", "bad method"},
	{"http version", "bad HTTP version"},
	{"request uri", "bad request URI"},
	{"requesturi", "bad request URI"},
	{"whitespace", "bad request line"},
	{"chunk", "bad chunked body"},
	{"trailer", "bad trailer"},
}
