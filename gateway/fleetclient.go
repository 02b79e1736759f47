package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// Bounds on the gateway's own requests to backends.
const (
	// viewTimeout bounds a live fetch of a backend's list for a merged
	// view, used only while its list is not known.
	viewTimeout = 2 * time.Second
	// maxListBody bounds a list read live, as the checker bounds its own.
	maxListBody = 8 << 20
)

// fleetClient sends the gateway's own requests to backends: the live
// fallback of the merged views and the fleet-wide pulls and deletes. It
// follows no redirects and ignores proxy environment variables, like the
// health checker's. Safe for concurrent use.
type fleetClient struct {
	hc *http.Client
}

func newFleetClient() *fleetClient {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // a pull may take long to answer
	}
	return &fleetClient{hc: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *fleetClient) close() { c.hc.CloseIdleConnections() }

// backendURL joins a backend's configured base URL and path with one slash.
func backendURL(b *proxy.Backend, path string) string {
	return strings.TrimRight(b.Name(), "/") + path
}

// do sends method path with body (nil: none) to b. The caller closes the
// response body.
func (c *fleetClient) do(ctx context.Context, b *proxy.Backend, method, path string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, backendURL(b, path), r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.hc.Do(req)
}

// errList is a backend's list answer the gateway could not read.
var errList = errors.New("gateway: bad model list")

// list fetches a backend's model list at path (/api/tags, /api/ps),
// bounded by viewTimeout and maxListBody, and returns its raw entries.
func (c *fleetClient) list(ctx context.Context, b *proxy.Backend, path string) ([]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, viewTimeout)
	defer cancel()
	resp, err := c.do(ctx, b, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: status %d", errList, resp.StatusCode)
	}
	var list struct {
		Models *[]json.RawMessage `json:"models"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxListBody)).Decode(&list); err != nil {
		return nil, fmt.Errorf("%w: %w", errList, err)
	}
	if list.Models == nil {
		return nil, fmt.Errorf(`%w: no "models" member`, errList)
	}
	return *list.Models, nil
}
