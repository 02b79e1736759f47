package gateway

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/access"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/limiter"
	"github.com/ollamagw/ollama-gateway/proxy"
	"github.com/ollamagw/ollama-gateway/telemetry"
)

// scopeAuthFail keeps failed-authentication buckets (keyed by IP) apart from
// request buckets in the same limiter.
const scopeAuthFail = 1

// policy is the access-control part of a Snapshot, precomputed from the
// config so the request path only reads.
type policy struct {
	keys       *access.KeySet
	signed     *access.PublicKeySet
	authHeader string
	allow      *access.IPSet
	deny       *access.IPSet
	trusted    *access.IPSet

	rateOn        bool
	rate          limiter.Rate
	perKey        map[[16]byte]limiter.Rate
	maxConcurrent int
	authFailRate  limiter.Rate

	origins    map[string]bool
	anyOrigin  bool
	metricsKey bool

	anyKeyManagesModels bool // security.modelManagement is "any"
}

func newPolicy(cfg *config.Config) (*policy, error) {
	p := &policy{
		keys:       access.NewKeySet(cfg.APIKeys, cfg.AdminKeys),
		signed:     access.NewPublicKeySet(cfg.APIPublicKeys, cfg.AdminPublicKeys),
		authHeader: cfg.AuthHeaderName,
		rateOn:     cfg.RateLimit.Enabled,
		rate: limiter.Rate{
			Limit:  cfg.RateLimit.MaxRequests,
			Window: cfg.RateLimit.Window(),
		},
		maxConcurrent: cfg.RateLimit.MaxConcurrent,
		authFailRate:  limiter.Rate{Limit: cfg.RateLimit.AuthFailuresPerMinute, Window: time.Minute},
		origins:       map[string]bool{},
		metricsKey:    cfg.Metrics.RequireKey,

		anyKeyManagesModels: cfg.Security.AnyKeyManagesModels(),
	}
	var err error
	if p.allow, err = access.NewIPSet(cfg.Security.AllowIPs); err != nil {
		return nil, err
	}
	if p.deny, err = access.NewIPSet(cfg.Security.DenyIPs); err != nil {
		return nil, err
	}
	if p.trusted, err = access.NewIPSet(cfg.Security.TrustedProxies); err != nil {
		return nil, err
	}
	if perKey := cfg.PerKeyDigests(); len(perKey) > 0 {
		p.perKey = make(map[[16]byte]limiter.Rate, len(perKey))
		for d, r := range perKey {
			var id [16]byte
			copy(id[:], d[:16])
			p.perKey[id] = limiter.Rate{Limit: r.MaxRequests, Window: r.Window()}
		}
	}
	for _, o := range cfg.Security.AllowedOrigins {
		if o == "*" {
			p.anyOrigin = true
		}
		p.origins[o] = true
	}
	return p, nil
}

// keyCount returns the number of distinct keys, public keys and admin
// keys included.
func (p *policy) keyCount() int { return p.keys.Len() + p.signed.Len() }

// allKeys returns every configured key, secret and public ones, each set
// ordered by id.
func (p *policy) allKeys() []*access.Key { return append(p.keys.All(), p.signed.All()...) }

// hasAdminKeys reports whether adminKeys lists any key, public keys
// included.
func (p *policy) hasAdminKeys() bool { return p.keys.HasAdminKeys() || p.signed.HasAdminKeys() }

// rateFor returns the rate of an authenticated key, and false when none
// applies: the key's own rate (its entry's rateLimit) whether or not rate
// limiting is enabled, else, when it is, its rateLimit.perKey override or
// the global rate.
func (p *policy) rateFor(k *access.Key) (limiter.Rate, bool) {
	if k.RateLimit > 0 {
		return limiter.Rate{Limit: k.RateLimit, Window: k.RateWindow}, true
	}
	if !p.rateOn {
		return limiter.Rate{}, false
	}
	if r, ok := p.perKey[k.ID]; ok {
		return r, true
	}
	return p.rate, true
}

