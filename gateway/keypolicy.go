package gateway

import (
	"bytes"
	"errors"
	"strconv"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/jsonfield"
	"github.com/ollamagw/ollama-gateway/limiter"
	"github.com/ollamagw/ollama-gateway/ollamaapi"
	"github.com/ollamagw/ollama-gateway/proxy"
	"github.com/ollamagw/ollama-gateway/telemetry"
)

// The policy a key's config entry gives it, on the request path: expiry,
// model management for admins, the model allowlist (the model a request
// names, and the models the key's listings show).

// notExpired refuses an authenticated key past its expiresAt: 401.
func (g *Gateway) notExpired(ctx *fasthttp.RequestCtx, r *request) bool {
	if !r.key.Expired(ctx.Time()) {
		return true
	}
	g.refuse(telemetry.AuthExpiredKey)
	proxy.WriteError(ctx, fasthttp.StatusUnauthorized, "key expired")
	ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, "Bearer")
	return false
}

// withinBudget refuses, with 429 and Retry-After (when the key's window
// ends), a request to a route that spends tokens from a key that has spent
// its token budget in the current window. Tokens are charged when a
// response ends, so a single stream may overshoot the budget once. With a
// redis block the budget is the fleet's (see keyusage.Redis); while Redis
// cannot be reached in failMode closed the answer is 503.
func (g *Gateway) withinBudget(ctx *fasthttp.RequestCtx, r *request) bool {
	k := r.key
	if k.TokenMax <= 0 || r.route.Usage == ollamaapi.NoUsage {
		return true
	}
	now := ctx.Time()
	spent, ends, err := g.usage.Budget(k.ID, k.TokenWindow, now)
	if err != nil {
		proxy.WriteError(ctx, fasthttp.StatusServiceUnavailable, "the shared token budget cannot be checked: redis is unavailable")
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		return false
	}
	if spent < k.TokenMax {
		return true
	}
	if m := g.metrics.Load(); m != nil {
		m.RateLimited()
	}
	tooMany(ctx, limiter.Decision{RetryAfter: ends.Sub(now)}, "token budget exhausted: "+
		strconv.FormatInt(spent, 10)+" of "+strconv.FormatInt(k.TokenMax, 10)+" tokens used in this window")
	return false
}

// msgManagement is the refusal of a model management request to a key
// that may not manage models.
const msgManagement = "model management (pull, push, create, copy, delete, blob uploads) needs an admin key " +
	`(adminKeys); security.modelManagement "any" lets every key manage models`

// checkKeyPolicy applies what can be decided from the request's headers:
// model management (routes that change the fleet) needs an admin key
// unless security.modelManagement is "any" (without adminKeys there is no
// loopback fallback, as there is for the admin endpoints: the switch is
// the way); a key restricted to models
// may not send a body whose model cannot be read (a streamed upload, a
// compressed body) to a route that names a model, nor name another model
// in the path (/v1/models/:model). The body's model is checked by
// CheckBody once the proxy has read it.
func (g *Gateway) checkKeyPolicy(ctx *fasthttp.RequestCtx, st *Snapshot, r *request) bool {
	rt := r.route
	if rt.ChangesFleet && !st.policy.anyKeyManagesModels && !r.key.Admin {
		g.refuse(telemetry.AuthNotAdmin)
		proxy.WriteError(ctx, fasthttp.StatusForbidden, msgManagement)
		return false
	}
	if !g.withinBudget(ctx, r) {
		return false
	}
	models := r.key.Models
	if models == nil {
		return true
	}
	if rt.ModelField != "" {
		if rt.Upload || !identityEncoding(ctx.Request.Header.ContentEncoding()) {
			return g.refuseModel(ctx, errModelUnreadable)
		}
		return true
	}
	if name, ok := modelInPath(rt, ctx.Path()); ok && !models.Allows(name) {
		return g.refuseModel(ctx, &modelRefusal{name: string(name)})
	}
	return true
}

// modelInPath returns the model a route names in its path: the last
// segment of /v1/models/:model.
func modelInPath(rt *ollamaapi.Route, path []byte) ([]byte, bool) {
	const prefix = "/v1/models/"
	if rt.Pattern != prefix+":model" || !bytes.HasPrefix(path, []byte(prefix)) {
		return nil, false
	}
	return path[len(prefix):], true
}

// identityEncoding reports whether a Content-Encoding leaves the body as
// sent: none, or "identity".
func identityEncoding(ce []byte) bool {
	return len(ce) == 0 || bytes.EqualFold(bytes.TrimSpace(ce), []byte("identity"))
}

// modelRefusal is the refusal of a model the key may not use: 403.
type modelRefusal struct{ name string }

func (e *modelRefusal) Error() string { return "model '" + e.name + "' is not allowed for this key" }

