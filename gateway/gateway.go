// Package gateway assembles the request path of ollama-gateway: the live
// configuration snapshot, the router of the gateway's own endpoints, and the
// fasthttp server, in front of the proxy to the Ollama backends.
//
// The request path reads top to bottom in serveProxy: load the snapshot
// once, then forward.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/health"
	"github.com/ollamagw/ollama-gateway/limiter"
	"github.com/ollamagw/ollama-gateway/ollamaapi"
	"github.com/ollamagw/ollama-gateway/proxy"
	"github.com/ollamagw/ollama-gateway/telemetry"
)

// Snapshot is an immutable snapshot of the running configuration and what is
// built from it. A request loads it once and uses it throughout, so a reload
// that swaps in a new Snapshot never changes a request midway.
type Snapshot struct {
	// Config is the configuration the snapshot was built from.
	Config *config.Config
	// Proxy forwards to the configured backends.
	Proxy *proxy.Proxy

	policy      *policy
	metricsPath string     // "" when metrics are off
	consolePath string     // "" when the console is off
	body        bodyLimits // on buffered request bodies
}

// buildSnapshot builds a snapshot from cfg, which must be valid
// (config.Config.Validate), taking backends from reuse by address where
// present.
func (g *Gateway) buildSnapshot(cfg *config.Config, reuse map[string]*proxy.Backend) (*Snapshot, error) {
	backends := make([]*proxy.Backend, 0, len(cfg.OllamaAddresses))
	opts := backendOptions(cfg)
	for i, addr := range cfg.OllamaAddresses {
		if b, ok := reuse[addr]; ok {
			backends = append(backends, b)
			continue
		}
		b, err := proxy.NewBackend(addr, opts)
		if err != nil {
			return nil, fmt.Errorf("ollamaAddresses[%d]: %w", i, err)
		}
		backends = append(backends, b)
	}
	for i, b := range backends {
		o := cfg.Address(i)
		b.SetCapacity(proxy.Capacity{MaxConcurrent: o.MaxConcurrent, NumParallel: o.NumParallel, MaxLoadedModels: o.MaxLoadedModels})
	}
	pool, err := proxy.NewPool(backends)
	if err != nil {
		return nil, fmt.Errorf("ollamaAddresses: %w", err)
	}
	pol, err := newPolicy(cfg)
	if err != nil {
		return nil, err
	}
	metricsPath := ""
	if cfg.Metrics.Enabled {
		metricsPath = cfg.Metrics.Endpoint
	}
	consolePath := ""
	if cfg.Console.Enabled {
		consolePath = cfg.Console.Path
	}
	return &Snapshot{
		Config:      cfg,
		policy:      pol,
		metricsPath: metricsPath,
		consolePath: consolePath,
		body:        newBodyLimits(cfg.Proxy),
		Proxy: proxy.New(pool, proxy.Options{
			MaxRequestBodyBytes: cfg.Proxy.MaxRequestBodyBytes,
			IdleTimeout:         cfg.Proxy.StreamIdleTimeout(),
			Logger:              g.log,
			OnBackendError:      g.backendError,
			Affinity:            g.affinity,
			LeastConnections:    cfg.LoadBalancer.Strategy == config.StrategyLeastConnections,
			QueueSize:           cfg.LoadBalancer.QueueSize,
			QueueTimeout:        cfg.LoadBalancer.QueueTimeout(),
			OnQueue:             g.queued,
			OnPreload:           g.preloaded,
		}),
	}, nil
}

