package health

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTarget is a Target that records its state and the SetHealthy calls.
type fakeTarget struct {
	name string

	mu    sync.Mutex
	state string // "unknown", "up" or "down"
	calls int
}

func newFake(name string) *fakeTarget { return &fakeTarget{name: name, state: "unknown"} }

func (f *fakeTarget) Name() string { return f.name }

func (f *fakeTarget) Down() bool { return f.State() == "down" }

func (f *fakeTarget) SetHealthy(up bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	s := "down"
	if up {
		s = "up"
	}
	changed := f.state != s
	f.state = s
	return changed
}

func (f *fakeTarget) State() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeTarget) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// logBuf collects log output; slog handlers may write from several
// goroutines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuf) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// switchServer answers every request with the status it was last set to.
func switchServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	return srv, &status
}

// hungServer never answers until the test ends. entered receives a value
// each time a request arrives, if there is room.
func hungServer(t *testing.T) (srv *httptest.Server, entered <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	in := make(chan struct{}, 16)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case in <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)                 // runs second
	t.Cleanup(func() { close(release) }) // runs first, so Close does not wait
	return srv, in
}

type change struct {
	name string
	up   bool
}

func onChangeChan() (chan change, func(string, bool)) {
	ch := make(chan change, 64)
	return ch, func(name string, up bool) { ch <- change{name, up} }
}

// waitChange returns the next change, failing the test after a generous
// deadline.
func waitChange(t *testing.T, ch <-chan change) change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no state change within 5s")
		return change{}
	}
}

func TestNewDefaultsAndClamps(t *testing.T) {
	tests := []struct {
		name              string
		opts              Options
		interval, timeout time.Duration
		fail, rise        int
	}{
		{"zero", Options{}, 30 * time.Second, 5 * time.Second, 2, 1},
		{"set", Options{Interval: 10 * time.Second, Timeout: time.Second, FailThreshold: 3, RiseThreshold: 2},
			10 * time.Second, time.Second, 3, 2},
		{"tiny interval", Options{Interval: time.Millisecond}, time.Second, 5 * time.Second, 2, 1},
		{"negative", Options{Interval: -time.Second, Timeout: -1, FailThreshold: -1, RiseThreshold: -1},
			time.Second, 5 * time.Second, 2, 1},
	}
	for _, tt := range tests {
		c := New(nil, tt.opts)
		if c.interval != tt.interval || c.timeout != tt.timeout || c.fail != tt.fail || c.rise != tt.rise {
			t.Errorf("%s: got interval %v timeout %v fail %d rise %d; want %v %v %d %d", tt.name,
				c.interval, c.timeout, c.fail, c.rise, tt.interval, tt.timeout, tt.fail, tt.rise)
		}
	}
}

func TestNewDoesNotTouchTargets(t *testing.T) {
	a := newFake("http://a/")
	New([]Target{a, nil, a}, Options{})
	if n := a.Calls(); n != 0 {
		t.Errorf("New called SetHealthy %d times; want 0", n)
	}
}

// TestThresholds steps one backend through a sequence of answers, one Check
// per step, with FailThreshold 2 and RiseThreshold 2.
func TestThresholds(t *testing.T) {
	srv, status := switchServer(t)
	logs := &logBuf{}
	changes, onChange := onChangeChan()
	b := newFake(srv.URL)
	c := New([]Target{b}, Options{
		Timeout: 5 * time.Second, FailThreshold: 2, RiseThreshold: 2,
		Logger: logs.Logger(), OnChange: onChange,
	})
	ctx := t.Context()

	steps := []struct {
		status int
		want   string
		why    string
	}{
		{503, "unknown", "one failure of an unknown backend is below the threshold"},
		{200, "up", "first success marks it up"},
		{200, "up", "still up"},
		{503, "up", "one blip does not flap it"},
		{200, "up", "the blip is forgotten"},
		{503, "up", "first of two failures"},
		{500, "down", "second consecutive failure (any 5xx) marks it down"},
		{503, "down", "stays down"},
		{200, "down", "one success is below RiseThreshold 2"},
		{503, "down", "a failure resets the success streak"},
		{200, "down", "first of two successes"},
		{200, "up", "second consecutive success brings it back"},
	}
	for i, s := range steps {
		status.Store(int32(s.status))
		c.Check(ctx)
		if got := b.State(); got != s.want {
			t.Fatalf("step %d (%d, %s): state %q; want %q", i, s.status, s.why, got, s.want)
		}
	}

	// Exactly three changes, logged once each.
	var got []change
	for len(changes) > 0 {
		got = append(got, <-changes)
	}
	want := []change{{srv.URL, true}, {srv.URL, false}, {srv.URL, true}}
	if len(got) != len(want) {
		t.Fatalf("changes %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v; want %v", got, want)
		}
	}
	out := logs.String()
	if n := strings.Count(out, `msg="backend up"`); n != 2 {
		t.Errorf("%d \"backend up\" records; want 2\n%s", n, out)
	}
	if n := strings.Count(out, `level=WARN msg="backend down" backend=`+srv.URL+` err="status 500"`); n != 1 {
		t.Errorf("want one \"backend down\" record with err=\"status 500\"\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d log records; want 3 (state changes only)\n%s", n, out)
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	logs := &logBuf{}
	b := newFake(url)
	c := New([]Target{b}, Options{FailThreshold: 1, Logger: logs.Logger()})
	c.Check(t.Context())
	if got := b.State(); got != "down" {
		t.Fatalf("state %q; want down", got)
	}
	if out := logs.String(); !strings.Contains(out, `err="connection refused"`) {
		t.Errorf("log lacks err=\"connection refused\":\n%s", out)
	}
}

