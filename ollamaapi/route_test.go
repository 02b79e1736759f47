package ollamaapi

import (
	"strings"
	"testing"
)

// want is what a test expects of a route.
type want struct {
	class        string
	buffered     bool
	upload       bool
	headFirst    bool
	model        string // ModelField, then ModelFallback after a "|", then AlsoModel after a "+"
	byModel      bool
	usage        UsageFormat
	changesFleet bool
	view         View
	fleetWide    bool
	blobs        BlobRef
}

func got(r *Route) want {
	model := r.ModelField
	if r.ModelFallback != "" {
		model += "|" + r.ModelFallback
	}
	if r.AlsoModel != "" {
		model += "+" + r.AlsoModel
	}
	return want{r.Class().String(), r.Buffered, r.Upload, r.HeadFirst, model, r.ByModel, r.Usage, r.ChangesFleet, r.View, r.FleetWide, r.Blobs}
}

// TestDocumentedRoutes walks every route of Ollama's API as Ollama v0.17.4
// documents it (docs/api.md, in its order, then the HEAD and GET variants
// server/routes.go adds), the OpenAI-compatible routes
// (docs/api/openai-compatibility.mdx) and the Anthropic-compatible one
// through the table.
func TestDocumentedRoutes(t *testing.T) {
	ollama := want{usage: OllamaUsage, byModel: true, model: "model"}
	openAI := want{usage: OpenAIUsage, byModel: true, model: "model"}
	tests := []struct {
		method, path string
		want         want
	}{
		// docs/api.md
		{"POST", "/api/generate", with(ollama, "/api/generate")},
		{"POST", "/api/chat", with(ollama, "/api/chat")},
		{"POST", "/api/create", want{class: "/api/create", model: "model|name+from", changesFleet: true, blobs: BlobsInBody}},
		{"HEAD", "/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2", want{class: "/api/blobs/:digest", blobs: BlobInPath}},
		{"POST", "/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2", want{class: "/api/blobs/:digest", upload: true, headFirst: true, changesFleet: true, blobs: BlobInPath}},
		{"GET", "/api/tags", want{class: "/api/tags", buffered: true, view: TagsView}},
		{"POST", "/api/show", want{class: "/api/show", model: "model|name", byModel: true}},
		{"POST", "/api/copy", want{class: "/api/copy", model: "source+destination", changesFleet: true}},
		{"DELETE", "/api/delete", want{class: "/api/delete", model: "model|name", changesFleet: true, fleetWide: true}},
		{"POST", "/api/pull", want{class: "/api/pull", model: "model|name", changesFleet: true, fleetWide: true}},
		{"POST", "/api/push", want{class: "/api/push", model: "model|name", changesFleet: true}},
		{"POST", "/api/embed", want{class: "/api/embed", model: "model", byModel: true}},
		{"GET", "/api/ps", want{class: "/api/ps", buffered: true, view: RunningView}},
		{"POST", "/api/embeddings", want{class: "/api/embeddings", model: "model", byModel: true}},
		{"GET", "/api/version", want{class: "/api/version", buffered: true}},
		// server/routes.go: the root and the HEAD variants.
		{"GET", "/", want{class: "/", buffered: true}},
		{"HEAD", "/", want{class: "/"}},
		{"HEAD", "/api/version", want{class: "/api/version"}},
		{"HEAD", "/api/tags", want{class: "/api/tags"}},
		// OpenAI-compatible.
		{"POST", "/v1/chat/completions", with(openAI, "/v1/chat/completions")},
		{"POST", "/v1/completions", with(openAI, "/v1/completions")},
		{"POST", "/v1/embeddings", with(openAI, "/v1/embeddings")},
		{"GET", "/v1/models", want{class: "/v1/models", buffered: true, view: OpenAIModelsView}},
		{"GET", "/v1/models/llama3.2", want{class: "/v1/models/:model", buffered: true, view: OpenAIModelView}},
		{"GET", "/v1/models/hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", want{class: "/v1/models/:model", buffered: true, view: OpenAIModelView}},
		{"POST", "/v1/responses", with(openAI, "/v1/responses")},
		// Not yet in the table (experimental in v0.17.4): forwarded,
		// streamed, counted as other.
		{"POST", "/v1/images/generations", want{class: "other"}},
		{"POST", "/v1/images/edits", want{class: "other"}},
		// Anthropic-compatible.
		{"POST", "/v1/messages", want{class: "/v1/messages", model: "model", byModel: true, usage: AnthropicUsage}},
	}
	for _, tt := range tests {
		if g := got(Lookup([]byte(tt.method), []byte(tt.path))); g != tt.want {
			t.Errorf("Lookup(%s %s) = %+v; want %+v", tt.method, tt.path, g, tt.want)
		}
	}
}

func with(w want, class string) want {
	w.class = class
	return w
}