// Gateway is the HTTP front of ollama-gateway. It is safe for concurrent
// use; its Snapshot may be swapped at any time.
type Gateway struct {
	state  atomic.Pointer[Snapshot]
	log    *slog.Logger
	router *router.Router

	// Limiter state outlives snapshots: a reload keeps every client's
	// bucket (adapting it to the new rate). Both are the same *limits,
	// local or shared through Redis (sharedlimits.go).
	limits limiter.Limiter
	conc   *limits
	// affinity maps blob digests to the backend holding them, across
	// reloads (create through several backends; see proxy.Affinity).
	affinity *proxy.Affinity
	// fleet sends the gateway's own requests to every backend: the
	// merged views' live fallback and fleet-wide pulls (fleetclient.go).
	fleet *fleetClient
	// bodies holds the budget of buffered request bodies, which outlives
	// snapshots too; bodyGrace is when their minimum rate starts.
	bodies    bodyBudget
	bodyGrace time.Duration
	// usage counts each key's requests and tokens (budgets, GET
	// /config/keys, the per-key metrics); it outlives snapshots.
	usage *usageStore
	// metrics is nil when metrics are off: the request path then skips
	// them at the cost of a nil check.
	metrics atomic.Pointer[telemetry.Metrics]
	// console is the operator console's state (consolestate.go), kept
	// whether or not the console is on, so turning it on by a reload
	// finds its notes.
	console *console

	path       string     // the configuration file, "" if none
	stamp      fileStamp  // of path, when New ran
	reloadMu   sync.Mutex // serializes reloads and key generation
	checker    atomic.Pointer[health.Checker]
	healthStop context.CancelFunc // guarded by reloadMu
	healthDone chan struct{}

	ctx  context.Context // canceled by Close
	stop context.CancelFunc
	bg   sync.WaitGroup // background goroutines
}

// New returns a gateway serving cfg. log receives startup, error and (when
// enabled) access logs; nil means slog.Default().
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Gateway, error) {
	if log == nil {
		log = slog.Default()
	}
	lim := newLimits()
	local := lim.local
	g := &Gateway{
		log:    log,
		limits: lim,
		conc:   lim,

		affinity: proxy.NewAffinity(0, 0),
		fleet:    newFleetClient(),
		console:  newConsole(),

		bodyGrace: defaultBodyGrace,
		usage:     newUsageStore(),
	}
	for _, o := range opts {
		o(g)
	}
	if g.path != "" {
		g.stamp = statOf(g.path)
	}
	st, err := g.buildSnapshot(cfg, nil)
	if err != nil {
		return nil, err
	}
	g.state.Store(st)
	g.warnAdminFallback(cfg)
	if cfg.Metrics.Enabled {
		g.metrics.Store(g.newMetrics(cfg.Metrics.Namespace))
	}
	g.ctx, g.stop = context.WithCancel(context.Background())
	if err := g.configureRedis(cfg); err != nil {
		g.stop()
		return nil, err
	}
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		// Idle buckets are dropped so memory follows active clients.
		local.Run(g.ctx, time.Minute)
	}()
	g.reloadMu.Lock()
	g.startHealth(st)
	g.reloadMu.Unlock()
	if st.policy.keys.Len() == 0 {
		log.Warn("no apiKeys configured: every request will be refused with 401")
	}

	r := router.New()
	// Every path not owned by the gateway belongs to Ollama, exactly as
	// sent: never answer with a redirect or a 405 of our own.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false
	r.HandleOPTIONS = false
	r.ANY("/config/{path:*}", g.serveConfig)
	r.GET("/healthz", g.serveLive)
	r.HEAD("/healthz", g.serveLive)
	r.GET("/readyz", g.serveReady)
	r.HEAD("/readyz", g.serveReady)
	r.NotFound = g.serveProxy
	r.PanicHandler = g.recoverPanic
	g.router = r
	return g, nil
}

