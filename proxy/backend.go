package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Health is a backend's health as last observed.
type Health int32

// Backend states. A new backend is HealthUnknown and receives traffic; only
// HealthDown takes it out of rotation.
const (
	HealthUnknown Health = iota
	HealthUp
	HealthDown
)

// String returns "unknown", "up" or "down".
func (s Health) String() string {
	switch s {
	case HealthUp:
		return "up"
	case HealthDown:
		return "down"
	default:
		return "unknown"
	}
}

// BackendOptions tune the connection pool of one backend. The zero value of
// a field selects the default given in its comment.
type BackendOptions struct {
	// MaxConns caps concurrent connections (and so concurrent streams) to
	// the backend. Default 512.
	MaxConns int
	// ConnWaitTimeout is how long a request waits for a free connection when
	// MaxConns are busy before failing with fasthttp.ErrNoFreeConns.
	// Default 30 s.
	ConnWaitTimeout time.Duration
	// DialTimeout bounds the TCP (and TLS) connect. Default 10 s.
	DialTimeout time.Duration
	// FirstByteTimeout bounds the wait for the first response byte after
	// the request was written: model loads are slow. Default 10 min.
	FirstByteTimeout time.Duration
	// IdleTimeout bounds the silence between two reads of the response or
	// two writes of the request body, once bytes flow. Default 5 min.
	IdleTimeout time.Duration
	// MaxBufferedResponse caps the metadata answers that are read whole
	// instead of streamed (GET /api/tags and the like): a larger one fails
	// the request with 502. Default 16 MiB, far above any model list.
	MaxBufferedResponse int
}

func (o BackendOptions) withDefaults() BackendOptions {
	if o.MaxConns <= 0 {
		o.MaxConns = 512
	}
	if o.ConnWaitTimeout <= 0 {
		o.ConnWaitTimeout = 30 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.FirstByteTimeout <= 0 {
		o.FirstByteTimeout = 10 * time.Minute
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MaxBufferedResponse <= 0 {
		o.MaxBufferedResponse = 16 << 20
	}
	return o
}

// Backend is one Ollama server: its address, its connection pool, and its
// live state. That state lives here only: the proxy's selection, the health
// checker (through health.Target), /readyz and the metrics all read and
// write it on the Backend, which a reload carries over. Its address fields
// are immutable; its state is atomics, safe for concurrent use.
type Backend struct {
	name   string // the configured address, as operators know it
	host   string // Host header sent upstream: the backend's own host[:port]
	prefix string // path prefix of the configured URL, without trailing "/"
	client *fasthttp.HostClient

	// Live state, one atomic each, and lock-free tables of them: fleet
	// scheduling reads it all without a lock (inventory.go, capacity.go,
	// timings.go).
	state       atomic.Int32                 // a State: health, set by the checker
	inFlight    atomic.Int64                 // requests until their last byte
	models      atomic.Pointer[Models]       // the models it has (/api/tags); nil: unknown
	loaded      atomic.Pointer[LoadedModels] // the models in memory (/api/ps); nil: unknown
	sent        [sentSlots]sentModel         // models sent a request since the last /api/ps
	maxConc     atomic.Int64                 // cap on requests in flight; 0: none
	numParallel atomic.Int64                 // OLLAMA_NUM_PARALLEL: slots per model; 0: unknown
	maxLoaded   atomic.Int64                 // OLLAMA_MAX_LOADED_MODELS; 0: unknown
	busy        atomic.Int64                 // 1 + in-flight level of its last "server busy"; 0: none
	busyUntil   atomic.Int64                 // unix nanoseconds the busy level lasts until
	timings     [timingSlots]modelTimings    // learned load and generation times per model
}

// NewBackend parses rawURL (http or https, optional path prefix) and builds
// its connection pool.
func NewBackend(rawURL string, opts BackendOptions) (*Backend, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, fmt.Errorf("proxy: backend %q: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy: backend %q is not an http(s) URL", rawURL)
	}
	opts = opts.withDefaults()
	isTLS := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if isTLS {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	first, idle := opts.FirstByteTimeout, opts.IdleTimeout
	var tlsConf *tls.Config
	if isTLS {
		tlsConf = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	dial := func(addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), opts.DialTimeout)
		defer cancel()
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if tlsConf == nil {
			return newDeadlineConn(c, first, idle, true), nil
		}
		// The handshake is part of connecting: bounded by DialTimeout,
		// not by the first-byte budget. The returned conn has a Handshake
		// method, so fasthttp does not wrap it again.
		raw := newDeadlineConn(c, first, idle, false)
		tc := tls.Client(raw, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: c.RemoteAddr(), Err: err}
		}
		return &guardedTLSConn{Conn: tc, guard: reuseGuard{raw: raw}}, nil
	}
	hc := &fasthttp.HostClient{
		Addr:               addr,
		Name:               "",
		IsTLS:              isTLS,
		Dial:               dial,
		MaxConns:           opts.MaxConns,
		MaxConnWaitTimeout: opts.ConnWaitTimeout,
		// Retries are ours: across backends, and never after the request
		// body started to flow from a stream.
		MaxIdemponentCallAttempts: 1,
		// ReadTimeout and WriteTimeout are deadlines for a whole exchange
		// and would cut long generations; deadlineConn enforces first-byte
		// and idle timeouts instead.
		ReadTimeout:  0,
		WriteTimeout: 0,
		// Responses stream unless the request asks for one of Ollama's
		// small metadata answers (ollamaapi.Route.Buffered); those are
		// read whole, up to MaxResponseBodySize.
		StreamResponseBody:            false,
		MaxResponseBodySize:           opts.MaxBufferedResponse,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: true,
		// Parse errors name the problem, not the bytes (model output);
		// safeError also guards the messages that still quote some.
		SecureErrorLogMessage:    true,
		NoDefaultUserAgentHeader: true,
		ConnPoolStrategy:         fasthttp.LIFO,
		ReadBufferSize:           8 << 10,
		WriteBufferSize:          8 << 10,
	}
	hc.TLSConfig = tlsConf
	return &Backend{
		name:   strings.TrimSpace(rawURL),
		host:   u.Host,
		prefix: strings.TrimSuffix(u.EscapedPath(), "/"),
		client: hc,
	}, nil
}

// Name returns the backend's configured address, for logs and labels.
func (b *Backend) Name() string { return b.name }

// Health returns the backend's last observed health.
func (b *Backend) Health() Health { return Health(b.state.Load()) }

// SetHealth records the backend's health and reports whether it changed.
func (b *Backend) SetHealth(s Health) (changed bool) {
	return Health(b.state.Swap(int32(s))) != s
}

// SetHealthy records the result of a health check (up or down) and reports
// whether the state changed. It makes Backend a health.Target.
func (b *Backend) SetHealthy(up bool) (changed bool) {
	if up {
		return b.SetHealth(HealthUp)
	}
	return b.SetHealth(HealthDown)
}

// Down reports whether the backend is known to be down. It makes Backend a
// health.Target.
func (b *Backend) Down() bool { return Health(b.state.Load()) == HealthDown }

// Available reports whether the backend may receive new requests: it is
// not known to be down. It is the one predicate every selection uses.
func (b *Backend) Available() bool { return !b.Down() }

// InFlight returns the number of requests being served by the backend,
// streams included, until their last byte is passed on.
func (b *Backend) InFlight() int64 { return b.inFlight.Load() }

// Close releases the backend's idle connections. Requests in flight finish.
func (b *Backend) Close() { b.client.CloseIdleConnections() }
