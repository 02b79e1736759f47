package ollamatest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
)

// abortedBuffer is the capacity of the channel returned by Server.Aborted.
const abortedBuffer = 1024

// Server is a fake Ollama listening on 127.0.0.1. Start it with [New]. All
// methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, e.g. "http://127.0.0.1:34567".
	URL string

	// Configuration, fixed once New returns, but for models, which a pull
	// extends (copy on write, guarded by modelsMu).
	modelsMu         sync.RWMutex
	models           []modelInfo
	tokens           []string
	delay            time.Duration
	paced            bool
	immediateHeaders bool

	// The scheduler (sched.go): nil unless an option asked for it.
	schedCfg     *scheduler.Config
	loadDelay    map[string]time.Duration // by canonical name
	loadDelayAll time.Duration
	preload      []string
	sched        *scheduler.Scheduler

	ts        *httptest.Server
	routes    map[string]map[string]http.HandlerFunc
	pace      pacer
	closing   chan struct{} // closed by Close: ends every wait
	closeOnce sync.Once

	requests     atomic.Int64
	inFlight     atomic.Int64
	abortedCount atomic.Int64
	blobBytes    atomic.Int64
	aborted      chan struct{}
	watch        scheduler.Watch // notified when a request starts or ends

	mu          sync.Mutex
	byPath      map[string]int64
	lastHeaders http.Header
	blobs       map[string]bool // uploaded digests, "sha256:<hex>" as sent
}

// Option configures a Server; pass options to [New].
type Option func(*Server)

// WithModels sets the models the server has at start; POST /api/pull adds
// more. The default is "llama3.2".
// A name without a tag is served as name+":latest". A request names a model
// if it matches a served name ignoring case, with ":latest" implied when it
// has no tag and an optional "registry.ollama.ai/" and "library/" prefix, as
// in Ollama: "llama3.2", "llama3.2:latest" and "library/llama3.2" all name
// "llama3.2:latest". WithModels() with no names serves no model at all.
func WithModels(names ...string) Option {
	return func(s *Server) {
		s.models = s.models[:0]
		for _, n := range names {
			s.models = append(s.models, newModelInfo(n))
		}
	}
}

// WithTokens sets the reply of every generation, as the tokens it is
// streamed in. The default is "The", " sky", " is", " blue", ".".
func WithTokens(tokens ...string) Option {
	return func(s *Server) { s.tokens = append([]string(nil), tokens...) }
}

// WithTokenDelay makes streams sleep d before every chunk after the first
// one; a non-streamed generation sleeps d per token before it answers. The
// default is 0. A client that goes away ends the sleep.
func WithTokenDelay(d time.Duration) Option {
	return func(s *Server) { s.delay = d }
}

// WithPaced makes every streamed chunk wait for one call of
// [Server.Release] before it is written: each NDJSON line of /api/chat,
// /api/generate and /api/pull, and each SSE event of /v1/chat/completions
// including the finish chunk, the usage chunk and "data: [DONE]". A
// 5-token chat stream needs 6 releases; the same reply over SSE needs 7, or
// 8 with include_usage. Non-streamed answers are not paced.
//
// The response headers go out with the first chunk, as in Ollama, so the
// client sees no response until the first release; see
// [WithImmediateHeaders]. A client that goes away ends the wait and is
// reported on [Server.Aborted].
func WithPaced() Option {
	return func(s *Server) { s.paced = true }
}

// WithImmediateHeaders makes streaming handlers send the status and headers
// before waiting for the first chunk (paced or delayed). Ollama itself sends
// them with the first chunk, which can take the whole model load time; by
// default the fake does the same.
func WithImmediateHeaders() Option {
	return func(s *Server) { s.immediateHeaders = true }
}

