package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// modelTarget is a fakeTarget that keeps a model list; nil is unknown.
type modelTarget struct {
	*fakeTarget

	mu      sync.Mutex
	models  []string
	entries []json.RawMessage
	known   bool
}

func (m *modelTarget) SetModelList(names []string, entries []json.RawMessage) bool {
	m.mu.Lock()
	m.entries = entries
	m.mu.Unlock()
	return m.setModels(names)
}

func (m *modelTarget) setModels(names []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := !m.known || !slices.Equal(m.models, names)
	m.models, m.known = names, true
	return changed
}

func (m *modelTarget) ForgetModels() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	was := m.known
	m.models, m.known = nil, false
	return was
}

func (m *modelTarget) Models() ([]string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.models, m.known
}

// ollamaServer answers health checks with checkStatus and GET /api/tags
// with tagsStatus and the body tags, counting the tags requests.
type ollamaServer struct {
	*httptest.Server
	checkStatus, tagsStatus atomic.Int32
	tags                    atomic.Value // string
	tagsRequests            atomic.Int32
}

func newOllamaServer(t *testing.T) *ollamaServer {
	t.Helper()
	s := &ollamaServer{}
	s.checkStatus.Store(200)
	s.tagsStatus.Store(200)
	s.tags.Store(`{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","size":2019393189},` +
		`{"name":"qwen2.5:7b","model":"library/qwen2.5:7b","details":{"family":"qwen2"}}]}`)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ollamaapi.LocalModelsPath {
			w.WriteHeader(int(s.checkStatus.Load()))
			return
		}
		s.tagsRequests.Add(1)
		w.WriteHeader(int(s.tagsStatus.Load()))
		_, _ = w.Write([]byte(s.tags.Load().(string)))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestModelsFetchedAfterSuccessfulCheck(t *testing.T) {
	srv := newOllamaServer(t)
	b := &modelTarget{fakeTarget: newFake(srv.URL + "/")}
	logs := &logBuf{}
	c := New([]Target{b}, Options{Models: true, Logger: logs.Logger()})
	ctx := t.Context()

	c.Check(ctx)
	got, known := b.Models()
	if want := []string{"llama3.2:latest", "qwen2.5:7b", "library/qwen2.5:7b"}; !known || !slices.Equal(got, want) {
		t.Fatalf("models %q (known %v); want %q", got, known, want)
	}
	// The entries are passed on as the backend wrote them, for the merged
	// views.
	b.mu.Lock()
	entries := b.entries
	b.mu.Unlock()
	wantEntries := []string{`{"name":"llama3.2:latest","model":"llama3.2:latest","size":2019393189}`,
		`{"name":"qwen2.5:7b","model":"library/qwen2.5:7b","details":{"family":"qwen2"}}`}
	if len(entries) != len(wantEntries) {
		t.Fatalf("%d entries; want %d", len(entries), len(wantEntries))
	}
	for i, e := range entries {
		if string(e) != wantEntries[i] {
			t.Errorf("entry %d: got %s; want %s", i, e, wantEntries[i])
		}
	}
	if !strings.Contains(logs.String(), `msg="backend models"`) {
		t.Errorf("no log of the new list: %s", logs)
	}

	// Failed fetches keep the list, twice; the third makes it unknown.
	srv.tagsStatus.Store(500)
	for i := 1; i <= 3; i++ {
		c.Check(ctx)
		_, known := b.Models()
		if want := i < 3; known != want {
			t.Fatalf("after %d failed fetches: known %v; want %v", i, known, want)
		}
	}
	if !strings.Contains(logs.String(), `msg="backend model list unknown"`) || !strings.Contains(logs.String(), "status 500") {
		t.Errorf("no log of the forgotten list: %s", logs)
	}
	// A fetch that works again brings the list back, and resets the count.
	srv.tagsStatus.Store(200)
	srv.tags.Store(`{"models":[]}`)
	c.Check(ctx)
	if got, known := b.Models(); !known || len(got) != 0 {
		t.Fatalf("models %q (known %v); want an empty known list", got, known)
	}
	srv.tagsStatus.Store(500)
	c.Check(ctx)
	c.Check(ctx)
	if _, known := b.Models(); !known {
		t.Error("two failures after a success forgot the list")
	}

	// A failed check fetches nothing and keeps the list.
	n := srv.tagsRequests.Load()
	srv.checkStatus.Store(503)
	c.Check(ctx)
	if srv.tagsRequests.Load() != n {
		t.Error("the model list was requested after a failed check")
	}
	if _, known := b.Models(); !known {
		t.Error("a failed check forgot the model list")
	}
}

func TestModelsBadAnswers(t *testing.T) {
	for _, tt := range []struct {
		name, body string
	}{
		{"not JSON", "Ollama is running"},
		{"no models member", `{"error":"unauthorized"}`},
		{"models not a list", `{"models":{"name":"x"}}`},
		{"truncated", `{"models":[{"name":"x"}`},
		{"over 8 MiB", `{"models":[{"name":"` + strings.Repeat("x", maxModelsBody) + `"}]}`},
	} {
		srv := newOllamaServer(t)
		srv.tags.Store(tt.body)
		b := &modelTarget{fakeTarget: newFake(srv.URL)}
		c := New([]Target{b}, Options{Models: true, Logger: (&logBuf{}).Logger()})
		for range forgetModelsAfter {
			c.Check(t.Context())
		}
		if got, known := b.Models(); known || b.State() != "up" {
			t.Errorf("%s: models %.40q known %v, state %s; want unknown, up", tt.name, got, known, b.State())
		}
		if _, _, err := c.fetchModels(t.Context(), srv.URL+ollamaapi.LocalModelsPath); err == nil {
			t.Errorf("%s: fetchModels succeeded", tt.name)
		}
	}
}

func TestModelsOnlyWhenAsked(t *testing.T) {
	srv := newOllamaServer(t)
	plain := newFake(srv.URL)                         // not a ModelTarget
	off := &modelTarget{fakeTarget: newFake(srv.URL)} // Models not set
	New([]Target{plain}, Options{Models: true}).Check(t.Context())
	New([]Target{off}, Options{}).Check(t.Context())
	if n := srv.tagsRequests.Load(); n != 0 {
		t.Errorf("%d model list requests; want 0", n)
	}
	if plain.State() != "up" || off.State() != "up" {
		t.Error("checks did not run")
	}
}
