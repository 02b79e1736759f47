package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/access"
	"github.com/ollamagw/ollama-gateway/limiter"
	"github.com/ollamagw/ollama-gateway/ollamaapi"
	"github.com/ollamagw/ollama-gateway/proxy"
	"github.com/ollamagw/ollama-gateway/telemetry"
)

// request is the gateway's record of one request, pooled. It is the
// proxy's Finisher: metrics and the access log are written when the
// response has been passed on (for a stream, after the handler returned).
type request struct {
	g      *Gateway
	st     *Snapshot
	start  time.Time
	method telemetry.Method
	route  *ollamaapi.Route // looked up once, read by every step
	ep     ollamaapi.Class  // route's class, or ollamaapi.ClassMetrics
	ip     netip.Addr
	key    *access.Key
	slot   *limiter.Slot
	rated  bool // a rate applied: rate holds its decision
	rate   limiter.Decision
	model  []byte   // the model the body names, for CheckBody
	gate   bodyGate // the buffered request body, if any
	// refs counts the holders of r: the finisher, and serveProxy while the
	// proxy handles r. Both run on the goroutine serving the request, so
	// it needs no atomics; the last one returns r to the pool.
	refs int
}

var requests = sync.Pool{New: func() any { return new(request) }}

// The proxy finds the hooks by a type assertion: keep them checked.
var (
	_ proxy.ResponseModifier = (*request)(nil)
	_ proxy.Queuer           = (*request)(nil)
)

// QueueKey names the client for the fairness of the scheduling queue: the
// API key's public id, "" for requests without a key. It implements
// proxy.Queuer.
func (r *request) QueueKey() string {
	if r.key == nil {
		return ""
	}
	return r.key.Name
}

func (g *Gateway) newRequest(ctx *fasthttp.RequestCtx, st *Snapshot) *request {
	r := requests.Get().(*request)
	r.g, r.st, r.start = g, st, time.Now()
	r.refs = 1
	r.method = telemetry.ClassifyMethod(ctx.Method())
	r.route = ollamaapi.Lookup(ctx.Method(), ctx.Path())
	r.ep = r.route.Class()
	return r
}

// Finish records the request and returns r to the pool. It implements
// proxy.Finisher; the gateway calls it itself for requests it answered.
func (r *request) Finish(res *proxy.Result) {
	// The slot first: nothing below may keep a client's slot taken.
	r.slot.Release()
	r.slot = nil
	g := r.g
	var u telemetry.Usage
	if res.Status == fasthttp.StatusOK && res.Backend != nil {
		u = telemetry.UsageOf(r.route.Usage, res.Tail())
		// Fleet scheduling learns the model's load and request times.
		res.ObserveLoad(time.Duration(u.LoadNanos))
	}
	if r.key != nil {
		g.usage.Charge(r.key.ID, r.key.TokenWindow, int64(u.Prompt), int64(u.Completion), time.Now())
	}
	if m := g.metrics.Load(); m != nil {
		m.Request(r.method, r.ep, res.Status, time.Since(r.start), r.ip)
		if res.Backend != nil {
			m.Upstream(r.ep, res.Backend.Name(), res.FirstByte, u)
		}
	}
	if r.st.consolePath != "" { // the console's traffic ring (consoletraffic.go)
		g.console.traffic.record(time.Now(), u.Model, res.Status >= 500 || res.Err != nil, res.FirstByte, u.Completion)
	}
	if r.st.Config.Logging {
		r.log(res, u)
	}
	r.unref()
}

// handled runs when the proxy returned from handling r: the body buffer
// is gone, so its reservation is given back; a refusal for lack of budget
// gets Retry-After.
func (r *request) handled(ctx *fasthttp.RequestCtx) {
	if e := r.gate.err; e != nil && e.retryAfter {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	}
	r.gate.release()
	r.unref()
}

// unref drops one holder of r, returning r to the pool after the last.
func (r *request) unref() {
	if r.refs--; r.refs > 0 {
		return
	}
	*r = request{model: r.model[:0]}
	requests.Put(r)
}

// discard returns r to the pool without recording it: for a check that
// let the request go on to the handler, which records it.
func (r *request) discard() {
	*r = request{}
	requests.Put(r)
}

// ModifyResponse adds the gateway's own headers (CORS, rate limit) to the
// answer the proxy passes on, after the backend's. It implements
// proxy.ResponseModifier.
func (r *request) ModifyResponse(ctx *fasthttp.RequestCtx) {
	p := r.st.policy
	p.corsHeaders(ctx)
	if r.rated {
		setRateHeaders(ctx, r.rate)
	}
}

// finishHere finishes a request the gateway answered itself.
func (r *request) finishHere(ctx *fasthttp.RequestCtx) {
	r.Finish(&proxy.Result{Status: ctx.Response.StatusCode(), Start: r.start})
}

// log writes the access log line: never a key, only its public id.
func (r *request) log(res *proxy.Result, u telemetry.Usage) {
	attrs := make([]slog.Attr, 0, 13)
	attrs = append(attrs,
		slog.String("client_ip", r.ip.String()),
		slog.String("method", r.method.String()),
		slog.String("endpoint", r.ep.String()),
		slog.Int("status", res.Status),
		slog.Int64("bytes_out", res.BytesOut),
		slog.Float64("duration_ms", float64(time.Since(r.start).Microseconds())/1000),
	)
	if r.key != nil {
		attrs = append(attrs, slog.String("key_id", r.key.Name))
		if r.key.Label != "" {
			attrs = append(attrs, slog.String("key_name", r.key.Label))
		}
	}
	if res.Backend != nil {
		attrs = append(attrs,
			slog.String("backend", res.Backend.Name()),
			slog.Float64("ttfb_ms", float64(res.FirstByte.Microseconds())/1000))
	}
	if u.Model != "" {
		attrs = append(attrs, slog.String("model", u.Model),
			slog.Int("prompt_tokens", u.Prompt), slog.Int("completion_tokens", u.Completion))
	}
	if res.Err != nil {
		attrs = append(attrs, slog.String("err", res.Err.Error()))
	}
	r.g.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

// serveMetrics answers the metrics endpoint in the Prometheus text format.
func (g *Gateway) serveMetrics(ctx *fasthttp.RequestCtx) {
	m := g.metrics.Load()
	if m == nil { // turned off by a reload an instant ago
		proxy.WriteError(ctx, fasthttp.StatusNotFound, "metrics are disabled")
		return
	}
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	ctx.SetBody(buf.Bytes())
}