// New starts a fake Ollama on 127.0.0.1 and registers its Close with
// t.Cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		models:  []modelInfo{newModelInfo("llama3.2")},
		tokens:  []string{"The", " sky", " is", " blue", "."},
		closing: make(chan struct{}),
		aborted: make(chan struct{}, abortedBuffer),
		byPath:  make(map[string]int64),
		blobs:   make(map[string]bool),
	}
	s.pace.init()
	for _, o := range opts {
		o(s)
	}
	s.startScheduler(t)
	s.routes = s.newRoutes()
	s.addManageRoutes()
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.ts.URL
	t.Cleanup(s.Close)
	return s
}

// Release lets one more streamed chunk through on a paced server (see
// [WithPaced]). It never blocks: releases are counted, and a release given
// before a stream waits is kept for it. The count is shared by all streams
// of the server.
func (s *Server) Release() { s.pace.release() }

// Requests returns the number of requests received, on every path.
func (s *Server) Requests() int64 { return s.requests.Load() }

// RequestsTo returns the number of requests received whose URL path is
// exactly path (no query), e.g. "/api/chat".
func (s *Server) RequestsTo(path string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byPath[path]
}

// Aborted returns a channel that receives one value each time a generation
// ends because its client went away (its context was cancelled or a write
// failed) before the final chunk was written, or, with a scheduler (see
// [WithScheduler]), while it waited for its model or a slot. It is
// buffered (1024 values);
// when it is full further aborts are only counted by [Server.AbortedCount].
func (s *Server) Aborted() <-chan struct{} { return s.aborted }

// AbortedCount returns the number of aborted generations so far.
func (s *Server) AbortedCount() int64 { return s.abortedCount.Load() }

// InFlight returns the number of requests whose handler is running. A
// handler may return shortly after its client has read the whole response:
// poll rather than expect 0 at once.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// BlobBytes returns the number of request body bytes read by POST
// /api/blobs uploads so far, including those of failed uploads. It grows
// while an upload is being read.
func (s *Server) BlobBytes() int64 { return s.blobBytes.Load() }

// LastHeaders returns a copy of the headers of the most recent request (on
// any path). Like every http.Header of a server request, it has no Host
// entry: /_test/echo reports the Host. It is nil before the first request.
func (s *Server) LastHeaders() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeaders.Clone()
}

// Addr returns the listening address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.ts.Listener.Addr().String() }

// CloseClientConnections closes every client connection, idle keep-alive
// ones included, as a restarted Ollama would: a client's pooled connections
// go stale. The server keeps serving new connections.
func (s *Server) CloseClientConnections() { s.ts.CloseClientConnections() }

// Close stops the server: it ends paced and delayed waits, closes client
// connections and waits for handlers to return. It is idempotent and also
// runs at the end of the test that created the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.sched != nil {
			s.sched.Close()
		}
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// serveHTTP counts the request and dispatches it.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.inFlight.Add(1)
	s.watch.Notify()
	defer func() {
		s.inFlight.Add(-1)
		s.watch.Notify()
	}()
	s.mu.Lock()
	s.byPath[r.URL.Path]++
	s.lastHeaders = r.Header.Clone()
	s.mu.Unlock()

	if strings.HasPrefix(r.URL.Path, "/_test/") {
		s.serveTest(w, r)
		return
	}
	s.route(w, r)
}

// reportAbort records a generation cut short by its client.
func (s *Server) reportAbort() {
	s.abortedCount.Add(1)
	select {
	case s.aborted <- struct{}{}:
	default:
	}
	s.watch.Notify()
}

// pacer is a counting semaphore whose release never blocks: credits are
// counted, and each release wakes every waiter by closing the current
// generation channel so one of them can take the credit.
type pacer struct {
	mu      sync.Mutex
	credits int64
	wake    chan struct{}
}

func (p *pacer) init() { p.wake = make(chan struct{}) }

func (p *pacer) release() {
	p.mu.Lock()
	p.credits++
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// acquire takes one credit, waiting for a release until done or closing is
// closed. It reports whether it got the credit.
func (p *pacer) acquire(done, closing <-chan struct{}) bool {
	for {
		p.mu.Lock()
		if p.credits > 0 {
			p.credits--
			p.mu.Unlock()
			return true
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return false
		case <-closing:
			return false
		}
	}
}
