package telemetry

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Histogram buckets, in seconds: from 5 ms to 10 min, since one generation
// can run for minutes.
var durationBuckets = []float64{
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
}

// tokensPerSecondBuckets covers CPU inference to fast GPUs.
var tokensPerSecondBuckets = []float64{1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000}

// AuthFailure says why a request was refused before reaching a backend:
// the `reason` label of <ns>_auth_failures_total.
type AuthFailure uint8

// The reasons.
const (
	AuthMissingKey AuthFailure = iota
	AuthInvalidKey
	AuthForbiddenIP
	AuthNotAdmin
	AuthThrottled
	// AuthExpiredKey: the key's expiresAt has passed.
	AuthExpiredKey
	// AuthModelNotAllowed: the key may not use the model the request
	// names, or the model cannot be read for a key restricted to models.
	AuthModelNotAllowed
	numAuthFailures
)

var authFailureNames = [numAuthFailures]string{"missing_key", "invalid_key", "forbidden_ip", "not_admin", "throttled",
	"expired_key", "model_not_allowed"}

// Options configure Metrics.
type Options struct {
	// Namespace prefixes every metric name. Default "gateway".
	Namespace string
	// MaxIPLabels bounds the distinct `ip` label values of
	// <ns>_requests_by_ip_total; later IPs are counted as ip="other".
	// Default 1000.
	MaxIPLabels int
	// MaxModelLabels bounds the distinct `model` label values; later
	// models are counted as model="other". Default 100.
	MaxModelLabels int
	// Gauges, if set, are called at scrape time.
	APIKeys func() int
	Servers func() int
	// Backends, if set, is called at scrape time for the per-backend
	// gauges: each backend's name, whether it is up, and its requests in
	// flight.
	Backends func(yield func(name string, up bool, inFlight int64))
	// BackendModels, if set, is called at scrape time for
	// <ns>_backend_models: each backend whose model list is known, with
	// the number of models in it. Backends with an unknown list are left
	// out.
	BackendModels func(yield func(name string, models int))
	// Keys, if set, is called at scrape time for the per-key counters
	// <ns>_key_requests_total{key} and <ns>_key_tokens_total{key,type}:
	// each configured key's label (its name, else its id) and its
	// counts since start. Only configured keys are listed, so the series
	// are bounded by the config.
	Keys func(yield func(key string, requests, prompt, completion int64))
	// QueueDepth, if set, is read at scrape time for <ns>_queue_depth:
	// the requests waiting for a backend slot.
	QueueDepth func() int
	// BackendCapacity, if set, is called at scrape time for
	// <ns>_backend_max_concurrent and <ns>_backend_loaded_models: each
	// backend's name, its cap on requests in flight (0: none) and the
	// number of models it has loaded (-1: unknown).
	BackendCapacity func(yield func(name string, maxConcurrent, loaded int))
}

// Metrics holds the metric handles of one namespace. Recording methods are
// safe for concurrent use and do not allocate once a label set was seen.
type Metrics struct {
	set  *metrics.Set
	ns   string
	opts Options

	pairs [][numMethods]atomic.Pointer[pairMetrics] // by class, then method
	ips   ipTable

	rateLimited *metrics.Counter
	authFails   [numAuthFailures]*metrics.Counter
	reloadOK    *metrics.Counter
	reloadFail  *metrics.Counter

	mu       sync.Mutex // guards creation of the maps' entries below
	backends sync.Map   // backend name -> *backendMetrics (few, stable keys)
	models   modelTable
	redis    redisTable
	queue    queueMetrics
}

// pairMetrics are the handles of one (method, endpoint) pair.
type pairMetrics struct {
	duration         *metrics.PrometheusHistogram
	success, failure *metrics.Counter
	status           [500]atomic.Pointer[metrics.Counter] // by status-100
	method, endpoint string
}