// TestClassLabels: every label value the metrics had before the table
// (README, "Metrics and access log") is still the class of the same paths,
// whatever the method.
func TestClassLabels(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/", "/"},
		{"/api/chat", "/api/chat"},
		{"/api/chat/", "other"},
		{"/api/generate", "/api/generate"},
		{"/api/embed", "/api/embed"},
		{"/api/embeddings", "/api/embeddings"},
		{"/api/tags", "/api/tags"},
		{"/api/ps", "/api/ps"},
		{"/api/show", "/api/show"},
		{"/api/pull", "/api/pull"},
		{"/api/push", "/api/push"},
		{"/api/create", "/api/create"},
		{"/api/copy", "/api/copy"},
		{"/api/delete", "/api/delete"},
		{"/api/version", "/api/version"},
		{"/api/blobs/sha256:abc", "/api/blobs/:digest"},
		{"/api/blobs/", "/api/blobs/:digest"},
		{"/api/blobs", "other"},
		{"/v1/chat/completions", "/v1/chat/completions"},
		{"/v1/completions", "/v1/completions"},
		{"/v1/embeddings", "/v1/embeddings"},
		{"/v1/models", "/v1/models"},
		{"/v1/models/llama3.2", "/v1/models/:model"},
		{"/v1/responses", "/v1/responses"},
		{"/v1/messages", "/v1/messages"},
		{"/config/reload", "/config/reload"},
		{"/config/new-key", "/config/new-key"},
		{"/config/keys/0123456789abcdef", "other"},
		{"/healthz", "/healthz"},
		{"/readyz", "/healthz"},
		{"/random/path/123", "other"},
		{"/API/CHAT", "other"},
		{"", "other"},
	}
	for _, tt := range tests {
		for _, m := range []string{"GET", "POST", "DELETE", "PROPFIND", ""} {
			if got := Lookup([]byte(m), []byte(tt.path)).Class().String(); got != tt.want {
				t.Errorf("Lookup(%q, %q).Class() = %q; want %q", m, tt.path, got, tt.want)
			}
		}
	}
	if got := ClassMetrics.String(); got != "metrics" {
		t.Errorf("ClassMetrics = %q; want metrics", got)
	}
	if got := Class(255).String(); got != "other" {
		t.Errorf("Class(255) = %q; want other", got)
	}
}

// TestOtherMethods: a method Ollama does not serve on a path gets the
// path's class and nothing else, so no rule meant for the documented
// method applies to it.
func TestOtherMethods(t *testing.T) {
	for _, tt := range []struct{ method, path string }{
		{"GET", "/api/chat"},
		{"PUT", "/api/blobs/sha256:abc"},
		{"POST", "/api/tags"},
		{"POST", "/v1/models/llama3.2"},
		{"get", "/api/tags"},
	} {
		r := Lookup([]byte(tt.method), []byte(tt.path))
		g := got(r)
		if g != (want{class: g.class}) || g.class == "other" {
			t.Errorf("Lookup(%s %s) = %+v; want the class only", tt.method, tt.path, g)
		}
	}
}

// TestClassesDistinct: NumClasses counts distinct labels, every class is
// below it, and each label names one class.
func TestClassesDistinct(t *testing.T) {
	seen := map[string]Class{}
	for c := range NumClasses() {
		name := Class(c).String()
		if prev, dup := seen[name]; dup {
			t.Errorf("classes %d and %d are both %q", prev, c, name)
		}
		seen[name] = Class(c)
	}
	for i := range table {
		if c := table[i].Class(); int(c) >= NumClasses() {
			t.Errorf("%s %s: class %d >= NumClasses %d", table[i].Method, table[i].Pattern, c, NumClasses())
		}
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name   string
		routes []Route
		want   string
	}{
		{"not a path", []Route{{Method: "GET", Pattern: "api/tags"}}, "must be a path"},
		{"parameter inside", []Route{{Method: "GET", Pattern: "/api/:x/y"}}, "must be a path"},
		{"twice", []Route{{Method: "GET", Pattern: "/a"}, {Method: "GET", Pattern: "/a"}}, "listed twice"},
		{"any twice", []Route{{Pattern: "/a"}, {Pattern: "/a"}}, "listed twice for any method"},
	}
	for _, tt := range tests {
		_, err := build(tt.routes)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: build = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := build([]Route{{Method: "GET", Pattern: "/a"}, {Method: "POST", Pattern: "/a"}, {Pattern: "/b/:c"}}); err != nil {
		t.Errorf("build of a valid table: %v", err)
	}
}

// TestLookupAllocs: Lookup is on every request's path.
func TestLookupAllocs(t *testing.T) {
	for _, tt := range []struct{ method, path string }{
		{"POST", "/api/chat"},
		{"GET", "/v1/models/llama3.2"},
		{"POST", "/api/blobs/sha256:abc"},
		{"GET", "/no/such/route"},
	} {
		m, p := []byte(tt.method), []byte(tt.path)
		if n := testing.AllocsPerRun(100, func() { _ = Lookup(m, p) }); n != 0 {
			t.Errorf("Lookup(%s %s): %v allocations; want 0", tt.method, tt.path, n)
		}
	}
}