// HTTPStatus implements proxy.StatusError.
func (e *modelRefusal) HTTPStatus() (int, string) { return fasthttp.StatusForbidden, e.Error() }

// unreadableModel is the refusal of a body whose model cannot be read
// (not JSON, compressed, streamed, no model) for a key restricted to
// models: 400.
type unreadableModel struct{}

func (unreadableModel) Error() string {
	return "this key may use only some models, and the model of this request cannot be read " +
		"(the body must be uncompressed JSON naming the model)"
}

// HTTPStatus implements proxy.StatusError.
func (e unreadableModel) HTTPStatus() (int, string) { return fasthttp.StatusBadRequest, e.Error() }

var errModelUnreadable error = unreadableModel{}

// refuseModel answers a model refusal and counts it.
func (g *Gateway) refuseModel(ctx *fasthttp.RequestCtx, err error) bool {
	g.refuse(telemetry.AuthModelNotAllowed)
	var se proxy.StatusError
	if errors.As(err, &se) {
		status, msg := se.HTTPStatus()
		proxy.WriteError(ctx, status, msg)
	}
	return false
}

// maxModelBuf bounds the model-name buffer kept in a pooled request.
const maxModelBuf = 1 << 10

// CheckBody refuses, for a key restricted to models, a body that names a
// model the key may not use (403), or whose model cannot be read (400),
// before the proxy chooses a backend. The model is read as Ollama reads it:
// the route's ModelField, else its ModelFallback when that is missing or
// empty. It implements proxy.BodyChecker and does not allocate once its
// buffer has grown.
func (r *request) CheckBody(body []byte) error {
	if r.key == nil || r.key.Models == nil || r.route.ModelField == "" {
		return nil
	}
	rt := r.route
	name, ok := jsonfield.AppendString(r.model[:0], body, rt.ModelField)
	if (!ok || len(name) == 0) && rt.ModelFallback != "" {
		name, ok = jsonfield.AppendString(name[:0], body, rt.ModelFallback)
	}
	if cap(name) <= maxModelBuf {
		r.model = name
	}
	var err error
	switch {
	case !ok || len(name) == 0:
		err = errModelUnreadable
	case !r.key.Models.Allows(name):
		err = &modelRefusal{name: string(name)}
	case rt.AlsoModel != "":
		// The copy's destination, the create's base: allowed too, when
		// named.
		also, ok := jsonfield.AppendString(r.model[:0], body, rt.AlsoModel)
		if cap(also) <= maxModelBuf {
			r.model = also
		}
		if !ok || len(also) == 0 || r.key.Models.Allows(also) {
			return nil
		}
		err = &modelRefusal{name: string(also)}
	default:
		return nil
	}
	r.g.refuse(telemetry.AuthModelNotAllowed)
	return err
}

// filterListing narrows a buffered model listing the proxy has set as the
// answer to the models the key may see: /api/tags and /api/ps
// ({"models":[{"name":…,"model":…}]}) and /v1/models ({"data":[{"id":…}]}).
// A listing that cannot be read is not passed on (502): a restricted key
// never sees a model it may not use.
func (r *request) filterListing(ctx *fasthttp.RequestCtx) {
	keep := r.key.ModelFilter()
	if keep == nil || ctx.Response.StatusCode() != fasthttp.StatusOK {
		return
	}
	var member string
	switch r.route.Pattern {
	case ollamaapi.LocalModelsPath, ollamaapi.RunningModelsPath:
		member = "models"
	case "/v1/models":
		member = "data"
	default:
		return
	}
	out, err := FilterModelList(ctx.Response.Body(), member, keep)
	if err != nil {
		proxy.WriteError(ctx, fasthttp.StatusBadGateway, "the Ollama backend's model list cannot be read")
		return
	}
	ctx.Response.SetBody(out)
}

// FilterModelList returns body, a JSON object whose member holds a list of
// models (Ollama's {"models":[…]} or OpenAI's {"data":[…]}), with only the
// models whose name keep accepts. A model's name is its "name", else its
// "model" (Ollama) or its "id" (OpenAI). Other members are kept; their
// order is not. keep is the predicate of access.Key.ModelFilter, as fleet
// views use it.
func FilterModelList(body []byte, member string, keep func(name string) bool) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	raw, ok := doc[member]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return body, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	kept := items[:0]
	for _, it := range items {
		var m struct {
			Name  string `json:"name"`
			Model string `json:"model"`
			ID    string `json:"id"`
		}
		if err := json.Unmarshal(it, &m); err != nil {
			return nil, err
		}
		name := m.Name
		if name == "" {
			name = m.Model
		}
		if name == "" {
			name = m.ID
		}
		if name != "" && keep(name) {
			kept = append(kept, it)
		}
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	doc[member] = b
	return json.Marshal(doc)
}
