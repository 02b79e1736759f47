package gateway

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// The merged views. With more than one backend, a client listing models
// (ollama list, Open WebUI, client.list()) must see the fleet's, not those
// of whichever backend answered: the gateway answers GET /api/tags, GET
// /api/ps, GET /v1/models and GET /v1/models/{model} itself
// (ollamaapi.Route.View), from the available backends' lists as the
// health checks last fetched them. Nothing is fetched on the request path
// but the list of a backend that has none known yet, live, bounded by
// viewTimeout.

// serveView answers the merged view v from the backends of st, with the
// models keep accepts (the key's model allowlist; nil: all).
func (g *Gateway) serveView(ctx *fasthttp.RequestCtx, st *Snapshot, v ollamaapi.View, keep func(string) bool) {
	backends := st.Proxy.Pool().Backends()
	// Live fetches run under the gateway's context, not ctx: a
	// *fasthttp.RequestCtx is no parent context (context.WithTimeout would
	// watch it from a goroutine that outlives the request, a data race).
	switch v {
	case ollamaapi.TagsView:
		writeModels(ctx, mergeListings(g.fleetLists(g.ctx, backends, ollamaapi.LocalModelsPath), keep))
	case ollamaapi.RunningView:
		writeModels(ctx, mergeListings(g.fleetLists(g.ctx, backends, ollamaapi.RunningModelsPath), keep))
	case ollamaapi.OpenAIModelsView:
		writeOpenAIModels(ctx, mergeListings(g.fleetLists(g.ctx, backends, ollamaapi.LocalModelsPath), keep))
	case ollamaapi.OpenAIModelView:
		name, _ := strings.CutPrefix(string(ctx.Path()), "/v1/models/")
		writeOpenAIModel(ctx, name, mergeListings(g.fleetLists(g.ctx, backends, ollamaapi.LocalModelsPath), keep))
	}
}

// fleetLists returns the list at path (ollamaapi.LocalModelsPath or
// RunningModelsPath) of each available backend, in pool order: from the
// inventory the health checks keep, or, for a backend whose list is not
// known, fetched now, all at once, bounded by viewTimeout; a backend that
// fails that fetch lists nothing. A backend marked down lists nothing.
func (g *Gateway) fleetLists(ctx context.Context, backends []*proxy.Backend, path string) [][]proxy.ModelEntry {
	lists := make([][]proxy.ModelEntry, len(backends))
	timeField := "modified_at"
	if path == ollamaapi.RunningModelsPath {
		timeField = "expires_at"
	}
	var wg sync.WaitGroup
	for i, b := range backends {
		if !b.Available() {
			continue
		}
		if entries, ok := inventory(b, path); ok {
			lists[i] = entries
			continue
		}
		wg.Go(func() {
			raw, err := g.fleet.list(ctx, b, path)
			if err != nil {
				g.log.Warn("backend list for a merged view failed", "backend", b.Name(), "path", path, "err", err)
				g.reportRefused(b, err)
				return
			}
			lists[i] = proxy.ParseModelEntries(raw, timeField)
		})
	}
	wg.Wait()
	return lists
}

// reportRefused is passive health for the gateway's own requests: a
// connection refused ejects the backend at once, as for proxied ones.
func (g *Gateway) reportRefused(b *proxy.Backend, err error) {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		if c := g.checker.Load(); c != nil {
			c.ReportFailure(b, err)
		}
	}
}

// inventory returns b's list at path as the health checks keep it, and
// whether one is known: its /api/tags entries, or its /api/ps entries
// exactly as it listed them. Models the gateway merely sent a request for
// since that /api/ps (Backend.IsLoaded counts them as loaded for
// scheduling) are not listed: the gateway has no entry of Ollama's shape
// for them (digest, size_vram, context_length), and the next check lists
// them if they did load.
func inventory(b *proxy.Backend, path string) ([]proxy.ModelEntry, bool) {
	if path == ollamaapi.RunningModelsPath {
		l := b.Loaded()
		if l == nil {
			return nil, false
		}
		loaded := l.Entries()
		entries := make([]proxy.ModelEntry, len(loaded))
		for i, e := range loaded {
			entries[i] = proxy.ModelEntry{Name: e.Name, Key: e.Key, Time: e.ExpiresAt, Raw: e.Raw}
		}
		return entries, true
	}
	m := b.Models()
	if m == nil || (m.Len() > 0 && m.Entries() == nil) {
		// Unknown, or names without entries (recorded by SetModels).
		return nil, false
	}
	return m.Entries(), true
}