func TestTimeout(t *testing.T) {
	srv, _ := hungServer(t)
	logs := &logBuf{}
	b := newFake(srv.URL)
	c := New([]Target{b}, Options{Timeout: 100 * time.Millisecond, FailThreshold: 1, Logger: logs.Logger()})
	c.Check(t.Context())
	if got := b.State(); got != "down" {
		t.Fatalf("state %q; want down", got)
	}
	if out := logs.String(); !strings.Contains(out, `err="timeout after 100ms"`) {
		t.Errorf("log lacks err=\"timeout after 100ms\":\n%s", out)
	}
}

func TestPathJoined(t *testing.T) {
	var gotPath atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath.Store(r.URL.Path)
	}))
	defer srv.Close()
	b := newFake(srv.URL + "/ollama/")
	c := New([]Target{b}, Options{Path: "/api/version", Logger: slog.New(slog.DiscardHandler)})
	c.Check(t.Context())
	if got, _ := gotPath.Load().(string); got != "/ollama/api/version" {
		t.Errorf("requested path %q; want /ollama/api/version", got)
	}
	if got := b.State(); got != "up" {
		t.Errorf("state %q; want up", got)
	}
}

// TestRunHungBackendDoesNotDelayOthers: the hung backend comes first, so a
// Run that checked targets one after the other would report it down (after
// Timeout) before the healthy one up.
func TestRunHungBackendDoesNotDelayOthers(t *testing.T) {
	hung, _ := hungServer(t)
	ok, _ := switchServer(t)
	changes, onChange := onChangeChan()
	c := New([]Target{newFake(hung.URL), newFake(ok.URL)}, Options{
		Interval: time.Second, Timeout: 200 * time.Millisecond, FailThreshold: 1,
		Logger: slog.New(slog.DiscardHandler), OnChange: onChange,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if got, want := waitChange(t, changes), (change{ok.URL, true}); got != want {
		t.Fatalf("first change %v; want %v (the healthy backend, not delayed by the hung one)", got, want)
	}
	if got, want := waitChange(t, changes), (change{hung.URL, false}); got != want {
		t.Fatalf("second change %v; want %v", got, want)
	}
}

func TestReportFailure(t *testing.T) {
	srv, _ := switchServer(t)
	logs := &logBuf{}
	b := newFake(srv.URL)
	c := New([]Target{b}, Options{FailThreshold: 3, Logger: logs.Logger()})
	ctx := t.Context()

	c.Check(ctx)
	if got := b.State(); got != "up" {
		t.Fatalf("after a check: state %q; want up", got)
	}
	c.ReportFailure(b, errors.New("dial tcp: connection refused"))
	if got := b.State(); got != "down" {
		t.Fatalf("after ReportFailure: state %q; want down at once, despite FailThreshold 3", got)
	}
	if out := logs.String(); !strings.Contains(out, `err="dial tcp: connection refused"`) {
		t.Errorf("log lacks the reported error:\n%s", out)
	}
	c.Check(ctx)
	if got := b.State(); got != "up" {
		t.Fatalf("after the next check: state %q; want up", got)
	}

	// A target the Checker does not know is left alone: no check would
	// bring it back.
	stranger := newFake("http://stranger/")
	c.ReportFailure(stranger, nil)
	c.ReportFailure(nil, nil)
	if n := stranger.Calls(); n != 0 {
		t.Errorf("ReportFailure of an unknown target called SetHealthy %d times; want 0", n)
	}
}

// TestReportFailureDuringCheck: a check that was in flight when the proxy
// reported a failure must not bring the backend back with its older answer.
func TestReportFailureDuringCheck(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var gate atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate.Load() {
			entered <- struct{}{}
			<-release
		}
	}))
	defer srv.Close()
	b := newFake(srv.URL)
	c := New([]Target{b}, Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := t.Context()
	c.Check(ctx)

	gate.Store(true)
	checked := make(chan struct{})
	go func() { c.Check(ctx); close(checked) }()
	<-entered
	c.ReportFailure(b, errors.New("connection refused"))
	close(release)
	<-checked
	if got := b.State(); got != "down" {
		t.Fatalf("state %q; want down: the check started before the report", got)
	}

	gate.Store(false)
	c.Check(ctx)
	if got := b.State(); got != "up" {
		t.Fatalf("state %q; want up after a check started after the report", got)
	}
}

