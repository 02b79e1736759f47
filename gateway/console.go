package gateway

import (
	"bytes"
	"embed"
	"errors"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/keyfile"
	"github.com/ollamagw/ollama-gateway/limiter"
	"github.com/ollamagw/ollama-gateway/proxy"
	"github.com/ollamagw/ollama-gateway/telemetry"
)

// The console's page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed console/index.html console/console.css console/console.js
var consoleAssets embed.FS

const (
	consoleCookie = "ogw_console"
	csrfHeader    = "X-CSRF-Token"

	// consoleCSP allows nothing but the gateway's own script, style and
	// JSON: no inline script, no other origin, no framing.
	consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// consoleAsset is one embedded file and its content type.
type consoleAsset struct {
	body  []byte
	ctype string
}

var consoleFiles = func() map[string]consoleAsset {
	m := map[string]consoleAsset{}
	for name, ctype := range map[string]string{
		"index.html":  "text/html; charset=utf-8",
		"console.css": "text/css; charset=utf-8",
		"console.js":  "text/javascript; charset=utf-8",
	} {
		b, err := consoleAssets.ReadFile("console/" + name)
		if err != nil {
			panic("console asset missing from the build: " + name) // a build error, not user input
		}
		m[name] = consoleAsset{b, ctype}
	}
	return m
}()

// underPath reports whether request path p is dir or inside it.
func underPath(p []byte, dir string) bool {
	return string(p) == dir || (bytes.HasPrefix(p, []byte(dir)) && len(p) > len(dir) && p[len(dir)] == '/')
}

// serveConsole answers a request under console.path. The page and its
// assets are public (they hold no data); everything else needs a session,
// and actions a session's CSRF token too. The IP lists apply first, as
// everywhere.
func (g *Gateway) serveConsole(ctx *fasthttp.RequestCtx, st *Snapshot, r *request) {
	defer r.discard()
	defer consoleHeaders(&ctx.Response.Header) // last: error answers reset the headers
	if !g.checkIP(ctx, st.policy, r) {
		return
	}
	base := st.Config.Console.Path
	sub := string(ctx.Path()[len(base):])
	get, post, del := ctx.IsGet() || ctx.IsHead(), ctx.IsPost(), ctx.IsDelete()
	switch {
	case sub == "" && get:
		// Relative URLs in the page resolve under the path only with the slash.
		ctx.Redirect(base+"/", fasthttp.StatusSeeOther)
	case sub == "/" && get:
		g.serveConsoleAsset(ctx, "index.html")
	case (sub == "/console.js" || sub == "/console.css") && get:
		g.serveConsoleAsset(ctx, sub[1:])
	case sub == "/session" && post:
		g.consoleSignIn(ctx, st, r)
	case sub == "/session" && del:
		if se, tok := g.consoleSession(ctx, st); se != nil && g.consoleCSRF(ctx, se) {
			g.console.sessions.drop(tok)
			g.setConsoleCookie(ctx, st, "", -1)
			writeJSON(ctx, fasthttp.StatusOK, struct{}{})
		}
	case sub == "/state" && get:
		if se, _ := g.consoleSession(ctx, st); se != nil {
			writeJSON(ctx, fasthttp.StatusOK, g.consoleState(st, se, time.Now()))
		}
	case sub == "/reload" && post:
		if se, _ := g.consoleSession(ctx, st); se != nil && g.consoleCSRF(ctx, se) {
			res, err := g.Reload()
			if err != nil {
				status := fasthttp.StatusUnprocessableEntity
				if errors.Is(err, ErrNoConfigFile) {
					status = fasthttp.StatusServiceUnavailable
				}
				proxy.WriteError(ctx, status, err.Error())
				return
			}
			writeJSON(ctx, fasthttp.StatusOK, res)
		}
	case sub == "/keys" && post:
		if se, _ := g.consoleSession(ctx, st); se != nil && g.consoleCSRF(ctx, se) {
			key, id, err := g.NewKey(string(ctx.QueryArgs().Peek("store")) == "digest")
			if keysUnavailable(ctx, err) {
				return
			}
			if err != nil {
				proxy.WriteError(ctx, fasthttp.StatusInternalServerError, err.Error())
				return
			}
			g.log.Info("console: API key created", "key_id", id, "by", se.keyID)
			writeJSON(ctx, fasthttp.StatusOK, struct {
				Key string `json:"key"`
				ID  string `json:"id"`
			}{key, id})
		}
	case strings.HasPrefix(sub, "/keys/") && del:
		if se, _ := g.consoleSession(ctx, st); se != nil && g.consoleCSRF(ctx, se) {
			id := sub[len("/keys/"):]
			n, err := g.RevokeKey(id, false)
			switch {
			case keysUnavailable(ctx, err):
			case errors.Is(err, keyfile.ErrNoSuchKey):
				proxy.WriteError(ctx, fasthttp.StatusNotFound, "no key with id "+id)
			case errors.Is(err, keyfile.ErrLastAdminKey):
				proxy.WriteError(ctx, fasthttp.StatusConflict, "key "+id+" is the last admin key; nothing was revoked")
			case err != nil:
				proxy.WriteError(ctx, fasthttp.StatusInternalServerError, err.Error())
			default:
				g.log.Info("console: API key revoked", "key_id", id, "by", se.keyID)
				writeJSON(ctx, fasthttp.StatusOK, struct {
					Removed int `json:"removed"`
				}{n})
			}
		}
	default:
		proxy.WriteError(ctx, fasthttp.StatusNotFound, "unknown console endpoint")
	}
}

// consoleHeaders sets the headers of every console answer.
func consoleHeaders(h *fasthttp.ResponseHeader) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(fasthttp.HeaderCacheControl, "no-store")
}