// newMetrics returns the metrics of namespace ns, whose gauges read the live
// snapshot at scrape time.
func (g *Gateway) newMetrics(ns string) *telemetry.Metrics {
	return telemetry.New(telemetry.Options{
		Namespace: ns,
		APIKeys:   func() int { return g.Snapshot().policy.keyCount() + len(g.sharedKeySet().All()) },
		Keys: func(yield func(key string, requests, prompt, completion int64)) {
			now := time.Now()
			seen := map[string]bool{}
			for _, k := range g.allKeys() {
				u := g.usage.Usage(k.ID, k.TokenWindow, now).Total
				label := k.DisplayName()
				if seen[label] {
					label = k.Name // a name given twice: one series per key
				}
				seen[label] = true
				yield(label, u.Requests, u.PromptTokens, u.CompletionTokens)
			}
		},
		Servers: func() int { return g.Snapshot().Proxy.Pool().Len() },
		Backends: func(yield func(string, bool, int64)) {
			for _, b := range g.Snapshot().Proxy.Pool().Backends() {
				yield(b.Name(), b.Available(), b.InFlight())
			}
		},
		BackendModels: func(yield func(string, int)) {
			for _, b := range g.Snapshot().Proxy.Pool().Backends() {
				if m := b.Models(); m != nil {
					yield(b.Name(), m.Len())
				}
			}
		},
		QueueDepth: func() int { return g.Snapshot().Proxy.QueueLen() },
		BackendCapacity: func(yield func(string, int, int)) {
			for _, b := range g.Snapshot().Proxy.Pool().Backends() {
				loaded := -1
				if l := b.Loaded(); l != nil {
					loaded = l.Len()
				}
				yield(b.Name(), b.Capacity().MaxConcurrent, loaded)
			}
		},
	})
}

// queued counts the end of a request's wait for a backend slot.
func (g *Gateway) queued(d time.Duration, err error) {
	m := g.metrics.Load()
	if m == nil {
		return
	}
	o := telemetry.QueueDispatched
	switch {
	case errors.Is(err, proxy.ErrQueueFull):
		o = telemetry.QueueFull
	case errors.Is(err, proxy.ErrQueueTimeout):
		o = telemetry.QueueTimeout
	case errors.Is(err, proxy.ErrClientGone):
		o = telemetry.QueueClientGone
	}
	m.Queued(d, o)
}

// backendError counts a failed attempt to reach a backend.
func (g *Gateway) backendError(b *proxy.Backend, err error) {
	kind := proxy.FailureKind(err)
	g.console.backendError(b.Name(), kind, err)
	if m := g.metrics.Load(); m != nil {
		m.BackendError(b.Name(), kind)
	}
	// Passive health: a refused connection is conclusive, eject at once;
	// the next active check can bring the backend back.
	if kind == "connect" {
		if c := g.checker.Load(); c != nil {
			c.ReportFailure(b, err)
		}
	}
}

// preloaded counts the end of a model load asked ahead of the requests.
func (g *Gateway) preloaded(b *proxy.Backend, err error) {
	if m := g.metrics.Load(); m != nil {
		m.ModelPreload(b.Name(), err == nil)
	}
}

// Close stops the gateway's background work and closes the connections to
// its backends. The server must be shut down first.
func (g *Gateway) Close() {
	g.stop()
	g.reloadMu.Lock()
	if g.healthStop != nil {
		g.healthStop()
		<-g.healthDone
		g.healthStop = nil
	}
	g.reloadMu.Unlock()
	g.closeShared()
	g.bg.Wait()
	g.fleet.close()
	g.Snapshot().Proxy.Pool().Close()
}

// Snapshot returns the live snapshot.
func (g *Gateway) Snapshot() *Snapshot { return g.state.Load() }

// Handler returns the gateway's request handler.
func (g *Gateway) Handler() fasthttp.RequestHandler { return g.router.Handler }

