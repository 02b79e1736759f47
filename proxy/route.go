package proxy

import (
	"hash/maphash"

	"github.com/ollamagw/ollama-gateway/jsonfield"
	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Model-aware routing. Backends often serve different models, and Ollama
// answers 404 for a model it does not have. So when a pool has more than one
// backend and at least one of them has a known model list
// (Backend.SetModels), a request to a route routed by model
// (ollamaapi.Route.ByModel) is sent to a backend known to have the model
// its body names: those backends take
// turns. If none of them is available, or none is known to have the model,
// the request is sent round-robin over all backends as any other.

// modelCursors is the number of round-robin cursors a pool keeps for
// requests routed by model. A model hashes to one of them, so the requests
// for one model take turns over the backends that have it however other
// requests interleave (two models that share a cursor may skew each other's
// turns). The cursors are not per model so that nothing is allocated or
// locked per request.
const modelCursors = 64

// route is the model-aware part of one exchange's backend selection. The
// zero value is off; its buffers are kept for the next exchange.
type route struct {
	name  []byte     // the model the body names, decoded
	key   []byte     // its canonical form (ollamaapi.AppendModelName), when named
	hash  uint64     // keyHash(key), when named
	named bool       // the request names a model: fleet scheduling applies
	on    bool       // named, and candidates are the backends with the model
	sent  *sentModel // the model's entry on the backend last sent to
	loads bool       // next chose a backend where the model is not loaded: the request loads it
	ahead int        // pool index + 1 of a backend next chose to load the model on ahead; 0: none
	took  bool       // turn is taken
	turn  uint64     // the request's turn on its model's cursor
	tried []uint64   // pool indexes tried for the model, one bit each
	last  int        // pool index of the backend next returned last, or -1
	again int        // pool index next may return once more, or -1
}

// set turns model routing on for a request to p when it applies: a route
// routed by model (ollamaapi.Route.ByModel: Ollama's inference and model
// routes and their OpenAI- and Anthropic-compatible twins), a pool of more
// than one backend of which one at least has a known model list, and a
// valid body naming a model in the route's ModelField, found as Ollama
// decodes it (jsonfield). Where the route has a ModelFallback (/api/show:
// the deprecated "name"), it stands in for an empty or missing model, as
// in Ollama. set does not allocate once its buffers have grown to the
// model names seen.
func (r *route) set(p *Pool, rt *ollamaapi.Route, body []byte) {
	if !rt.ByModel {
		return
	}
	name, ok := jsonfield.AppendString(r.name[:0], body, rt.ModelField)
	if (!ok || len(name) == 0) && rt.ModelFallback != "" {
		name, ok = jsonfield.AppendString(name[:0], body, rt.ModelFallback)
	}
	r.name = name
	if cap(name) > MaxModelNameLen {
		// Not a model name: do not keep a buffer that large.
		r.name = nil
	}
	if !ok || len(name) == 0 || len(name) > MaxModelNameLen {
		return
	}
	r.key = ollamaapi.AppendModelName(r.key[:0], name)
	r.hash = keyHash(r.key)
	r.named = true
	r.on = len(p.backends) >= 2 && p.knowsModels()
}

// next returns the backend to try next for the request's model (see
// schedule.go) and the verdict: pickGo with the backend, pickWait when
// every candidate is full (the caller queues the request), pickNone when
// the request names no model or no candidate is left (the caller falls
// back to plain selection). q is the queue requests wait in.
func (r *route) next(p *Pool, q *queue) (*Backend, verdict) {
	if !r.named {
		return nil, pickNone
	}
	r.begin(p)
	r.loads, r.ahead = false, 0
	b, i, v := r.schedule(p, q)
	if v == pickGo {
		r.tried[i/64] |= 1 << (i % 64)
	} else if v == pickNone {
		if i = r.again; i >= 0 && i < len(p.backends) {
			b, v = p.backends[i], pickGo
		}
	}
	r.last, r.again = i, -1
	return b, v
}

// begin takes the request's turn and clears its tried set, once.
func (r *route) begin(p *Pool) {
	if r.took {
		return
	}
	r.took = true
	r.again = -1
	r.turn = p.modelTurn(r.key)
	words := (len(p.backends) + 63) / 64
	if cap(r.tried) < words {
		r.tried = make([]uint64, words)
	}
	r.tried = r.tried[:words]
	clear(r.tried)
}

// mark records that the request is sent to backend i, taken from the
// queue.
func (r *route) mark(i int) {
	r.tried[i/64] |= 1 << (i % 64)
	r.last, r.again = i, -1
}

// untry makes backend i a candidate again: it answered "server busy" and
// is full now, so the scheduler waits for a slot there if no other
// backend can take the request.
func (r *route) untry(i int) {
	if i >= 0 && r.took {
		r.tried[i/64] &^= 1 << (i % 64)
	}
}

// retryLast lets next return the backend it returned last once more, after
// the other backends with the model: a stale pooled connection is retried
// on the next backend, as for any request, but when no other backend has
// the model the same one is retried on a fresh connection rather than one
// without the model.
func (r *route) retryLast() {
	if r.named && r.took {
		r.again = r.last
	}
}

// reset turns routing off, keeping the buffers.
func (r *route) reset() {
	r.named, r.on, r.took, r.loads = false, false, false, false
	r.sent = nil
}

// modelTurn takes the next turn on the cursor of the model key.
func (p *Pool) modelTurn(key []byte) uint64 {
	return p.cursors[maphash.Bytes(p.seed, key)%modelCursors].n.Add(1) - 1
}

// knowsModels reports whether a backend of p has a known model list.
func (p *Pool) knowsModels() bool {
	for _, b := range p.backends {
		if b.models.Load() != nil {
			return true
		}
	}
	return false
}
