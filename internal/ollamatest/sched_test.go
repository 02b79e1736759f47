package ollamatest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// busyBody is Ollama's 503 body for a full pending queue.
const busyBody = `{"error":"server busy, please try again.  maximum pending requests exceeded"}`

// waitState waits, on the server's change signal, until cond holds.
func waitState(t *testing.T, s *Server, what string, cond func() bool) {
	t.Helper()
	if err := s.WaitFor(testContext(t), cond); err != nil {
		t.Fatalf("waiting for %s: %v (running %d, queued %d, pending %d, loaded %v)",
			what, err, s.Running(""), s.Queued(""), s.Pending(), s.Loaded())
	}
}

// holder is a chat stream on a paced server: it holds its model (and a
// slot, once it has one) until stop.
type holder struct {
	cancel context.CancelFunc
	done   chan error
}

// hold starts a chat stream for model; on a paced server it stays
// in the server until stop, as no chunk is released.
func hold(t *testing.T, c *api.Client, model string, keepAlive *api.Duration) *holder {
	t.Helper()
	ctx, cancel := context.WithCancel(testContext(t))
	h := &holder{cancel: cancel, done: make(chan error, 1)}
	go func() {
		h.done <- c.Chat(ctx, &api.ChatRequest{
			Model:     model,
			Messages:  []api.Message{{Role: "user", Content: "hi"}},
			KeepAlive: keepAlive,
		}, func(api.ChatResponse) error { return nil })
	}()
	t.Cleanup(h.stop)
	return h
}

// stop cancels the stream and waits for the client to return.
func (h *holder) stop() {
	h.cancel()
	if h.done != nil {
		<-h.done
		h.done = nil
	}
}

// generate sends a non-streamed generation and returns its answer.
func generate(ctx context.Context, c *api.Client, model string, keepAlive *api.Duration) (api.GenerateResponse, error) {
	stream := false
	var got api.GenerateResponse
	err := c.Generate(ctx, &api.GenerateRequest{
		Model: model, Prompt: "hi", Stream: &stream, KeepAlive: keepAlive,
	}, func(r api.GenerateResponse) error { got = r; return nil })
	return got, err
}

// goGenerate runs generate in a goroutine; the channel gets its error.
func goGenerate(t *testing.T, c *api.Client, model string) <-chan error {
	ch := make(chan error, 1)
	ctx := testContext(t)
	go func() {
		_, err := generate(ctx, c, model, nil)
		ch <- err
	}()
	return ch
}

func keep(d time.Duration) *api.Duration { return &api.Duration{Duration: d} }