// serveProxy is the request path for everything that is not a gateway
// endpoint, top to bottom: load the snapshot once, then IP check, CORS
// preflight, key, limits, forward. Every refusal is answered here as JSON.
func (g *Gateway) serveProxy(ctx *fasthttp.RequestCtx) {
	st := g.state.Load()
	p := st.policy
	r := g.newRequest(ctx, st)
	if st.consolePath != "" && underPath(ctx.Path(), st.consolePath) {
		g.serveConsole(ctx, st, r) // console.go
		return
	}
	if st.metricsPath != "" && string(ctx.Path()) == st.metricsPath {
		r.ep = ollamaapi.ClassMetrics
		if g.checkIP(ctx, p, r) && (!p.metricsKey || g.authenticate(ctx, p, r)) {
			g.serveMetrics(ctx)
		}
		r.finishHere(ctx)
		return
	}
	if !g.checkIP(ctx, p, r) || p.preflight(ctx) || !g.authenticate(ctx, p, r) || !g.limit(ctx, p, r) ||
		!g.checkKeyPolicy(ctx, st, r) {
		p.corsHeaders(ctx)
		r.finishHere(ctx)
		return
	}
	if r.route.View != ollamaapi.NoView && st.Proxy.Pool().Len() > 1 {
		// The fleet's merged list, answered here (fleetview.go).
		g.serveView(ctx, st, r.route.View, r.key.ModelFilter())
		r.ModifyResponse(ctx)
		r.finishHere(ctx)
		return
	}
	if r.route.FleetWide && fleetAll(ctx) && st.Proxy.Pool().Len() > 1 {
		// Every backend at once, for an admin (fleetwide.go).
		if !g.adminAllowed(ctx, st, r) {
			p.corsHeaders(ctx)
			r.finishHere(ctx)
			return
		}
		r.refs++
		defer r.handled(ctx)
		g.serveFleetWide(ctx, st, r)
		return
	}
	// The proxy calls r.ModifyResponse once the backend's headers are in
	// place, then r.Finish, maybe before Handle returns; r stays ours until
	// then, to give back what its body held.
	r.refs++
	defer r.handled(ctx)
	st.Proxy.Handle(ctx, r.route, r)
	if r.route.Buffered && r.key.Models != nil {
		r.filterListing(ctx)
	}
}

// serveConfig answers the gateway's admin namespace /config/*: admin scope.
func (g *Gateway) serveConfig(ctx *fasthttp.RequestCtx) {
	st := g.state.Load()
	p := st.policy
	r := g.newRequest(ctx, st)
	defer r.finishHere(ctx)
	if !g.checkIP(ctx, p, r) || !g.authenticate(ctx, p, r) || !g.limit(ctx, p, r) || !g.adminAllowed(ctx, st, r) {
		return
	}
	g.serveAdmin(ctx)
}

// adminAllowed applies the admin scope to an authenticated request: an
// admin key when admin keys are configured; else any API key, but only from
// a loopback client that did not come through a proxy (a local reverse
// proxy would make every remote client look local).
func (g *Gateway) adminAllowed(ctx *fasthttp.RequestCtx, st *Snapshot, r *request) bool {
	if st.policy.hasAdminKeys() {
		if !r.key.Admin {
			g.refuse(telemetry.AuthNotAdmin)
			proxy.WriteError(ctx, fasthttp.StatusForbidden, "admin key required")
			return false
		}
		return true
	}
	if !directLoopback(ctx) {
		g.refuse(telemetry.AuthNotAdmin)
		proxy.WriteError(ctx, fasthttp.StatusForbidden,
			"admin endpoints need an admin key (adminKeys) or a direct loopback client")
		return false
	}
	return true
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
	cfg := g.Snapshot().Config
	return &fasthttp.Server{
		Handler:      g.Handler(),
		ErrorHandler: g.serveBadRequest,
		// Expect: 100-continue is answered only once the client may send.
		ExpectHandler: g.serveExpect,
		Name:          "ollama-gateway",
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
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		// fasthttp's error messages quote raw request bytes, keys
		// included: leave the dump out, and let serverLog pass on no
		// request text at all.
		SecureErrorLogMessage: true,
		Logger:                serverLog{g.log},
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

// The health checker keeps a backend's model list and loaded models on it.
var (
	_ health.ModelTarget  = (*proxy.Backend)(nil)
	_ health.LoadedTarget = (*proxy.Backend)(nil)
)
