package proxy

import (
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// Loading ahead. When a request for a model must wait because every
// backend that has it loaded is full (schedule.go, rule 2), and another
// backend that has the model can load it without evicting anything (its
// MaxLoadedModels is known and not reached: loadRoom), the gateway asks
// that backend to load the model, with Ollama's own load request (POST
// /api/generate naming only the model), and the request waits in the
// queue meanwhile. It takes whichever comes first: a slot freeing where
// the model is loaded, or the new copy once it is in memory (the load's
// end offers its slots to the queue, queue.offer). So no client pays a
// load while a busy copy would have answered it sooner, and a model in
// demand spreads to the backends with room for it at once: memory left
// empty serves nobody, and a model loaded there that later proves idle
// is the one Ollama evicts when another needs the room.
//
// Without a known MaxLoadedModels nothing is loaded ahead: a load might
// evict a model in use. One load per model and backend at a time (the
// sent table's loading mark); a load counts as a request for the model in
// flight there while it lasts, so that the backend is not chosen to load
// another model over it.

// preloadPath is the route of Ollama's load request.
const preloadPath = "/api/generate"

// preload starts loading the model of r on backend i of p, unless a load
// of it is already known there. It returns at once; the load runs in its
// own goroutine, bounded by the backend's first-byte timeout.
func (p *Proxy) preload(i int, r *route) {
	b := p.pool.backends[i]
	now := time.Now().UnixNano()
	s := b.noteSent(r.hash, now)
	if s == nil {
		return
	}
	if !s.loading.CompareAndSwap(0, now) {
		s.done()
		return
	}
	body, _ := json.Marshal(struct {
		Model string `json:"model"`
	}{string(r.name)})
	go p.load(i, s, now, body)
}

// load sends the load request to backend i, then ends the load's mark
// and offers the backend's slots to the queue. sent is when the load was
// noted in s.
func (p *Proxy) load(i int, s *sentModel, sent int64, body []byte) {
	b := p.pool.backends[i]
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	scheme := "http://"
	if b.client.IsTLS {
		scheme = "https://"
	}
	req.SetRequestURI(scheme + b.host + b.prefix + preloadPath)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	err := b.client.Do(req, resp)
	if err == nil && resp.StatusCode() != fasthttp.StatusOK {
		err = &preloadError{status: resp.StatusCode()}
	}
	s.loading.Store(0)
	if err != nil {
		// Not loaded: unless a request for it was sent there since, it
		// does not count as loaded there any more.
		s.at.CompareAndSwap(sent, 0)
	}
	s.done()
	if err != nil {
		err = safeError(err)
		p.opts.Logger.Warn("model load ahead failed", "backend", b.name, "err", err)
	} else if p.queue.depth.Load() > 0 {
		p.queue.offer(p.pool, i)
	}
	if f := p.opts.OnPreload; f != nil {
		f(b, err)
	}
}

// preloadError is a load request the backend answered with another
// status than 200.
type preloadError struct{ status int }

func (e *preloadError) Error() string {
	return "proxy: the backend answered the model load with status " + strconv.Itoa(e.status)
}

// mayPreload reports whether backend i of p may load a model ahead: its
// MaxLoadedModels is known and not reached, fit being its loadFit.
func (p *Pool) mayPreload(i int, fit loadFit) bool {
	return fit == loadRoom && p.backends[i].maxLoaded.Load() > 0
}