// New returns the metrics of opts.Namespace.
func New(opts Options) *Metrics {
	if opts.Namespace == "" {
		opts.Namespace = "gateway"
	}
	if opts.MaxIPLabels <= 0 {
		opts.MaxIPLabels = 1000
	}
	if opts.MaxModelLabels <= 0 {
		opts.MaxModelLabels = 100
	}
	// HELP and TYPE lines: a setting of the metrics library as a whole.
	metrics.ExposeMetadata(true)
	m := &Metrics{set: metrics.NewSet(), ns: opts.Namespace, opts: opts}
	m.pairs = make([][numMethods]atomic.Pointer[pairMetrics], ollamaapi.NumClasses())
	m.ips.init(opts.MaxIPLabels)
	m.models.max = opts.MaxModelLabels
	m.rateLimited = m.set.NewCounter(m.ns + "_rate_limited_total")
	for r := range numAuthFailures {
		m.authFails[r] = m.set.NewCounter(fmt.Sprintf(`%s_auth_failures_total{reason=%q}`, m.ns, authFailureNames[r]))
	}
	m.reloadOK = m.set.NewCounter(m.ns + `_config_reloads_total{result="success"}`)
	m.reloadFail = m.set.NewCounter(m.ns + `_config_reloads_total{result="failure"}`)
	m.initQueue()
	if opts.APIKeys != nil {
		m.set.NewGauge(m.ns+"_apikeys_total", func() float64 { return float64(opts.APIKeys()) })
	}
	if opts.Servers != nil {
		m.set.NewGauge(m.ns+"_ollama_servers_total", func() float64 { return float64(opts.Servers()) })
	}
	return m
}

func (m *Metrics) pair(method Method, ep ollamaapi.Class) *pairMetrics {
	if method >= numMethods {
		method = MethodOther
	}
	if int(ep) >= len(m.pairs) {
		ep = ollamaapi.ClassOther
	}
	slot := &m.pairs[ep][method]
	if p := slot.Load(); p != nil {
		return p
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := slot.Load(); p != nil {
		return p
	}
	labels := fmt.Sprintf(`{method=%q,endpoint=%q}`, method.String(), ep.String())
	p := &pairMetrics{
		duration: m.set.NewPrometheusHistogramExt(m.ns+"_requests_duration_seconds"+labels, durationBuckets),
		success:  m.set.NewCounter(m.ns + "_requests_success_total" + labels),
		failure:  m.set.NewCounter(m.ns + "_requests_failure_total" + labels),
		method:   method.String(),
		endpoint: ep.String(),
	}
	slot.Store(p)
	return p
}

func (m *Metrics) statusCounter(p *pairMetrics, status int) *metrics.Counter {
	if status < 100 || status > 599 {
		status = 599
	}
	slot := &p.status[status-100]
	if c := slot.Load(); c != nil {
		return c
	}
	c := m.set.GetOrCreateCounter(fmt.Sprintf(`%s_requests_total{method=%q,endpoint=%q,status="%d"}`, m.ns, p.method, p.endpoint, status))
	slot.Store(c)
	return c
}

// Request records one finished request: the spec's request counters, the
// duration histogram and the per-IP counter.
func (m *Metrics) Request(method Method, ep ollamaapi.Class, status int, d time.Duration, ip netip.Addr) {
	p := m.pair(method, ep)
	m.statusCounter(p, status).Inc()
	p.duration.Update(d.Seconds())
	if status >= 200 && status < 300 {
		p.success.Inc()
	} else {
		p.failure.Inc()
	}
	m.ips.counter(m, ip, ep, status).Inc()
}

// RateLimited counts a request refused by the rate or concurrency limit.
func (m *Metrics) RateLimited() { m.rateLimited.Inc() }

// AuthFailed counts a request refused by access control.
func (m *Metrics) AuthFailed(r AuthFailure) {
	if r < numAuthFailures {
		m.authFails[r].Inc()
	}
}

// Reload counts a configuration reload.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloadOK.Inc()
	} else {
		m.reloadFail.Inc()
	}
}

// WritePrometheus writes every metric in the Prometheus text format, with
// HELP and TYPE lines, followed by Go runtime and process metrics.
func (m *Metrics) WritePrometheus(w io.Writer) {
	var buf bytes.Buffer
	m.set.WritePrometheus(&buf)
	m.writeBackendGauges(&buf)
	m.writeKeyCounters(&buf)
	m.writeCapacityGauges(&buf)
	metrics.WriteProcessMetrics(&buf)
	m.writeWithHelp(w, buf.Bytes())
}

