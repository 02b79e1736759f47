package gateway

import (
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/access"
)

// serveExpect decides a request that sent "Expect: 100-continue" (the
// server's ExpectHandler) from its headers, before the client sends the
// body: the IP rules and the key are checked first, and a refusal is the
// final answer (401, 403, 429), without 100 Continue, so no client without
// a key is invited to upload. It returns fasthttp.StatusContinue to let the
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
	}
	if ok && isConfigPath(path) {
		ok = g.adminAllowed(ctx, st, r)
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