// checkIP resolves the client address (behind trusted proxies) into r.ip
// and refuses a denied one (403), or a request whose forwarding headers
// from a trusted proxy cannot be read (400). It runs first: a denied IP
// learns nothing about keys.
func (g *Gateway) checkIP(ctx *fasthttp.RequestCtx, p *policy, r *request) bool {
	r.ip = peerAddr(ctx)
	if p.trusted.Len() > 0 {
		ip, err := access.ClientIP(r.ip, &ctx.Request.Header, p.trusted)
		if err != nil {
			// Never fall back to the proxy's address: that would let a
			// denied client through. r.ip stays the proxy's, for the log.
			g.refuse(telemetry.AuthForbiddenIP)
			proxy.WriteError(ctx, fasthttp.StatusBadRequest, "cannot tell the client's address: "+err.Error())
			return false
		}
		r.ip = ip
	}
	if p.deny.Contains(r.ip) || (p.allow.Len() > 0 && !p.allow.Contains(r.ip)) {
		g.refuse(telemetry.AuthForbiddenIP)
		proxy.WriteError(ctx, fasthttp.StatusForbidden, "forbidden")
		return false
	}
	return true
}

// authenticate finds the request's key into r.key and removes it from the
// request: Ollama never sees the client's credentials. Failures are
// throttled per IP, so keys cannot be guessed.
func (g *Gateway) authenticate(ctx *fasthttp.RequestCtx, p *policy, r *request) bool {
	presented := ctx.Request.Header.Peek(p.authHeader)
	cred := access.ParseAuthorization(presented)
	r.key = p.keys.Lookup(cred)
	if r.key == nil {
		// config.json's keys win; then the keys shared through Redis.
		if sk := g.sharedKeySet(); sk != nil {
			r.key = sk.Lookup(cred)
		}
	}
	if r.key != nil {
		ctx.Request.Header.Del(p.authHeader)
		return g.notExpired(ctx, r)
	}
	var signedErr error
	if p.signed.Len() > 0 {
		if r.key, signedErr = authenticateSigned(ctx, p); r.key != nil {
			return g.notExpired(ctx, r)
		}
	}
	if d := g.limits.Allow(limiter.AddrKey(r.ip).WithScope(scopeAuthFail), p.authFailRate, ctx.Time()); !d.Allowed {
		g.refuse(telemetry.AuthThrottled)
		tooMany(ctx, d, "too many failed authentications")
		return false
	}
	reason, msg := telemetry.AuthInvalidKey, "invalid API key"
	switch {
	case signedErr != nil && !errors.Is(signedErr, access.ErrNotSigned):
		msg = signedErr.Error()
	case len(presented) == 0:
		reason, msg = telemetry.AuthMissingKey, "missing API key: send it in the "+p.authHeader+" header"
	}
	g.refuse(reason)
	proxy.WriteError(ctx, fasthttp.StatusUnauthorized, msg)
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, "Bearer")
	return false
}

// authenticateSigned checks a request signed as Ollama's client signs with
// OLLAMA_AUTH=1 (see access.PublicKeySet.Authenticate) against the listed
// public keys: the Authorization header whatever authHeaderName is, since
// the client cannot send another. On success it removes the signature
// (and authHeaderName's header) and the ts query parameter, which Ollama
// would not understand. The plain-key path never comes here when its key
// matched.
func authenticateSigned(ctx *fasthttp.RequestCtx, p *policy) (*access.Key, error) {
	h := &ctx.Request.Header
	uri := ctx.URI()
	k, rest, err := p.signed.Authenticate(h.Peek(fasthttp.HeaderAuthorization), ctx.Method(),
		uri.PathOriginal(), uri.QueryString(), ctx.Time())
	if k == nil {
		return nil, err
	}
	h.Del(fasthttp.HeaderAuthorization)
	h.Del(p.authHeader)
	uri.SetQueryStringBytes(rest)
	return k, nil
}

// limit applies the authenticated key's rate and concurrency limits. The
// rate decision is kept in r.rate for the X-RateLimit-* headers; a
// concurrency slot is held in r.slot until the response is passed on.
func (g *Gateway) limit(ctx *fasthttp.RequestCtx, p *policy, r *request) bool {
	rate, ok := p.rateFor(r.key)
	if !ok {
		return true
	}
	lk := limiter.IDKey(r.key.ID)
	r.rated = true
	r.rate = g.limits.Allow(lk, rate, ctx.Time())
	if !r.rate.Allowed {
		if m := g.metrics.Load(); m != nil {
			m.RateLimited()
		}
		tooMany(ctx, r.rate, "rate limit exceeded")
		setRateHeaders(ctx, r.rate)
		return false
	}
	if p.rateOn && p.maxConcurrent > 0 {
		slot, ok := g.conc.Acquire(lk, p.maxConcurrent)
		if !ok {
			if m := g.metrics.Load(); m != nil {
				m.RateLimited()
			}
			proxy.WriteError(ctx, fasthttp.StatusTooManyRequests, "too many concurrent requests")
			return false
		}
		r.slot = slot
	}
	return true
}

