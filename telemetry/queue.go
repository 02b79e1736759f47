package telemetry

import (
	"fmt"
	"io"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// QueueOutcome says how a request's wait in the scheduling queue ended:
// the `reason` label of <ns>_queue_rejected_total, but for QueueDispatched.
type QueueOutcome uint8

// The outcomes.
const (
	QueueDispatched QueueOutcome = iota // a slot freed: the request went on
	QueueFull                           // refused at once: the queue was full (or off)
	QueueTimeout                        // waited the whole queue timeout
	QueueClientGone                     // the client left while queued
	numQueueOutcomes
)

var queueOutcomeNames = [numQueueOutcomes]string{"dispatched", "full", "timeout", "client_gone"}

// queueMetrics are the handles of the scheduling queue.
type queueMetrics struct {
	wait     *metrics.PrometheusHistogram
	rejected [numQueueOutcomes]*metrics.Counter // QueueDispatched unused
}

func (m *Metrics) initQueue() {
	m.queue.wait = m.set.NewPrometheusHistogramExt(m.ns+"_queue_wait_seconds", durationBuckets)
	for o := QueueFull; o < numQueueOutcomes; o++ {
		m.queue.rejected[o] = m.set.NewCounter(fmt.Sprintf(`%s_queue_rejected_total{reason=%q}`, m.ns, queueOutcomeNames[o]))
	}
	if m.opts.QueueDepth != nil {
		m.set.NewGauge(m.ns+"_queue_depth", func() float64 { return float64(m.opts.QueueDepth()) })
	}
}

// Queued records the end of one request's wait for a backend slot: how
// long it waited (a refused one at once, too) and how it ended.
func (m *Metrics) Queued(waited time.Duration, o QueueOutcome) {
	if o >= numQueueOutcomes {
		return
	}
	m.queue.wait.Update(waited.Seconds())
	if c := m.queue.rejected[o]; c != nil {
		c.Inc()
	}
}

// writeCapacityGauges writes <ns>_backend_max_concurrent (backends with a
// cap) and <ns>_backend_loaded_models (backends whose /api/ps is known).
func (m *Metrics) writeCapacityGauges(w io.Writer) {
	if m.opts.BackendCapacity == nil {
		return
	}
	fmt.Fprintf(w, "# HELP %s_backend_max_concurrent The Ollama backend's cap on requests in flight (ollamaAddresses[].maxConcurrent); absent without a cap.\n# TYPE %s_backend_max_concurrent gauge\n", m.ns, m.ns)
	m.opts.BackendCapacity(func(name string, maxConcurrent, _ int) {
		if maxConcurrent > 0 {
			fmt.Fprintf(w, "%s_backend_max_concurrent{backend=\"%s\"} %d\n", m.ns, escapeLabel(name), maxConcurrent)
		}
	})
	fmt.Fprintf(w, "# HELP %s_backend_loaded_models Models the Ollama backend has loaded in memory (/api/ps); absent while unknown.\n# TYPE %s_backend_loaded_models gauge\n", m.ns, m.ns)
	m.opts.BackendCapacity(func(name string, _, loaded int) {
		if loaded >= 0 {
			fmt.Fprintf(w, "%s_backend_loaded_models{backend=\"%s\"} %d\n", m.ns, escapeLabel(name), loaded)
		}
	})
}
