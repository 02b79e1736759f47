package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxDrain bounds how much of a check's response body is read so that the
// connection can be reused. A larger body is cut and its connection closed.
const maxDrain = 64 << 10

// joinURL joins a backend's base URL and the check path with exactly one
// slash between them: "http://h:11434/" + "/" is "http://h:11434/" and
// "http://h/ollama" + "/api/version" is "http://h/ollama/api/version".
func joinURL(base, path string) string {
	return strings.TrimRight(strings.TrimSpace(base), "/") + "/" + strings.TrimLeft(path, "/")
}

// newClient returns the default check client: no redirects followed (a 3xx
// is a failure, like any non-2xx), no proxy from the environment (checks go
// straight to the backend, as the gateway's own requests do) and no
// Client.Timeout (each check's deadline comes from its context).
func newClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			MaxIdleConnsPerHost:   1,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// probe performs one check of url, bounded by c.timeout, and returns "" on
// success or the reason of the failure.
func (c *Checker) probe(ctx context.Context, url string) (reason string) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return failureReason(err, c.timeout)
	}
	// The status decides; the body is read only to reuse the connection,
	// and an error reading it says nothing the status did not.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "status " + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// failureReason turns a request error into a short reason for the log:
// "timeout after 5s", "connection refused", or the error without the
// "Get <url>:" prefix (the backend is logged beside it).
func failureReason(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout after " + timeout.String()
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return "timeout after " + timeout.String()
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "connection refused"
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err.Error()
	}
	return err.Error()
}