// mergeListings is the one function every merged view lists its entries
// with: the union of lists, one entry per model (by canonical name), the
// one with the greatest Time (the most recently modified, or the one
// loaded longest; ties go to the first backend in pool order), in
// Ollama's order (greatest Time first), keeping only the models whose
// listed name keep accepts (nil keeps all: a key's model allowlist can
// filter here).
func mergeListings(lists [][]proxy.ModelEntry, keep func(name string) bool) []proxy.ModelEntry {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	all := make([]proxy.ModelEntry, 0, n)
	for _, l := range lists {
		for _, e := range l {
			if keep == nil || keep(e.Name) {
				all = append(all, e)
			}
		}
	}
	slices.SortStableFunc(all, func(a, b proxy.ModelEntry) int { return b.Time.Compare(a.Time) })
	seen := make(map[string]struct{}, len(all))
	out := all[:0]
	for _, e := range all {
		if _, dup := seen[e.Key]; dup {
			continue
		}
		seen[e.Key] = struct{}{}
		out = append(out, e)
	}
	return out
}

// writeModels answers {"models":[...]} with the entries as the backends
// listed them, as Ollama's gin writes it (no trailing newline).
func writeModels(ctx *fasthttp.RequestCtx, entries []proxy.ModelEntry) {
	var buf bytes.Buffer
	buf.WriteString(`{"models":[`)
	for i, e := range entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e.Raw)
	}
	buf.WriteString(`]}`)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(buf.Bytes())
}

// openAIModel is Ollama's openai.Model (openai/openai.go, v0.17.4).
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// toOpenAIModel is Ollama's openai.ToListCompletion for one entry, or
// openai.ToModel with id the name asked for.
func toOpenAIModel(id string, e proxy.ModelEntry) openAIModel {
	return openAIModel{ID: id, Object: "model", Created: e.Time.Unix(), OwnedBy: namespaceOf(id)}
}

// writeOpenAIModels answers GET /v1/models as Ollama's ListMiddleware:
// {"object":"list","data":[...]}, "data" null when there is no model, with
// json.Encoder's trailing newline.
func writeOpenAIModels(ctx *fasthttp.RequestCtx, entries []proxy.ModelEntry) {
	var list struct {
		Object string        `json:"object"`
		Data   []openAIModel `json:"data"`
	}
	list.Object = "list"
	for _, e := range entries {
		list.Data = append(list.Data, toOpenAIModel(e.Name, e))
	}
	writeEncoded(ctx, fasthttp.StatusOK, list)
}

// writeOpenAIModel answers GET /v1/models/{name} as Ollama's
// RetrieveMiddleware: the model in OpenAI's shape, or 404 with Ollama's
// error for a model no available backend lists.
func writeOpenAIModel(ctx *fasthttp.RequestCtx, name string, entries []proxy.ModelEntry) {
	key := proxy.ModelKey(name)
	for _, e := range entries {
		if e.Key == key {
			writeEncoded(ctx, fasthttp.StatusOK, toOpenAIModel(name, e))
			return
		}
	}
	// What Ollama's RetrieveWriter makes of ShowHandler's 404.
	type apiError struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   any     `json:"param"`
		Code    *string `json:"code"`
	}
	writeEncoded(ctx, fasthttp.StatusNotFound, struct {
		Error apiError `json:"error"`
	}{apiError{Message: "model '" + name + "' not found", Type: "api_error"}})
}

// writeEncoded writes v as json.NewEncoder does (a trailing newline), with
// the Content-Type of Ollama's OpenAI middleware.
func writeEncoded(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		ctx.Error("internal gateway error", fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// namespaceOf is the namespace Ollama's model.ParseName gives a name:
// the path element before the model, "library" when there is none.
func namespaceOf(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 {
		return "library"
	}
	return cmp.Or(parts[len(parts)-2], "library")
}