// TestRunStops: cancelling ctx ends Run while a check is in flight, and the
// cut-short check is not counted as a failure.
func TestRunStops(t *testing.T) {
	hung, entered := hungServer(t)
	b := newFake(hung.URL)
	c := New([]Target{b}, Options{Timeout: time.Minute, FailThreshold: 1, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()

	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no check reached the backend within 5s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	if got := b.State(); got != "unknown" {
		t.Errorf("state %q; want unknown: a check cut short by Run's end is not a failure", got)
	}
}

func TestRunNoTargetsStops(t *testing.T) {
	c := New(nil, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
}

// TestStateIsTheTargets: the Checker keeps no state of its own. A target
// already down when the Checker is made (a backend kept across a reload)
// stays down until RiseThreshold successes, and a target up already is not
// told again. Before, the Checker's own copy started unknown and brought a
// down backend back on the first success.
func TestStateIsTheTargets(t *testing.T) {
	srv, _ := switchServer(t)
	down := newFake(srv.URL)
	down.SetHealthy(false)
	changes, onChange := onChangeChan()
	c := New([]Target{down}, Options{RiseThreshold: 2, Logger: slog.New(slog.DiscardHandler), OnChange: onChange})
	ctx := t.Context()
	c.Check(ctx)
	if got := down.State(); got != "down" {
		t.Fatalf("after one success: state %q; want down (RiseThreshold 2)", got)
	}
	c.Check(ctx)
	if got := down.State(); got != "up" {
		t.Fatalf("after two successes: state %q; want up", got)
	}
	if got, want := waitChange(t, changes), (change{srv.URL, true}); got != want {
		t.Errorf("change %v; want %v", got, want)
	}

	up := newFake(srv.URL)
	up.SetHealthy(true)
	c = New([]Target{up}, Options{Logger: slog.New(slog.DiscardHandler), OnChange: onChange})
	c.Check(ctx)
	if len(changes) != 0 {
		t.Errorf("a check of a target up already reported a change: %v", <-changes)
	}
}

// TestConcurrentReports runs checks and passive reports at once; run with
// -race.
func TestConcurrentReports(t *testing.T) {
	srv, _ := switchServer(t)
	b := newFake(srv.URL)
	var changes atomic.Int64
	c := New([]Target{b}, Options{
		Logger:   slog.New(slog.DiscardHandler),
		OnChange: func(string, bool) { changes.Add(1) },
	})
	ctx := t.Context()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				c.ReportFailure(b, nil)
				_ = b.Down()
			}
		})
		wg.Go(func() {
			for range 5 {
				c.Check(ctx)
			}
		})
	}
	wg.Wait()
	c.Check(ctx)
	if got := b.State(); got != "up" {
		t.Errorf("state %q; want up after a final quiet check", got)
	}
}

// TestOnCheck: every active check is reported with its duration and its
// failure reason, "" for a success.
func TestOnCheck(t *testing.T) {
	srv, status := switchServer(t)
	type report struct {
		name   string
		took   time.Duration
		reason string
	}
	var mu sync.Mutex
	var got []report
	c := New([]Target{newFake(srv.URL)}, Options{Logger: slog.New(slog.DiscardHandler),
		OnCheck: func(name string, took time.Duration, reason string) {
			mu.Lock()
			got = append(got, report{name, took, reason})
			mu.Unlock()
		}})
	c.Check(t.Context())
	status.Store(http.StatusInternalServerError)
	c.Check(t.Context())
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("reports = %+v; want 2", got)
	}
	for i, wantFail := range []bool{false, true} {
		r := got[i]
		if r.name != srv.URL || r.took <= 0 || (r.reason != "") != wantFail {
			t.Errorf("report %d = %+v; want name %s, a positive duration, failed %v", i, r, srv.URL, wantFail)
		}
	}
	if !strings.Contains(got[1].reason, "500") {
		t.Errorf("failure reason %q; want the status named", got[1].reason)
	}
}