func sameNames(got, want []string) bool {
	got, want = slices.Clone(got), slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

func TestSchedulerParallelLimit(t *testing.T) {
	for _, parallel := range []int{1, 2, 3} {
		t.Run(strings.Repeat("I", parallel), func(t *testing.T) {
			s := New(t, WithPaced(), WithParallel(parallel), WithLoaded("llama3.2"))
			c := newClient(t, s)
			var hs []*holder
			for range parallel + 2 {
				hs = append(hs, hold(t, c, "llama3.2", nil))
			}
			waitState(t, s, "the limit reached", func() bool {
				return s.Running("llama3.2") == parallel && s.Queued("llama3.2") == 2
			})
			if got, want := s.InFlight(), int64(parallel+2); got != want {
				t.Errorf("InFlight = %d; want %d", got, want)
			}
			hs[0].stop()
			waitState(t, s, "a waiting request taking the freed slot", func() bool {
				return s.Running("llama3.2") == parallel && s.Queued("llama3.2") == 1
			})
			for _, h := range hs {
				h.stop()
			}
			waitState(t, s, "all done", func() bool { return s.Running("") == 0 && s.Queued("") == 0 })
			if got := s.Loads("llama3.2"); got != 0 {
				t.Errorf("Loads = %d; want 0 (preloaded)", got)
			}
		})
	}
}

// TestSchedulerSlotsFIFO: a freed slot goes to the request that waited
// longest, as on Ollama's runner semaphore.
func TestSchedulerSlotsFIFO(t *testing.T) {
	s := New(t, WithPaced(), WithParallel(1), WithLoaded("llama3.2"))
	c := newClient(t, s)
	a := hold(t, c, "llama3.2", nil)
	waitState(t, s, "a running", func() bool { return s.Running("") == 1 })
	b := hold(t, c, "llama3.2", nil)
	waitState(t, s, "b queued", func() bool { return s.Queued("") == 1 })
	cc := hold(t, c, "llama3.2", nil)
	waitState(t, s, "c queued", func() bool { return s.Queued("") == 2 })
	a.stop()
	waitState(t, s, "a gone", func() bool { return s.Running("") == 1 && s.Queued("") == 1 })
	cc.stop()
	waitState(t, s, "c gone", func() bool { return s.Running("")+s.Queued("") == 1 })
	if got := s.Running(""); got != 1 {
		t.Fatalf("after the third request left, Running = %d; want 1 (the second one, first in line, runs)", got)
	}
	b.stop()
}

// TestSchedulerRoutes: every generating route waits for a slot.
func TestSchedulerRoutes(t *testing.T) {
	tests := []struct {
		path, body string
	}{
		{"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}`},
		{"/api/generate", `{"model":"llama3.2","prompt":"hi","stream":false}`},
		{"/api/embed", `{"model":"llama3.2","input":"hi"}`},
		{"/v1/chat/completions", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			s := New(t, WithPaced(), WithParallel(1), WithLoaded("llama3.2"))
			h := hold(t, newClient(t, s), "llama3.2", nil)
			waitState(t, s, "the slot taken", func() bool { return s.Running("") == 1 })
			type result struct {
				code int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := http.Post(s.URL+tt.path, "application/json", strings.NewReader(tt.body))
				if err != nil {
					done <- result{err: err}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				done <- result{code: resp.StatusCode}
			}()
			waitState(t, s, "the request waiting for the slot", func() bool { return s.Queued("") == 1 })
			select {
			case r := <-done:
				t.Fatalf("answered while the slot was taken: %+v", r)
			default:
			}
			h.stop()
			r := <-done
			if r.err != nil || r.code != http.StatusOK {
				t.Fatalf("got %d, %v; want 200", r.code, r.err)
			}
		})
	}
}

// TestSchedulerLoadOnlyTakesNoSlot: a request with nothing to generate
// loads the model and answers without waiting for a slot, as in Ollama.
func TestSchedulerLoadOnlyTakesNoSlot(t *testing.T) {
	s := New(t, WithPaced(), WithParallel(1), WithLoaded("llama3.2"))
	c := newClient(t, s)
	hold(t, c, "llama3.2", nil)
	waitState(t, s, "the slot taken", func() bool { return s.Running("") == 1 })
	var got api.GenerateResponse
	if err := c.Generate(testContext(t), &api.GenerateRequest{Model: "llama3.2"}, func(r api.GenerateResponse) error {
		got = r
		return nil
	}); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if got.DoneReason != "load" {
		t.Errorf("done_reason = %q; want load", got.DoneReason)
	}
}

// TestSchedulerQueueFull503: past WithMaxQueue requests behind the one
// being scheduled, a request for a model that is not loaded gets Ollama's
// 503 before any byte; a request for a loaded model is never refused.
func TestSchedulerQueueFull503(t *testing.T) {
	for _, maxQueue := range []int{0, 1, 3} {
		t.Run(strings.Repeat("I", maxQueue+1), func(t *testing.T) {
			s := New(t, WithPaced(), WithModels("a", "b", "c"), WithLoaded("a"),
				WithMaxLoadedModels(1), WithMaxQueue(maxQueue))
			c := newClient(t, s)
			h := hold(t, c, "a", nil)
			waitState(t, s, "a busy", func() bool { return s.Running("a") == 1 })
			var waiting []<-chan error
			for i := range maxQueue + 1 { // the head, blocked on busy a, and maxQueue behind it
				waiting = append(waiting, goGenerate(t, c, "b"))
				waitState(t, s, "pending", func() bool { return s.Pending() == i+1 })
			}

			resp, err := http.Post(s.URL+"/api/generate", "application/json",
				strings.NewReader(`{"model":"c","prompt":"hi","stream":false}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || string(body) != busyBody {
				t.Errorf("got %d %s; want 503 %s", resp.StatusCode, body, busyBody)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("Content-Type = %q; want %q", got, want)
			}
			_, err = generate(testContext(t), c, "b", nil)
			var se api.StatusError
			if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable ||
				se.ErrorMessage != "server busy, please try again.  maximum pending requests exceeded" {
				t.Errorf("Go client: got %v; want the 503 StatusError", err)
			}
			resp, err = http.Post(s.URL+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"c","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := `{"error":{"message":"server busy, please try again.  maximum pending requests exceeded","type":"api_error","param":null,"code":null}}` + "\n"; resp.StatusCode != http.StatusServiceUnavailable || string(body) != want {
				t.Errorf("OpenAI route: got %d %s; want 503 %s", resp.StatusCode, body, want)
			}
			// A request for the loaded model is not refused: it waits for a slot.
			forA := goGenerate(t, c, "a")
			waitState(t, s, "a request for a waiting", func() bool { return s.Queued("a") == 1 })

			h.stop()
			for i, ch := range append(waiting, forA) {
				if err := <-ch; err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
			if got := s.Loads("b"); got != 1 {
				t.Errorf("Loads(b) = %d; want 1", got)
			}
		})
	}
}

// TestSchedulerOneLoadForBurst: requests for a model that is loading wait
// for that one load.
func TestSchedulerOneLoadForBurst(t *testing.T) {
	const burst = 8
	s := New(t, WithLoadDelay(ManualLoad), WithParallel(2))
	c := newClient(t, s)
	var wg sync.WaitGroup
	results := make([]api.GenerateResponse, burst)
	errs := make([]error, burst)
	ctx := testContext(t)
	for i := range burst {
		wg.Go(func() { results[i], errs[i] = generate(ctx, c, "llama3.2", nil) })
	}
	waitState(t, s, "the burst waiting for the load", func() bool { return s.Queued("llama3.2") == burst })
	if got := s.Loads("llama3.2"); got != 1 {
		t.Errorf("Loads during the burst = %d; want 1", got)
	}
	if got := s.Loaded(); !slices.Equal(got, []string{"llama3.2:latest"}) {
		t.Errorf("Loaded while loading = %v; want [llama3.2:latest]", got)
	}
	if s.IsLoaded("llama3.2") {
		t.Error("IsLoaded during the load = true; want false")
	}
	if !s.EndLoad("llama3.2") {
		t.Fatal("EndLoad = false; want true (a load was under way)")
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if results[i].LoadDuration <= 0 {
			t.Errorf("request %d: load_duration = %v; want > 0", i, results[i].LoadDuration)
		}
	}
	if got := s.Loads("llama3.2"); got != 1 {
		t.Errorf("Loads = %d; want 1", got)
	}
	if s.EndLoad("llama3.2") {
		t.Error("EndLoad of a loaded model = true; want false")
	}
}

// TestSchedulerLoadDuration: load_duration is the request's own wait for
// its model, on every route that reports it.
func TestSchedulerLoadDuration(t *testing.T) {
	const delay = 40 * time.Millisecond
	type call func(c *api.Client, model string) (time.Duration, error)
	ctx := context.Background()
	chat := func(stream bool) call {
		return func(c *api.Client, model string) (time.Duration, error) {
			var last api.ChatResponse
			err := c.Chat(ctx, &api.ChatRequest{
				Model: model, Messages: []api.Message{{Role: "user", Content: "hi"}}, Stream: &stream,
			}, func(r api.ChatResponse) error { last = r; return nil })
			if err == nil && !last.Done {
				err = errors.New("no final chunk")
			}
			return last.LoadDuration, err
		}
	}
	tests := []struct {
		name string
		call call
	}{
		{"chat stream", chat(true)},
		{"chat", chat(false)},
		{"generate stream", func(c *api.Client, model string) (time.Duration, error) {
			var last api.GenerateResponse
			err := c.Generate(ctx, &api.GenerateRequest{Model: model, Prompt: "hi"},
				func(r api.GenerateResponse) error { last = r; return nil })
			return last.LoadDuration, err
		}},
		{"generate", func(c *api.Client, model string) (time.Duration, error) {
			r, err := generate(ctx, c, model, nil)
			return r.LoadDuration, err
		}},
		{"embed", func(c *api.Client, model string) (time.Duration, error) {
			r, err := c.Embed(ctx, &api.EmbedRequest{Model: model, Input: "hi"})
			if err != nil {
				return 0, err
			}
			return r.LoadDuration, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, WithModels("cold", "warm"), WithLoaded("warm"), WithLoadDelay(delay, "cold"))
			c := newClient(t, s)
			for _, step := range []struct {
				model    string
				wantLoad bool
			}{{"cold", true}, {"cold", false}, {"warm", false}} {
				got, err := tt.call(c, step.model)
				if err != nil {
					t.Fatalf("%s: %v", step.model, err)
				}
				if step.wantLoad && got < delay {
					t.Errorf("%s, not loaded: load_duration = %v; want >= %v", step.model, got, delay)
				}
				if !step.wantLoad && got >= delay {
					t.Errorf("%s, loaded: load_duration = %v; want < %v", step.model, got, delay)
				}
			}
			if got := s.Loads("cold"); got != 1 {
				t.Errorf("Loads(cold) = %d; want 1", got)
			}
		})
	}
}

// TestSchedulerEvictionOrder: loading past WithMaxLoadedModels evicts an
// idle model in Ollama's order (shortest keep-alive, then name), never a
// busy one.
func TestSchedulerEvictionOrder(t *testing.T) {
	tests := []struct {
		name  string
		steps func(t *testing.T, s *Server, c *api.Client)
		want  []string
	}{
		{"by name, not by recency", func(t *testing.T, s *Server, c *api.Client) {
			mustGenerate(t, c, "b", nil)
			mustGenerate(t, c, "a", nil) // the most recently used
			mustGenerate(t, c, "c", nil)
		}, []string{"b:latest", "c:latest"}},
		{"shortest keep-alive first", func(t *testing.T, s *Server, c *api.Client) {
			mustGenerate(t, c, "a", keep(10*time.Minute))
			mustGenerate(t, c, "b", keep(time.Minute))
			mustGenerate(t, c, "c", nil)
		}, []string{"a:latest", "c:latest"}},
		{"a busy model stays", func(t *testing.T, s *Server, c *api.Client) {
			mustGenerate(t, c, "b", nil)
			hold(t, c, "a", nil)
			waitState(t, s, "a busy", func() bool { return s.Running("a") == 1 })
			mustGenerate(t, c, "c", nil)
		}, []string{"a:latest", "c:latest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, WithPaced(), WithModels("a", "b", "c"), WithMaxLoadedModels(2))
			c := newClient(t, s)
			tt.steps(t, s, c)
			if got := s.Loaded(); !sameNames(got, tt.want) {
				t.Errorf("Loaded = %v; want %v", got, tt.want)
			}
			ps, err := c.ListRunning(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range ps.Models {
				names = append(names, m.Name)
			}
			if !sameNames(names, tt.want) {
				t.Errorf("/api/ps = %v; want %v", names, tt.want)
			}
		})
	}
}

// TestSchedulerEvictionWaits: with every loaded model busy, a request for
// another one waits until the first in eviction order goes idle; another
// model going idle does not help it, as in Ollama.
func TestSchedulerEvictionWaits(t *testing.T) {
	s := New(t, WithPaced(), WithModels("a", "b", "c"), WithLoaded("a", "b"), WithMaxLoadedModels(2))
	c := newClient(t, s)
	ha := hold(t, c, "a", nil)
	hb := hold(t, c, "b", nil)
	waitState(t, s, "a and b busy", func() bool { return s.Running("") == 2 })
	forC := goGenerate(t, c, "c")
	waitState(t, s, "c pending", func() bool { return s.Pending() == 1 })

	hb.stop()
	waitState(t, s, "b idle", func() bool { return s.Running("b") == 0 && s.Queued("b") == 0 })
	if got, loads := s.Pending(), s.Loads("c"); got != 1 || loads != 0 {
		t.Fatalf("b idle: Pending = %d, Loads(c) = %d; want 1, 0 (c waits for a, marked to unload)", got, loads)
	}
	ha.stop()
	if err := <-forC; err != nil {
		t.Fatalf("c: %v", err)
	}
	if got, want := s.Loaded(), []string{"b:latest", "c:latest"}; !sameNames(got, want) {
		t.Errorf("Loaded = %v; want %v", got, want)
	}
}

func mustGenerate(t *testing.T, c *api.Client, model string, keepAlive *api.Duration) {
	t.Helper()
	if _, err := generate(testContext(t), c, model, keepAlive); err != nil {
		t.Fatalf("generate %s: %v", model, err)
	}
}

// TestSchedulerPs: /api/ps lists the loaded models in Ollama's shape and
// order, the latest expiry first.
func TestSchedulerPs(t *testing.T) {
	s := New(t, WithModels("a", "b", "c", "d"), WithLoaded("a"))
	c := newClient(t, s)
	before := time.Now()
	mustGenerate(t, c, "b", keep(10*time.Minute))
	mustGenerate(t, c, "c", keep(-1))
	after := time.Now()

	ps, err := c.ListRunning(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	tags, err := c.List(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, m := range tags.Models {
		digests[m.Name] = m.Digest
	}
	tests := []struct {
		name     string
		from, to time.Time
	}{
		{"c:latest", before.AddDate(200, 0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"b:latest", before.Add(10 * time.Minute), after.Add(10 * time.Minute)},
		{"a:latest", before.Add(-time.Minute).Add(5 * time.Minute), after.Add(5 * time.Minute)},
	}
	if len(ps.Models) != len(tests) {
		t.Fatalf("/api/ps lists %d models; want %d: %+v", len(ps.Models), len(tests), ps.Models)
	}
	for i, tt := range tests {
		m := ps.Models[i]
		if m.Name != tt.name || m.Model != tt.name {
			t.Errorf("model %d: name %q, model %q; want %q", i, m.Name, m.Model, tt.name)
		}
		if m.Digest != digests[tt.name] || m.Size != modelSize || m.SizeVRAM != modelSize || m.ContextLength != 4096 {
			t.Errorf("%s: digest %q size %d size_vram %d context_length %d; want %q %d %d 4096",
				tt.name, m.Digest, m.Size, m.SizeVRAM, m.ContextLength, digests[tt.name], modelSize, modelSize)
		}
		if m.Details.Format != "gguf" || m.Details.Family == "" {
			t.Errorf("%s: details %+v; want gguf and a family", tt.name, m.Details)
		}
		if m.ExpiresAt.Before(tt.from.Truncate(time.Second)) || m.ExpiresAt.After(tt.to) {
			t.Errorf("%s: expires_at %v; want within [%v, %v]", tt.name, m.ExpiresAt, tt.from, tt.to)
		}
	}

	resp, err := http.Get(s.URL + "/api/ps")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Models []map[string]json.RawMessage `json:"models"`
	}
	err = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw.Models[0] {
		keys = append(keys, k)
	}
	if want := []string{"context_length", "details", "digest", "expires_at", "model", "name", "size", "size_vram"}; !sameNames(keys, want) {
		t.Errorf("/api/ps fields = %v; want %v", keys, want)
	}
}

// TestSchedulerKeepAliveExpiry: a model unloads its keep-alive after its
// last request, and leaves /api/ps.
func TestSchedulerKeepAliveExpiry(t *testing.T) {
	s := New(t, WithModels("short", "long"), WithKeepAlive(time.Hour))
	c := newClient(t, s)
	mustGenerate(t, c, "long", nil)
	mustGenerate(t, c, "short", keep(20*time.Millisecond))
	waitState(t, s, "short expired", func() bool { return !s.IsLoaded("short") })
	ps, err := c.ListRunning(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Models) != 1 || ps.Models[0].Name != "long:latest" {
		t.Errorf("/api/ps = %+v; want only long:latest", ps.Models)
	}
	mustGenerate(t, c, "short", nil)
	if got := s.Loads("short"); got != 2 {
		t.Errorf("Loads(short) = %d; want 2 (loaded again after expiring)", got)
	}
}

// TestSchedulerKeepAliveZero: keep_alive 0 unloads the model once it is
// idle, with a generation or with an empty request.
func TestSchedulerKeepAliveZero(t *testing.T) {
	ctx := context.Background()
	emptyGenerate := func(c *api.Client, keepAlive *api.Duration) (string, error) {
		var got api.GenerateResponse
		err := c.Generate(ctx, &api.GenerateRequest{Model: "llama3.2", KeepAlive: keepAlive},
			func(r api.GenerateResponse) error { got = r; return nil })
		return got.DoneReason, err
	}
	emptyChat := func(c *api.Client, keepAlive *api.Duration) (string, error) {
		var got api.ChatResponse
		err := c.Chat(ctx, &api.ChatRequest{Model: "llama3.2", KeepAlive: keepAlive},
			func(r api.ChatResponse) error { got = r; return nil })
		return got.DoneReason, err
	}

	t.Run("generation", func(t *testing.T) {
		s := New(t, WithLoaded("llama3.2"))
		c := newClient(t, s)
		mustGenerate(t, c, "llama3.2", keep(0))
		waitState(t, s, "unloaded after the request", func() bool { return len(s.Loaded()) == 0 })
	})
	for name, empty := range map[string]func(*api.Client, *api.Duration) (string, error){
		"empty generate": emptyGenerate, "empty chat": emptyChat,
	} {
		t.Run(name, func(t *testing.T) {
			s := New(t, WithPaced(), WithScheduler())
			c := newClient(t, s)
			if reason, err := empty(c, nil); err != nil || reason != "load" {
				t.Fatalf("load: %q, %v; want load", reason, err)
			}
			if !s.IsLoaded("llama3.2") || s.Loads("llama3.2") != 1 {
				t.Fatalf("after load: IsLoaded %v, Loads %d; want true, 1", s.IsLoaded("llama3.2"), s.Loads("llama3.2"))
			}
			if reason, err := empty(c, keep(0)); err != nil || reason != "unload" {
				t.Fatalf("unload: %q, %v; want unload", reason, err)
			}
			if got := s.Loaded(); len(got) != 0 {
				t.Fatalf("after unload of an idle model: Loaded = %v; want none", got)
			}

			// A busy model unloads when its last request ends.
			h := hold(t, c, "llama3.2", nil)
			waitState(t, s, "busy", func() bool { return s.Running("") == 1 })
			if reason, err := empty(c, keep(0)); err != nil || reason != "unload" {
				t.Fatalf("unload while busy: %q, %v; want unload", reason, err)
			}
			if !s.IsLoaded("llama3.2") {
				t.Fatal("a busy model was unloaded")
			}
			h.stop()
			waitState(t, s, "unloaded once idle", func() bool { return len(s.Loaded()) == 0 })
		})
	}
}

// TestSchedulerOff: without a scheduler option the fake behaves as before:
// every served model in /api/ps, a fixed load_duration, no loads counted.
func TestSchedulerOff(t *testing.T) {
	s := New(t, WithModels("a", "b"))
	c := newClient(t, s)
	r, err := generate(testContext(t), c, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.LoadDuration != loadDuration {
		t.Errorf("load_duration = %d; want %d", r.LoadDuration, loadDuration)
	}
	ps, err := c.ListRunning(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Models) != 2 || s.LoadCount() != 0 || s.Loaded() != nil {
		t.Errorf("/api/ps %d models, LoadCount %d, Loaded %v; want 2, 0, nil", len(ps.Models), s.LoadCount(), s.Loaded())
	}
}
