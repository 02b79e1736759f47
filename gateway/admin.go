package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/access"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/keyfile"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// serveAdmin routes an admitted admin request (see serveConfig).
func (g *Gateway) serveAdmin(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	get, post := ctx.IsGet(), ctx.IsPost()
	switch {
	case string(path) == "/config/reload" && (get || post):
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
	case string(path) == "/config/new-key" && (get || post):
		var digest bool
		switch store := string(ctx.QueryArgs().Peek("store")); store {
		case "", "key":
		case "digest":
			digest = true
		default:
			proxy.WriteError(ctx, fasthttp.StatusBadRequest, `store must be "key" or "digest"`)
			return
		}
		pol, err := readKeyPolicy(requestBody(ctx, maxPolicyBody))
		if err != nil {
			proxy.WriteError(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		key, id, err := g.NewKeyWith(digest, pol)
		if keysUnavailable(ctx, err) {
			return
		}
		if err != nil {
			proxy.WriteError(ctx, fasthttp.StatusInternalServerError, err.Error())
			return
		}
		// The one place a key is ever shown: to the admin who asked.
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		writeJSON(ctx, fasthttp.StatusOK, struct {
			Key string `json:"key"`
			ID  string `json:"id"`
		}{key, id})
	case string(path) == "/config/keys" && get:
		writeJSON(ctx, fasthttp.StatusOK, g.KeysUsage(time.Now()))
	case bytes.HasPrefix(path, []byte("/config/keys/")) && ctx.IsDelete():
		id := string(path[len("/config/keys/"):])
		var force bool
		switch f := string(ctx.QueryArgs().Peek("force")); f {
		case "", "false":
		case "true":
			force = true
		default:
			proxy.WriteError(ctx, fasthttp.StatusBadRequest, `force must be "true" or "false"`)
			return
		}
		n, err := g.RevokeKey(id, force)
		switch {
		case keysUnavailable(ctx, err):
		case errors.Is(err, keyfile.ErrNoSuchKey):
			proxy.WriteError(ctx, fasthttp.StatusNotFound, "no key with id "+id)
		case errors.Is(err, keyfile.ErrLastAdminKey):
			proxy.WriteError(ctx, fasthttp.StatusConflict, "key "+id+" is the last admin key: without it the "+
				"admin endpoints fall back to loopback clients; nothing was revoked (add ?force=true to revoke it anyway)")
		case err != nil:
			proxy.WriteError(ctx, fasthttp.StatusInternalServerError, err.Error())
		default:
			writeJSON(ctx, fasthttp.StatusOK, struct {
				Removed int `json:"removed"`
			}{n})
		}
	case string(path) == "/config/reload" || string(path) == "/config/new-key":
		proxy.WriteError(ctx, fasthttp.StatusMethodNotAllowed, "use GET or POST")
	default:
		proxy.WriteError(ctx, fasthttp.StatusNotFound, "unknown gateway endpoint")
	}
}

// NewKey generates an API key, writes it to the configuration file
// atomically and makes it live for the very next request. The file is
// edited under its lock and re-read under it (keyfile.AddKey), and the
// config applied is the one written, so a concurrent writer (`keys new`,
// another gateway) loses nothing. If the file cannot be written the key is
// not made live: nothing is half done. With digest the file gets the
// key's "sha256:<64 hex digits>" form (config.DigestEntry) instead of the
// key, which is then shown only in the answer. It returns the key and its
// public id.
func (g *Gateway) NewKey(digest bool) (key, id string, err error) {
	return g.NewKeyWith(digest, config.KeyEntry{})
}

// NewKeyWith is NewKey for a key with a policy: the name, models,
// rateLimit, tokens and expiresAt of pol (its key fields are ignored). A
// key with a policy is saved as an object entry ({"key": …} or, with
// digest, {"sha256": …}). pol must be valid (config.ValidateKeyEntry).
// With a redis block the key goes to Redis instead, as its digest with
// its policy, live on every replica within a second; while Redis cannot
// be reached it is refused (errKeysUnavailable) and the file is untouched.
func (g *Gateway) NewKeyWith(digest bool, pol config.KeyEntry) (key, id string, err error) {
	if sk := g.sharedKeySet(); sk != nil {
		return g.newSharedKey(sk, pol)
	}
	if g.path == "" {
		return "", "", ErrNoConfigFile
	}
	key, err = config.GenerateKey()
	if err != nil {
		return "", "", fmt.Errorf("generating a key: %w", err)
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	entry := pol
	entry.Key, entry.SHA256 = key, ""
	if digest {
		entry.Key = config.DigestEntry(key)
		if entry.HasPolicy() {
			entry.Key, entry.SHA256 = "", strings.TrimPrefix(entry.Key, "sha256:")
		}
	}
	cfg, err := keyfile.AddEntry(g.path, entry)
	if err != nil {
		return "", "", fmt.Errorf("could not save the new key, it was not created: %w", err)
	}
	if _, err := g.applyLocked(cfg); err != nil {
		return "", "", fmt.Errorf("the key was saved but could not be applied: %w", err)
	}
	id = config.KeyID(config.KeyDigest(key))
	g.log.Info("API key created", "key_id", id, "key_name", pol.Name, "stored_as_digest", digest)
	return key, id, nil
}

// keysUnavailable answers 503 with Retry-After and reports true when err
// says the shared keys' Redis cannot be reached (a mint or revoke refused,
// nothing done); the admin endpoints and the console answer it alike.
func keysUnavailable(ctx *fasthttp.RequestCtx, err error) bool {
	if !errors.Is(err, errKeysUnavailable) {
		return false
	}
	proxy.WriteError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	return true
}

// KeyUsage is one key in the answer of GET /config/keys: its public id,
// name, policy and usage, never the key.
type KeyUsage struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Admin bool   `json:"admin"`
	// The policy, as configured.
	Models    []string             `json:"models,omitempty"`
	RateLimit *config.RateOverride `json:"rateLimit,omitempty"`
	Tokens    *config.TokenBudget  `json:"tokens,omitempty"`
	ExpiresAt string               `json:"expiresAt,omitempty"`
	// Since the gateway started.
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	// Window is the key's current token budget window, when it has one.
	Window *WindowUsage `json:"window,omitempty"`
	// LastUsed is when the key's last request ended; omitted if never.
	LastUsed *time.Time `json:"lastUsed,omitempty"`
}

// WindowUsage is a key's usage in its current budget window.
type WindowUsage struct {
	Start            time.Time `json:"start"`
	End              time.Time `json:"end"`
	Requests         int64     `json:"requests"`
	PromptTokens     int64     `json:"promptTokens"`
	CompletionTokens int64     `json:"completionTokens"`
	// Remaining is the tokens left of the budget, 0 when spent.
	Remaining int64 `json:"remaining"`
}

// KeysUsage returns GET /config/keys' answer at now: {"keys": [...]}, one
// entry per configured key, ordered by id.
func (g *Gateway) KeysUsage(now time.Time) struct {
	Keys []KeyUsage `json:"keys"`
} {
	keys := g.allKeys()
	out := make([]KeyUsage, 0, len(keys))
	for _, k := range keys {
		out = append(out, g.keyUsage(k, now))
	}
	return struct {
		Keys []KeyUsage `json:"keys"`
	}{out}
}

// keyUsage is key k's entry in GET /config/keys' answer at now; the
// console shows the same figures.
func (g *Gateway) keyUsage(k *access.Key, now time.Time) KeyUsage {
	u := g.usage.Usage(k.ID, k.TokenWindow, now)
	e := KeyUsage{ID: k.Name, Name: k.Label, Admin: k.Admin,
		Models: k.Policy.Models, RateLimit: k.Policy.RateLimit, Tokens: k.Policy.Tokens, ExpiresAt: k.Policy.ExpiresAt,
		Requests: u.Total.Requests, PromptTokens: u.Total.PromptTokens, CompletionTokens: u.Total.CompletionTokens}
	if k.TokenWindow > 0 {
		e.Window = &WindowUsage{Start: u.WindowStart.UTC(), End: u.WindowStart.Add(k.TokenWindow).UTC(),
			Requests: u.Window.Requests, PromptTokens: u.Window.PromptTokens, CompletionTokens: u.Window.CompletionTokens,
			Remaining: max(0, k.TokenMax-u.Window.Tokens())}
	}
	if !u.LastUsed.IsZero() {
		t := u.LastUsed.UTC()
		e.LastUsed = &t
	}
	return e
}

// maxPolicyBody bounds the body of a new-key request.
const maxPolicyBody = 64 << 10

// requestBody reads up to max+1 bytes of the request body (the server
// streams bodies); a longer body fails to decode.
func requestBody(ctx *fasthttp.RequestCtx, max int64) []byte {
	r := ctx.RequestBodyStream()
	if r == nil {
		return ctx.Request.Body()
	}
	b, _ := io.ReadAll(io.LimitReader(r, max+1))
	return b
}

// readKeyPolicy decodes and validates the body of a new-key request, the
// policy fields of a key entry (config.KeyPolicy); an empty body is no
// policy. Errors name the field.
func readKeyPolicy(body []byte) (config.KeyEntry, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return config.KeyEntry{}, nil
	}
	var p config.KeyPolicy
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return config.KeyEntry{}, fmt.Errorf("the body must be a JSON object of name, models, rateLimit, tokens, expiresAt: %w", err)
	}
	e := config.KeyEntry{Key: "x", KeyPolicy: p}
	if err := config.ValidateKeyEntry(e); err != nil {
		return config.KeyEntry{}, errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	e.Key = ""
	return e, nil
}

// RevokeKey removes the key with public id from the configuration file
// (under its lock, as NewKey) and from the running configuration; it
// returns how many entries it removed. Unless force, it refuses to remove
// the last entry of adminKeys (an error wrapping keyfile.ErrLastAdminKey):
// without admin keys the admin endpoints fall back to loopback clients.
func (g *Gateway) RevokeKey(id string, force bool) (int, error) {
	if sk := g.sharedKeySet(); sk != nil {
		n, err := sk.revoke(id)
		if err != nil || n > 0 {
			if n > 0 {
				g.log.Info("API key revoked", "key_id", id, "entries", n, "shared", true)
			}
			return n, err
		}
		if g.path == "" {
			return 0, keyfile.ErrNoSuchKey
		}
	}
	if g.path == "" {
		return 0, ErrNoConfigFile
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	cfg, n, err := keyfile.RemoveKey(g.path, id, keyfile.RemoveOptions{KeepLastAdminKey: !force})
	if err != nil {
		return 0, err
	}
	if _, err := g.applyLocked(cfg); err != nil {
		return 0, err
	}
	g.log.Info("API key revoked", "key_id", id, "entries", n)
	return n, nil
}

// serveLive is the liveness probe: the process serves.
func (g *Gateway) serveLive(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, struct {
		Status string `json:"status"`
	}{"ok"})
}

// serveReady is the readiness probe: at least one backend passed a health
// check and is not marked down. Backends keep their state across reloads,
// so a reload does not make the gateway unready.
func (g *Gateway) serveReady(ctx *fasthttp.RequestCtx) {
	ready := false
	for _, b := range g.Snapshot().Proxy.Pool().Backends() {
		ready = ready || b.Health() == proxy.HealthUp
	}
	if ready {
		writeJSON(ctx, fasthttp.StatusOK, struct {
			Status string `json:"status"`
		}{"ready"})
		return
	}
	proxy.WriteError(ctx, fasthttp.StatusServiceUnavailable, "no Ollama backend is up")
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		proxy.WriteError(ctx, fasthttp.StatusInternalServerError, "encoding the answer failed")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(b)
}