// refuse counts an access-control refusal.
func (g *Gateway) refuse(reason telemetry.AuthFailure) {
	if m := g.metrics.Load(); m != nil {
		m.AuthFailed(reason)
	}
}

// tooMany answers 429 with Retry-After in whole seconds, rounded up; 503
// when a shared limiter could not decide (redis.failMode "closed").
func tooMany(ctx *fasthttp.RequestCtx, d limiter.Decision, msg string) {
	if d.Unavailable {
		msg = "rate limiter unavailable, try again later"
		proxy.WriteError(ctx, fasthttp.StatusServiceUnavailable, msg)
	} else {
		proxy.WriteError(ctx, fasthttp.StatusTooManyRequests, msg)
	}
	var buf [20]byte
	ctx.Response.Header.SetBytesV(fasthttp.HeaderRetryAfter, strconv.AppendInt(buf[:0], ceilSeconds(d.RetryAfter), 10))
}

// setRateHeaders adds X-RateLimit-Limit, -Remaining and -Reset (seconds
// until the bucket is full) to a rate-limited route's response.
func setRateHeaders(ctx *fasthttp.RequestCtx, d limiter.Decision) {
	var buf [20]byte
	h := &ctx.Response.Header
	h.SetBytesV("X-RateLimit-Limit", strconv.AppendInt(buf[:0], int64(d.Limit), 10))
	h.SetBytesV("X-RateLimit-Remaining", strconv.AppendInt(buf[:0], int64(d.Remaining), 10))
	h.SetBytesV("X-RateLimit-Reset", strconv.AppendInt(buf[:0], ceilSeconds(d.Reset), 10))
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// directLoopback reports whether ctx comes from a loopback peer and carries
// no proxy header at all (access.IsProxyHeader, even an empty one): the
// only clients the admin endpoints trust without adminKeys. A local
// reverse proxy would make every remote client look local. A same-host TCP
// relay adds no header and cannot be told apart: warnAdminFallback says so.
func directLoopback(ctx *fasthttp.RequestCtx) bool {
	if !peerAddr(ctx).IsLoopback() {
		return false
	}
	for name := range ctx.Request.Header.All() {
		if access.IsProxyHeader(name) {
			return false
		}
	}
	return true
}

// warnAdminFallback logs a warning when cfg has no adminKeys: the admin
// endpoints then accept any API key from a direct loopback client.
func (g *Gateway) warnAdminFallback(cfg *config.Config) {
	if len(cfg.AdminKeys) > 0 || len(cfg.AdminPublicKeys) > 0 {
		return
	}
	g.log.Warn("no adminKeys configured: the admin endpoints (/config/...) accept ANY API key from a loopback client "+
		"without proxy headers; a same-host TCP relay (stunnel, haproxy in TCP mode, kubectl port-forward, "+
		"an nginx that sets no X-Forwarded-For) makes remote clients loopback. Set adminKeys.",
		"adminFallback", "loopback")
}

// peerAddr returns the TCP peer of ctx, IPv4-mapped addresses unmapped.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// preflight answers a CORS preflight (OPTIONS with
// Access-Control-Request-Method) before authentication: browsers send it
// without credentials. It reports whether it answered.
func (p *policy) preflight(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsOptions() {
		return false
	}
	method := ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestMethod)
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(method) == 0 || len(origin) == 0 {
		return false
	}
	if !p.originAllowed(origin) {
		proxy.WriteError(ctx, fasthttp.StatusForbidden, "origin not allowed")
		return true
	}
	h := &ctx.Response.Header
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	h.Set(fasthttp.HeaderAccessControlAllowMethods, "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS")
	if req := ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestHeaders); len(req) > 0 {
		h.SetBytesV(fasthttp.HeaderAccessControlAllowHeaders, req)
	}
	h.Set(fasthttp.HeaderAccessControlMaxAge, "600")
	h.Set(fasthttp.HeaderVary, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	return true
}

// corsHeaders lets an allowed browser origin read the response.
func (p *policy) corsHeaders(ctx *fasthttp.RequestCtx) {
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 || !p.originAllowed(origin) {
		return
	}
	h := &ctx.Response.Header
	h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	h.Set(fasthttp.HeaderAccessControlExposeHeaders, "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset")
	h.Add(fasthttp.HeaderVary, "Origin")
}

func (p *policy) originAllowed(origin []byte) bool {
	return p.anyOrigin || p.origins[string(origin)]
}
