package telemetry

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// class returns the metrics class of a request.
func class(method, path string) ollamaapi.Class {
	return ollamaapi.Lookup([]byte(method), []byte(path)).Class()
}

var (
	classChat = class("POST", "/api/chat")
	classTags = class("GET", "/api/tags")
)

func TestClassifyMethod(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "get": "OTHER", "PROPFIND": "OTHER", "": "OTHER", "OPTIONS": "OPTIONS"} {
		if got := ClassifyMethod([]byte(in)).String(); got != want {
			t.Errorf("ClassifyMethod(%q) = %q; want %q", in, got, want)
		}
	}
}

func expose(m *Metrics) string {
	var b bytes.Buffer
	m.WritePrometheus(&b)
	return b.String()
}

// value returns the sample of series in an exposition, or -1.
func value(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("series %s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

func TestRequestCounters(t *testing.T) {
	m := New(Options{Namespace: "gw", APIKeys: func() int { return 3 }, Servers: func() int { return 2 }})
	ip := netip.MustParseAddr("10.0.0.1")
	for range 7 {
		m.Request(MethodPost, classChat, 200, 1500*time.Millisecond, ip)
	}
	m.Request(MethodPost, classChat, 401, time.Millisecond, ip)
	m.Request(MethodGet, classTags, 429, time.Millisecond, ip)
	out := expose(m)
	checks := map[string]float64{
		`gw_requests_total{method="POST",endpoint="/api/chat",status="200"}`:               7,
		`gw_requests_total{method="POST",endpoint="/api/chat",status="401"}`:               1,
		`gw_requests_success_total{method="POST",endpoint="/api/chat"}`:                    7,
		`gw_requests_failure_total{method="POST",endpoint="/api/chat"}`:                    1,
		`gw_requests_failure_total{method="GET",endpoint="/api/tags"}`:                     1,
		`gw_requests_duration_seconds_count{method="POST",endpoint="/api/chat"}`:           8,
		`gw_requests_duration_seconds_bucket{method="POST",endpoint="/api/chat",le="1"}`:   1,
		`gw_requests_duration_seconds_bucket{method="POST",endpoint="/api/chat",le="2.5"}`: 8,
		`gw_requests_by_ip_total{ip="10.0.0.1",endpoint="/api/chat",status="200"}`:         7,
		`gw_apikeys_total`:        3,
		`gw_ollama_servers_total`: 2,
	}
	for series, want := range checks {
		if got := value(t, out, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
	if !strings.Contains(out, "# TYPE gw_requests_duration_seconds histogram") || !strings.Contains(out, "# HELP gw_requests_total HTTP requests") {
		t.Error("HELP/TYPE metadata missing")
	}
	if !strings.Contains(out, "process_resident_memory_bytes") && !strings.Contains(out, "go_goroutines") {
		t.Error("Go runtime/process metrics missing")
	}
}

func TestBackendModelsGauge(t *testing.T) {
	m := New(Options{BackendModels: func(yield func(string, int)) {
		yield("http://gpu1:11434/", 3)
		yield(`http://gpu2:11434/"x`, 0)
	}})
	out := expose(m)
	if got := value(t, out, `gateway_backend_models{backend="http://gpu1:11434/"}`); got != 3 {
		t.Errorf("gpu1 models = %v; want 3", got)
	}
	if got := value(t, out, `gateway_backend_models{backend="http://gpu2:11434/\"x"}`); got != 0 {
		t.Errorf("gpu2 models = %v; want 0 (label escaped)", got)
	}
	if strings.Contains(expose(New(Options{})), "backend_models") {
		t.Error("backend_models written without BackendModels")
	}
}

func TestIPLabelsBounded(t *testing.T) {
	m := New(Options{MaxIPLabels: 3})
	for i := range 50 {
		m.Request(MethodGet, classTags, 200, time.Millisecond, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	out := expose(m)
	if n := strings.Count(out, "gateway_requests_by_ip_total{"); n != 4 {
		t.Errorf("%d by-ip series; want 3 IPs + other", n)
	}
	if got := value(t, out, `gateway_requests_by_ip_total{ip="other",endpoint="/api/tags",status="200"}`); got != 47 {
		t.Errorf("ip=other = %v; want 47", got)
	}
}

func TestRandomPathsAddNoSeries(t *testing.T) {
	m := New(Options{})
	ip := netip.MustParseAddr("10.0.0.1")
	m.Request(MethodGet, class("GET", "/x"), 404, time.Millisecond, ip)
	before := strings.Count(expose(m), "\n")
	for i := range 10000 {
		m.Request(MethodGet, class("GET", fmt.Sprintf("/random/%d", i)), 404, time.Millisecond, ip)
	}
	if after := strings.Count(expose(m), "\n"); after-before > 40 { // process metrics vary a little
		t.Errorf("10,000 random paths grew the exposition from %d to %d lines", before, after)
	}
}

func TestUpstreamTokens(t *testing.T) {
	m := New(Options{MaxModelLabels: 1})
	u := Usage{OK: true, Model: "llama3.2", Prompt: 26, Completion: 5, EvalNanos: 500000000}
	m.Upstream(classChat, "http://gpu1:11434", 200*time.Millisecond, u)
	m.Upstream(classChat, "http://gpu1:11434", 100*time.Millisecond, Usage{OK: true, Model: "other-model", Prompt: 1, Completion: 2})
	m.BackendError("http://gpu1:11434", "connect")
	out := expose(m)
	checks := map[string]float64{
		`gateway_tokens_total{model="llama3.2",backend="http://gpu1:11434",type="prompt"}`:            26,
		`gateway_tokens_total{model="llama3.2",backend="http://gpu1:11434",type="completion"}`:        5,
		`gateway_tokens_total{model="other",backend="http://gpu1:11434",type="completion"}`:           2,
		`gateway_tokens_per_second_count{model="llama3.2",backend="http://gpu1:11434"}`:               1,
		`gateway_tokens_per_second_bucket{model="llama3.2",backend="http://gpu1:11434",le="10"}`:      1,
		`gateway_time_to_first_token_seconds_count{endpoint="/api/chat",backend="http://gpu1:11434"}`: 2,
		`gateway_backend_errors_total{backend="http://gpu1:11434",kind="connect"}`:                    1,
	}
	for series, want := range checks {
		if got := value(t, out, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
}

func TestRequestNoAllocs(t *testing.T) {
	m := New(Options{})
	ip := netip.MustParseAddr("10.0.0.1")
	m.Request(MethodPost, classChat, 200, time.Second, ip)
	if n := testing.AllocsPerRun(1000, func() { m.Request(MethodPost, classChat, 200, time.Second, ip) }); n != 0 {
		t.Errorf("Request allocates %v times per call; want 0", n)
	}
}

// TestPromtoolAcceptsExposition runs `promtool check metrics` (Debian
// package prometheus) on a full exposition. Outside CI it skips when
// promtool is missing; in CI (CI set) a missing promtool fails.
func TestPromtoolAcceptsExposition(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not installed in CI")
		}
		t.Skip("promtool not installed")
	}
	m := New(Options{
		APIKeys: func() int { return 1 }, Servers: func() int { return 1 },
		Backends:      func(yield func(string, bool, int64)) { yield("http://localhost:11434/", true, 2) },
		BackendModels: func(yield func(string, int)) { yield("http://localhost:11434/", 3) },
	})
	ip := netip.MustParseAddr("::1")
	m.Request(MethodPost, classChat, 200, time.Second, ip)
	m.Request(MethodGet, ollamaapi.ClassOther, 404, time.Millisecond, ip)
	m.Upstream(classChat, "http://localhost:11434/", time.Second, Usage{OK: true, Model: "llama3.2", Prompt: 1, Completion: 5, EvalNanos: 1e9})
	m.BackendError("http://localhost:11434/", "timeout")
	m.AuthFailed(AuthInvalidKey)
	m.RateLimited()
	m.Reload(true)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(expose(m))
	out, err := cmd.CombinedOutput()
	// Allowed lints: the spec names two gauges *_total (a contract), and
	// the Go runtime and process metrics are named by the metrics library.
	// Any parse error or lint of our own metrics fails.
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "",
			strings.HasPrefix(line, "go_"), strings.HasPrefix(line, "process_"),
			strings.HasPrefix(line, "gateway_apikeys_total non-counter metrics should not have \"_total\" suffix"),
			strings.HasPrefix(line, "gateway_ollama_servers_total non-counter metrics should not have \"_total\" suffix"):
			continue
		}
		problems = append(problems, line)
	}
	if len(problems) > 0 {
		t.Errorf("promtool check metrics (%v):\n%s", err, strings.Join(problems, "\n"))
	}
}

func BenchmarkMetricsHotPath(b *testing.B) {
	m := New(Options{})
	ip := netip.MustParseAddr("10.0.0.1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request(MethodPost, classChat, 200, 20*time.Millisecond, ip)
		}
	})
}

// TestIPLabelWithoutZone: issue 10, item 7. An IPv6 zone may hold any byte
// (quotes, tabs, newlines): it is dropped before the label, so one client
// is one series and the exposition stays valid.
func TestIPLabelWithoutZone(t *testing.T) {
	m := New(Options{})
	for _, zone := range []string{"eth0", "a\"b", "x\ty", "new\nline", "\xff"} {
		m.Request(MethodGet, classTags, 200, time.Millisecond, netip.MustParseAddr("fe80::1").WithZone(zone))
	}
	out := expose(m)
	if got := value(t, out, `gateway_requests_by_ip_total{ip="fe80::1",endpoint="/api/tags",status="200"}`); got != 5 {
		t.Errorf(`ip="fe80::1" = %v; want 5 (zones dropped)`, got)
	}
	if n := strings.Count(out, "gateway_requests_by_ip_total{"); n != 1 {
		t.Errorf("%d by-ip series; want 1:\n%s", n, out)
	}
}

func TestIPLabelEscapedAndBounded(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"other", "other"},
		{`a"b\c` + "\n", `a\"b\\c\n`},
		{strings.Repeat("f", 100), strings.Repeat("f", maxIPLabelLen)},
		{strings.Repeat("a", maxIPLabelLen-1) + "é", strings.Repeat("a", maxIPLabelLen-1)},
	} {
		if got := ipLabel(tt.in); got != tt.want {
			t.Errorf("ipLabel(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestQueueMetrics(t *testing.T) {
	m := New(Options{
		QueueDepth: func() int { return 7 },
		BackendCapacity: func(yield func(string, int, int)) {
			yield("http://gpu1:11434/", 4, 2)
			yield("http://gpu2:11434/", 0, -1)
		},
	})
	m.Queued(2*time.Second, QueueDispatched)
	m.Queued(0, QueueFull)
	m.Queued(time.Minute, QueueTimeout)
	m.Queued(time.Second, QueueClientGone)
	out := expose(m)
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`gateway_queue_depth`, 7},
		{`gateway_queue_wait_seconds_count`, 4},
		{`gateway_queue_rejected_total{reason="full"}`, 1},
		{`gateway_queue_rejected_total{reason="timeout"}`, 1},
		{`gateway_queue_rejected_total{reason="client_gone"}`, 1},
		{`gateway_backend_max_concurrent{backend="http://gpu1:11434/"}`, 4},
		{`gateway_backend_loaded_models{backend="http://gpu1:11434/"}`, 2},
	} {
		if got := value(t, out, tt.series); got != tt.want {
			t.Errorf("%s = %v; want %v", tt.series, got, tt.want)
		}
	}
	if strings.Contains(out, `backend_max_concurrent{backend="http://gpu2`) || strings.Contains(out, `loaded_models{backend="http://gpu2`) {
		t.Error("gauges written for a backend without a cap or a known /api/ps")
	}
}