func (g *Gateway) serveConsoleAsset(ctx *fasthttp.RequestCtx, name string) {
	a := consoleFiles[name]
	ctx.SetContentType(a.ctype)
	ctx.SetBody(a.body)
}

// consoleSignIn exchanges an admin key (form field "key") for a session
// cookie. A key that is not an admin key, or none, is refused and counts
// toward the auth-failure throttle of the client's address, as a failed
// API authentication does.
func (g *Gateway) consoleSignIn(ctx *fasthttp.RequestCtx, st *Snapshot, r *request) {
	p := st.policy
	presented := ctx.PostArgs().Peek("key")
	k := p.keys.Lookup(presented)
	if k != nil && k.Expired(ctx.Time()) {
		k = nil // an expired key signs in no more than it authenticates
	}
	if k == nil || !k.Admin {
		if d := g.limits.Allow(limiter.AddrKey(r.ip).WithScope(scopeAuthFail), p.authFailRate, ctx.Time()); !d.Allowed {
			g.refuse(telemetry.AuthThrottled)
			tooMany(ctx, d, "too many failed authentications")
			return
		}
		reason, msg := telemetry.AuthInvalidKey, "invalid key"
		switch {
		case len(presented) == 0:
			reason, msg = telemetry.AuthMissingKey, "enter an admin key"
		case k != nil:
			reason, msg = telemetry.AuthNotAdmin, "this key is not an admin key (adminKeys)"
		}
		g.refuse(reason)
		g.log.Warn("console: sign-in refused", "client_ip", r.ip.String(), "reason", msg)
		proxy.WriteError(ctx, fasthttp.StatusUnauthorized, msg)
		return
	}
	tok, se, err := g.console.sessions.create(config.KeyDigest(string(presented)), k.Name, time.Now(),
		st.Config.Console.SessionTTL())
	if err != nil {
		proxy.WriteError(ctx, fasthttp.StatusInternalServerError, "could not start a session")
		return
	}
	g.setConsoleCookie(ctx, st, tok, int(st.Config.Console.SessionTTL()/time.Second))
	g.log.Info("console: signed in", "client_ip", r.ip.String(), "key_id", k.Name)
	writeJSON(ctx, fasthttp.StatusOK, struct {
		CSRF  string `json:"csrf"`
		KeyID string `json:"keyId"`
	}{se.csrf, se.keyID})
}

// setConsoleCookie sets (or, with maxAge < 0, clears) the session cookie:
// HttpOnly, SameSite=Strict, scoped to the console's path, and Secure when
// the browser reached us over TLS (directly or through a trusted proxy
// saying so).
func (g *Gateway) setConsoleCookie(ctx *fasthttp.RequestCtx, st *Snapshot, tok string, maxAge int) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(consoleCookie)
	c.SetValue(tok)
	c.SetPath(st.Config.Console.Path)
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetSecure(consoleHTTPS(ctx, st.policy))
	if maxAge < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		c.SetMaxAge(maxAge)
	}
	ctx.Response.Header.SetCookie(c)
}

// consoleHTTPS reports whether the browser's connection is TLS: ours, or a
// trusted proxy's that says so in X-Forwarded-Proto.
func consoleHTTPS(ctx *fasthttp.RequestCtx, p *policy) bool {
	if ctx.IsTLS() {
		return true
	}
	return p.trusted.Len() > 0 && p.trusted.Contains(peerAddr(ctx)) &&
		strings.EqualFold(string(ctx.Request.Header.Peek("X-Forwarded-Proto")), "https")
}

// consoleSession returns the request's live session and its token, or
// answers 401 and returns nil. A session whose key is no longer an admin
// key of the running configuration is ended.
func (g *Gateway) consoleSession(ctx *fasthttp.RequestCtx, st *Snapshot) (*consoleSession, string) {
	tok := string(ctx.Request.Header.Cookie(consoleCookie))
	se := g.console.sessions.get(tok, time.Now())
	if se != nil && !isAdminDigest(st.Config, se.keyDigest, time.Now()) {
		g.console.sessions.drop(tok)
		se = nil
	}
	if se == nil {
		proxy.WriteError(ctx, fasthttp.StatusUnauthorized, "sign in with an admin key")
		return nil, ""
	}
	return se, tok
}

// consoleCSRF checks an action's CSRF header against the session's token,
// answering 403 if it does not match.
func (g *Gateway) consoleCSRF(ctx *fasthttp.RequestCtx, se *consoleSession) bool {
	if se.csrfOK(ctx.Request.Header.Peek(csrfHeader)) {
		return true
	}
	proxy.WriteError(ctx, fasthttp.StatusForbidden, "missing or wrong "+csrfHeader+" header")
	return false
}

// isAdminDigest reports whether d is the digest of one of cfg's adminKeys
// that has not expired at now.
func isAdminDigest(cfg *config.Config, d [32]byte, now time.Time) bool {
	for _, e := range cfg.AdminKeys {
		if e.Digest() == d {
			exp, ok := e.Expiry()
			return !ok || now.Before(exp)
		}
	}
	return false
}
