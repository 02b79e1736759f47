package gateway

import (
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/access"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// serveExpect decides a request that sent "Expect: 100-continue" (the
// server's ExpectHandler) from its headers, before the client sends the
// body: the IP rules, the key and then the body's announced length
// (expectBody) are checked first, and a refusal is the final answer (401,
// 403, 413, 429, 503), without 100 Continue, so no client without a key,
// nor a body the gateway cannot take, is invited to upload. It returns fasthttp.StatusContinue to let the
// request go on to the handler, which checks everything again.
func (g *Gateway) serveExpect(ctx *fasthttp.RequestCtx) int {
	st := g.state.Load()
	p := st.policy
	path := string(ctx.Path())
	switch {
	case path == "/healthz" || path == "/readyz":
		return fasthttp.StatusContinue
	case ctx.IsOptions() && len(ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestMethod)) > 0:
		return fasthttp.StatusContinue // a CORS preflight: no credentials
	}
	r := g.newRequest(ctx, st)
	ok := g.checkIP(ctx, p, r)
	needKey := st.metricsPath == "" || path != st.metricsPath || p.metricsKey
	if ok && needKey {
		// Look the key up without authenticate's side effect (it removes
		// the header the handler will check again); on failure authenticate
		// answers as for any request, throttling included.
		r.key = p.keys.Lookup(access.ParseAuthorization(ctx.Request.Header.Peek(p.authHeader)))
		ok = r.key != nil || g.authenticate(ctx, p, r)
		ok = ok && g.notExpired(ctx, r)
	}
	if ok && isConfigPath(path) {
		ok = g.adminAllowed(ctx, st, r)
	}
	if ok && r.key != nil && !isConfigPath(path) && path != st.metricsPath {
		ok = g.checkKeyPolicy(ctx, st, r) && g.expectBody(ctx, st, r)
	}
	if ok {
		r.discard()
		return fasthttp.StatusContinue
	}
	if !isConfigPath(path) {
		p.corsHeaders(ctx)
	}
	status := ctx.Response.StatusCode()
	r.finishHere(ctx)
	return status
}

// isConfigPath reports whether path is in the gateway's admin namespace.
func isConfigPath(path string) bool {
	return len(path) >= len("/config/") && path[:len("/config/")] == "/config/"
}

// expectBody refuses, from its announced length, a body the proxy would
// buffer that is over proxy.maxRequestBodyBytes (413) or does not fit the
// body budget at this instant (503, or 429 for the key's share, with
// Retry-After), so the client does not send it. Nothing is reserved: the
// gate does that when the body comes.
func (g *Gateway) expectBody(ctx *fasthttp.RequestCtx, st *Snapshot, r *request) bool {
	size := int64(ctx.Request.Header.ContentLength())
	if size <= 0 || r.route.Upload {
		return true
	}
	if size > st.body.maxBody {
		proxy.WriteError(ctx, fasthttp.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body too large: the limit is %d bytes", st.body.maxBody))
		return false
	}
	if e := g.bodies.fits(r.key.ID, size, st.body.total, st.body.perKey); e != nil {
		proxy.WriteError(ctx, e.status, e.msg)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		return false
	}
	return true
}