// help describes the gateway's own metric families (without namespace).
var help = map[string]string{
	"requests_total":              "HTTP requests handled, by method, route class and status.",
	"requests_duration_seconds":   "Time from request to the last response byte, by method and route class.",
	"requests_by_ip_total":        "HTTP requests by client IP (a bounded set; the rest as ip=\"other\"), route class and status.",
	"requests_success_total":      "HTTP requests answered 2xx, by method and route class.",
	"requests_failure_total":      "HTTP requests answered with any other status (401, 403 and 429 included).",
	"apikeys_total":               "Number of active API keys.",
	"ollama_servers_total":        "Number of configured Ollama servers.",
	"rate_limited_total":          "Requests refused by the rate or concurrency limit or a key's token budget.",
	"auth_failures_total":         "Requests refused by access control, by reason.",
	"config_reloads_total":        "Configuration reloads, by result.",
	"backend_errors_total":        "Failed attempts to reach an Ollama backend, by kind.",
	"time_to_first_token_seconds": "Time from request to the first response body byte from the backend (the first token of a stream).",
	"tokens_total":                "Tokens reported by the backends, by model and type (prompt or completion).",
	"tokens_per_second":           "Generation speed reported by the backends (eval_count / eval_duration).",
	"redis_duration_seconds":      "Round-trip time of calls to the shared Redis, by operation.",
	"redis_errors_total":          "Calls to the shared Redis that failed (unreachable, timeout, error reply), by operation.",
	"queue_wait_seconds":          "Time requests waited for a backend slot when every backend that could serve them was full (refusals included, at 0).",
	"queue_rejected_total":        "Requests that left the scheduling queue without a slot, by reason (full, timeout, client_gone).",
	"queue_depth":                 "Requests waiting for a backend slot.",
}

// writeWithHelp copies an exposition to w, completing the bare "# HELP
// name" lines VictoriaMetrics writes with a description.
func (m *Metrics) writeWithHelp(w io.Writer, b []byte) {
	prefix := m.ns + "_"
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		name, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("# HELP "))
		if !ok || bytes.IndexByte(name, ' ') >= 0 {
			w.Write(line)
			continue
		}
		text := help[strings.TrimPrefix(string(name), prefix)]
		if text == "" || !bytes.HasPrefix(name, []byte(prefix)) {
			text = "Go runtime or process metric " + string(name) + "."
		}
		fmt.Fprintf(w, "# HELP %s %s\n", name, text)
	}
}

// escapeLabel escapes a label value for the Prometheus text format.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return strings.ReplaceAll(s, "\n", `\n`)
}

// ipTable bounds the `ip` label: the first max distinct IPs get their own
// series, later ones share ip="other". Sharded to keep the lock per
// request short and uncontended.
type ipTable struct {
	max      int
	distinct atomic.Int64
	shards   [16]ipShard
}

type ipShard struct {
	mu       sync.RWMutex
	counters map[ipSeries]*metrics.Counter
	known    map[netip.Addr]bool
}

type ipSeries struct {
	ip     netip.Addr // zero for "other"
	ep     ollamaapi.Class
	status uint16
}

func (t *ipTable) init(max int) {
	t.max = max
	for i := range t.shards {
		t.shards[i].counters = map[ipSeries]*metrics.Counter{}
		t.shards[i].known = map[netip.Addr]bool{}
	}
}

func (t *ipTable) counter(m *Metrics, ip netip.Addr, ep ollamaapi.Class, status int) *metrics.Counter {
	// A zone (fe80::1%eth0) is not part of the client's identity, may hold
	// any byte, and would multiply the series: drop it before the label.
	ip = ip.Unmap().WithZone("")
	key := ipSeries{ip: ip, ep: ep, status: uint16(status)}
	sh := &t.shards[shardOf(ip)]
	sh.mu.RLock()
	c, ok := sh.counters[key]
	if !ok && (!ip.IsValid() || (!sh.known[ip] && t.distinct.Load() >= int64(t.max))) {
		key.ip = netip.Addr{}
		c, ok = sh.counters[key]
	}
	sh.mu.RUnlock()
	if ok {
		return c
	}

	sh.mu.Lock()
	defer sh.mu.Unlock()
	label := "other"
	switch {
	case !key.ip.IsValid():
	case sh.known[ip]:
		label = ip.String()
	case t.distinct.Add(1) <= int64(t.max):
		sh.known[ip] = true
		label = ip.String()
	default:
		t.distinct.Add(-1)
		key.ip = netip.Addr{}
	}
	if c, ok := sh.counters[key]; ok {
		return c
	}
	c = m.set.GetOrCreateCounter(fmt.Sprintf(`%s_requests_by_ip_total{ip="%s",endpoint="%s",status="%d"}`,
		m.ns, ipLabel(label), escapeLabel(ep.String()), status))
	sh.counters[key] = c
	return c
}

// maxIPLabelLen bounds the `ip` label value; an IPv6 address without zone
// is at most 39 bytes.
const maxIPLabelLen = 45

// ipLabel is the `ip` label value of an address string: escaped like every
// other label (escapeLabel) and at most maxIPLabelLen bytes, cut at a UTF-8
// boundary.
func ipLabel(s string) string {
	if len(s) > maxIPLabelLen {
		s = strings.ToValidUTF8(s[:maxIPLabelLen], "")
	}
	return escapeLabel(s)
}

func shardOf(a netip.Addr) int {
	b := a.As16()
	return int(b[15]^b[13]^b[11]) & 15
}
