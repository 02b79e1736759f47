package proxy

import (
	"log/slog"
	"sync"
	"time"
)

// Options configure a Proxy. The zero value of a field selects the default
// given in its comment.
type Options struct {
	// MaxRequestBodyBytes caps request bodies, which are buffered so that a
	// failed attempt can be replayed on another backend. Larger bodies get
	// 413. Bodies of uploads (ollamaapi.Route.Upload: POST /api/blobs/*,
	// model files of gigabytes) are streamed instead and
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
	// Affinity, if set, sends blob uploads and the /api/create naming
	// their digests to the backend that took them (see Affinity). Default
	// nil: no affinity, every request is routed as any other.
	Affinity *Affinity
	// Logger receives backend errors. Default slog.Default().
	Logger *slog.Logger
	// LeastConnections sends requests that name no model to the available
	// backend with the fewest requests in flight (ties take turns).
	// Default false: round-robin.
	LeastConnections bool
	// QueueSize is how many requests may wait for a backend slot when
	// every backend that could serve them is full (queue.go). Unlike the
	// other fields, 0 means no queue: such a request is answered 503 with
	// Retry-After at once.
	QueueSize int
	// QueueTimeout is the longest a request waits in the queue before it
	// is answered 503 with Retry-After. Default 1 min.
	QueueTimeout time.Duration
	// OnQueue, if set, is called once for every request that found every
	// candidate backend full, when its wait ends: err is nil when it got a
	// slot, a *QueueError (queue full, timeout) or ErrClientGone.
	OnQueue func(waited time.Duration, err error)
	// OnPreload, if set, is called when a model load the gateway asked a
	// backend for ahead of the requests (preload.go) ends: err is nil
	// when the model is loaded.
	OnPreload func(b *Backend, err error)
}

// Proxy forwards requests to a Pool. It is immutable and safe for
// concurrent use.
type Proxy struct {
	pool      *Pool
	opts      Options
	exchanges sync.Pool
	queue     queue
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
	if opts.QueueTimeout <= 0 {
		opts.QueueTimeout = time.Minute
	}
	p := &Proxy{pool: pool, opts: opts}
	p.queue.size, p.queue.timeout = opts.QueueSize, opts.QueueTimeout
	p.exchanges.New = func() any { return &exchange{p: p} }
	return p
}

// Pool returns the proxy's backend pool.
func (p *Proxy) Pool() *Pool { return p.pool }
