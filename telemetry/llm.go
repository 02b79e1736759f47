package telemetry

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// backendMetrics are the handles of one backend.
type backendMetrics struct {
	label string // escaped backend name
	errs  sync.Map
	ttft  []atomic.Pointer[metrics.PrometheusHistogram] // by class
}

func (m *Metrics) backend(name string) *backendMetrics {
	if b, ok := m.backends.Load(name); ok {
		return b.(*backendMetrics)
	}
	b, _ := m.backends.LoadOrStore(name, &backendMetrics{label: escapeLabel(name),
		ttft: make([]atomic.Pointer[metrics.PrometheusHistogram], ollamaapi.NumClasses())})
	return b.(*backendMetrics)
}

// BackendError counts a failed attempt to reach a backend, by kind
// ("connect", "timeout", "busy", "closed", "other").
func (m *Metrics) BackendError(backend, kind string) {
	b := m.backend(backend)
	c, ok := b.errs.Load(kind)
	if !ok {
		c, _ = b.errs.LoadOrStore(kind, m.set.GetOrCreateCounter(
			fmt.Sprintf(`%s_backend_errors_total{backend="%s",kind=%q}`, m.ns, b.label, kind)))
	}
	c.(*metrics.Counter).Inc()
}

// ModelPreload counts a model load the gateway asked a backend for ahead
// of the requests (fleet scheduling's load ahead), by result: "loaded" or
// "failed". Such loads are rare, so the counter is looked up each time.
func (m *Metrics) ModelPreload(backend string, loaded bool) {
	result := "failed"
	if loaded {
		result = "loaded"
	}
	m.set.GetOrCreateCounter(fmt.Sprintf(`%s_backend_model_preloads_total{backend="%s",result=%q}`,
		m.ns, m.backend(backend).label, result)).Inc()
}

// Upstream records what a finished backend exchange tells: the time to its
// first body byte (for a stream: the first token) and the token counts u
// (see UsageOf).
func (m *Metrics) Upstream(ep ollamaapi.Class, backend string, firstByte time.Duration, u Usage) {
	b := m.backend(backend)
	if int(ep) >= len(b.ttft) {
		ep = ollamaapi.ClassOther
	}
	if firstByte > 0 {
		slot := &b.ttft[ep]
		h := slot.Load()
		if h == nil {
			h = m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`%s_time_to_first_token_seconds{endpoint=%q,backend="%s"}`,
				m.ns, ep.String(), b.label), durationBuckets)
			slot.Store(h)
		}
		h.Update(firstByte.Seconds())
	}
	if !u.OK {
		return
	}
	model := m.models.label(u.Model)
	m.tokens(model, b.label, "prompt").Add(u.Prompt)
	m.tokens(model, b.label, "completion").Add(u.Completion)
	if u.EvalNanos > 0 && u.Completion > 0 {
		m.tokensPerSecond(model, b.label).Update(float64(u.Completion) / (float64(u.EvalNanos) / 1e9))
	}
}

func (m *Metrics) tokens(model, backend, typ string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`%s_tokens_total{model="%s",backend="%s",type=%q}`, m.ns, model, backend, typ))
}

func (m *Metrics) tokensPerSecond(model, backend string) *metrics.PrometheusHistogram {
	return m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`%s_tokens_per_second{model="%s",backend="%s"}`, m.ns, model, backend),
		tokensPerSecondBuckets)
}

// modelTable bounds the `model` label. Model names come from the backend's
// own successful answers, so only models the backends serve can appear;
// the cap guards against a backend with very many.
type modelTable struct {
	mu    sync.Mutex
	max   int
	names map[string]string
}

func (t *modelTable) label(model string) string {
	if model == "" {
		return "other"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.names[model]; ok {
		return l
	}
	if t.names == nil {
		t.names = map[string]string{}
	}
	if len(t.names) >= t.max {
		return "other"
	}
	l := escapeLabel(model)
	t.names[model] = l
	return l
}

// writeBackendGauges writes <ns>_backend_up, <ns>_backend_in_flight and
// <ns>_backend_models for the backends of the live configuration, read at
// scrape time.
func (m *Metrics) writeBackendGauges(w io.Writer) {
	if m.opts.BackendModels != nil {
		fmt.Fprintf(w, "# HELP %s_backend_models Models in the Ollama backend's model list, for model-aware routing; absent while the list is unknown.\n# TYPE %s_backend_models gauge\n", m.ns, m.ns)
		m.opts.BackendModels(func(name string, n int) {
			fmt.Fprintf(w, "%s_backend_models{backend=\"%s\"} %d\n", m.ns, escapeLabel(name), n)
		})
	}
	if m.opts.Backends == nil {
		return
	}
	fmt.Fprintf(w, "# HELP %s_backend_up Whether the Ollama backend is usable (1) or known down (0).\n# TYPE %s_backend_up gauge\n", m.ns, m.ns)
	m.opts.Backends(func(name string, up bool, _ int64) {
		v := 0
		if up {
			v = 1
		}
		fmt.Fprintf(w, "%s_backend_up{backend=\"%s\"} %d\n", m.ns, escapeLabel(name), v)
	})
	fmt.Fprintf(w, "# HELP %s_backend_in_flight Requests being served by the Ollama backend, streams included.\n# TYPE %s_backend_in_flight gauge\n", m.ns, m.ns)
	m.opts.Backends(func(name string, _ bool, n int64) {
		fmt.Fprintf(w, "%s_backend_in_flight{backend=\"%s\"} %d\n", m.ns, escapeLabel(name), n)
	})
}
