// Package gateway assembles the request path of ollama-gateway: the live
// configuration snapshot, the router of the gateway's own endpoints, and the
// fasthttp server, in front of the proxy to the Ollama backends.
//
// The request path reads top to bottom in serveProxy: load the snapshot
// once, then forward.
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// State is an immutable snapshot of the running configuration and what is
// built from it. A request loads it once and uses it throughout, so a reload
// that swaps in a new State never changes a request midway.
type State struct {
	// Config is the configuration the snapshot was built from.
	Config *config.Config
	// Proxy forwards to the configured backends.
	Proxy *proxy.Proxy
}

// NewState builds a snapshot from cfg, which must be valid
// (config.Config.Validate).
func NewState(cfg *config.Config, log *slog.Logger) (*State, error) {
	backends := make([]*proxy.Backend, 0, len(cfg.OllamaAddresses))
	opts := proxy.BackendOptions{
		MaxConns:         cfg.Proxy.MaxConnsPerBackend,
		ConnWaitTimeout:  cfg.Proxy.ConnWaitTimeout(),
		FirstByteTimeout: cfg.Proxy.FirstByteTimeout(),
		IdleTimeout:      cfg.Proxy.StreamIdleTimeout(),
	}
	for i, addr := range cfg.OllamaAddresses {
		b, err := proxy.NewBackend(addr, opts)
		if err != nil {
			return nil, fmt.Errorf("ollamaAddresses[%d]: %w", i, err)
		}
		backends = append(backends, b)
	}
	pool, err := proxy.NewPool(backends)
	if err != nil {
		return nil, fmt.Errorf("ollamaAddresses: %w", err)
	}
	return &State{
		Config: cfg,
		Proxy: proxy.New(pool, proxy.Options{
			MaxRequestBodyBytes: cfg.Proxy.MaxRequestBodyBytes,
			IdleTimeout:         cfg.Proxy.StreamIdleTimeout(),
			Logger:              log,
		}),
	}, nil
}

// Gateway is the HTTP front of ollama-gateway. It is safe for concurrent
// use; its State may be swapped at any time.
type Gateway struct {
	state  atomic.Pointer[State]
	log    *slog.Logger
	router *router.Router
}

// New returns a gateway serving cfg. log receives startup, error and (when
// enabled) access logs; nil means slog.Default().
func New(cfg *config.Config, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.Default()
	}
	st, err := NewState(cfg, log)
	if err != nil {
		return nil, err
	}
	g := &Gateway{log: log}
	g.state.Store(st)

	r := router.New()
	// Every path not owned by the gateway belongs to Ollama, exactly as
	// sent: never answer with a redirect or a 405 of our own.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false
	r.HandleOPTIONS = false
	r.ANY("/config/{path:*}", g.serveConfig)
	r.NotFound = g.serveProxy
	r.PanicHandler = g.recoverPanic
	g.router = r
	return g, nil
}

// State returns the live snapshot.
func (g *Gateway) State() *State { return g.state.Load() }

// Handler returns the gateway's request handler.
func (g *Gateway) Handler() fasthttp.RequestHandler { return g.router.Handler }

// serveProxy is the request path for everything that is not a gateway
// endpoint.
func (g *Gateway) serveProxy(ctx *fasthttp.RequestCtx) {
	st := g.state.Load()
	st.Proxy.Handle(ctx)
}

// serveConfig answers the gateway's admin namespace /config/*.
func (g *Gateway) serveConfig(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/config/reload", "/config/new-key":
		proxy.WriteError(ctx, fasthttp.StatusNotImplemented, "not implemented in this version")
	default:
		proxy.WriteError(ctx, fasthttp.StatusNotFound, "unknown gateway endpoint")
	}
}

func (g *Gateway) recoverPanic(ctx *fasthttp.RequestCtx, v any) {
	g.log.Error("panic serving request", "method", string(ctx.Method()), "path", string(ctx.Path()), "panic", fmt.Sprint(v))
	proxy.WriteError(ctx, fasthttp.StatusInternalServerError, "internal gateway error")
}

// NewServer returns a fasthttp server for g, tuned for streaming: no write
// deadline for a whole response (generations run for minutes; the proxy
// bounds each chunk instead), a header read deadline against slowloris, and
// request bodies streamed so model uploads never sit in memory.
func (g *Gateway) NewServer() *fasthttp.Server {
	cfg := g.State().Config
	return &fasthttp.Server{
		Handler:      g.Handler(),
		ErrorHandler: g.serveBadRequest,
		Name:         "ollama-gateway",
		// ReadTimeout covers the request line and headers (and the part of
		// the body read with them); the proxy moves the deadline while it
		// reads a body.
		ReadTimeout:                  cfg.Proxy.HeaderReadTimeout(),
		IdleTimeout:                  cfg.Proxy.ClientIdleTimeout(),
		WriteTimeout:                 0,
		ReadBufferSize:               16 << 10,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{g.log},
	}
}

// serveBadRequest answers requests the server could not parse.
func (g *Gateway) serveBadRequest(ctx *fasthttp.RequestCtx, err error) {
	status, msg := fasthttp.StatusBadRequest, "malformed request"
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer):
		status, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, msg = fasthttp.StatusRequestEntityTooLarge, "request body too large"
	case errors.As(err, &netErr) && netErr.Timeout():
		status, msg = fasthttp.StatusRequestTimeout, "request headers not received in time"
	}
	proxy.WriteError(ctx, status, msg)
	ctx.SetConnectionClose()
}

// fasthttpLogger routes fasthttp's own messages to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
