package telemetry

import (
	"fmt"
	"io"
)

// writeKeyCounters writes <ns>_key_requests_total and
// <ns>_key_tokens_total from Options.Keys, at scrape time.
func (m *Metrics) writeKeyCounters(w io.Writer) {
	if m.opts.Keys == nil {
		return
	}
	fmt.Fprintf(w, "# HELP %s_key_requests_total Requests made with the API key (by name, else id), since start.\n# TYPE %s_key_requests_total counter\n", m.ns, m.ns)
	m.opts.Keys(func(key string, requests, _, _ int64) {
		fmt.Fprintf(w, "%s_key_requests_total{key=\"%s\"} %d\n", m.ns, escapeLabel(key), requests)
	})
	fmt.Fprintf(w, "# HELP %s_key_tokens_total Tokens used with the API key, by type (prompt or completion), since start.\n# TYPE %s_key_tokens_total counter\n", m.ns, m.ns)
	m.opts.Keys(func(key string, _, prompt, completion int64) {
		fmt.Fprintf(w, "%s_key_tokens_total{key=\"%s\",type=\"prompt\"} %d\n", m.ns, escapeLabel(key), prompt)
		fmt.Fprintf(w, "%s_key_tokens_total{key=\"%s\",type=\"completion\"} %d\n", m.ns, escapeLabel(key), completion)
	})
}
