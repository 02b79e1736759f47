package ollamatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// waitTimeout bounds every wait of these tests; a healthy run never gets
// near it.
const waitTimeout = 10 * time.Second

// newClient returns the real Ollama Go client for s.
func newClient(t *testing.T, s *Server) *api.Client {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return api.NewClient(u, http.DefaultClient)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestGoClientChatStream(t *testing.T) {
	s := New(t)
	c := newClient(t, s)

	var text strings.Builder
	var last api.ChatResponse
	n := 0
	err := c.Chat(testContext(t), &api.ChatRequest{
		Model:    "llama3.2",
		Messages: []api.Message{{Role: "user", Content: "Why is the sky blue?"}},
	}, func(r api.ChatResponse) error {
		n++
		text.WriteString(r.Message.Content)
		last = r
		return nil
	})
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if got, want := text.String(), "The sky is blue."; got != want {
		t.Errorf("text = %q; want %q", got, want)
	}
	if n != 6 {
		t.Errorf("got %d chunks; want 6", n)
	}
	if !last.Done || last.DoneReason != "stop" || last.EvalCount != 5 || last.PromptEvalCount != 26 {
		t.Errorf("final chunk = %+v; want done, reason stop, eval_count 5, prompt_eval_count 26", last)
	}
	if last.Model != "llama3.2" || last.Message.Role != "assistant" || last.CreatedAt.IsZero() {
		t.Errorf("final chunk = %+v; want model llama3.2, role assistant, a created_at", last)
	}
	if got := s.RequestsTo("/api/chat"); got != 1 {
		t.Errorf("RequestsTo(/api/chat) = %d; want 1", got)
	}
}

func TestGoClientGenerateStream(t *testing.T) {
	s := New(t)
	c := newClient(t, s)

	var text strings.Builder
	var last api.GenerateResponse
	err := c.Generate(testContext(t), &api.GenerateRequest{
		Model:  "llama3.2:latest",
		Prompt: "Why is the sky blue?",
	}, func(r api.GenerateResponse) error {
		text.WriteString(r.Response)
		last = r
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if got, want := text.String(), "The sky is blue."; got != want {
		t.Errorf("text = %q; want %q", got, want)
	}
	if !last.Done || last.DoneReason != "stop" || last.EvalCount != 5 {
		t.Errorf("final chunk = %+v; want done, reason stop, eval_count 5", last)
	}
	if len(last.Context) != 3 {
		t.Errorf("final context = %v; want 3 ids", last.Context)
	}
}

func TestGoClientNonStream(t *testing.T) {
	s := New(t, WithTokens("Hello", ",", " world"))
	c := newClient(t, s)
	ctx := testContext(t)
	stream := false

	var chats []api.ChatResponse
	err := c.Chat(ctx, &api.ChatRequest{
		Model:    "llama3.2",
		Messages: []api.Message{{Role: "user", Content: "hi"}},
		Stream:   &stream,
	}, func(r api.ChatResponse) error { chats = append(chats, r); return nil })
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if len(chats) != 1 || chats[0].Message.Content != "Hello, world" || !chats[0].Done || chats[0].EvalCount != 3 {
		t.Errorf("non-stream chat = %+v; want one done response %q with eval_count 3", chats, "Hello, world")
	}

	var gens []api.GenerateResponse
	err = c.Generate(ctx, &api.GenerateRequest{Model: "llama3.2", Prompt: "hi", Stream: &stream},
		func(r api.GenerateResponse) error { gens = append(gens, r); return nil })
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(gens) != 1 || gens[0].Response != "Hello, world" || gens[0].DoneReason != "stop" {
		t.Errorf("non-stream generate = %+v; want one response %q", gens, "Hello, world")
	}
}

func TestGoClientOtherEndpoints(t *testing.T) {
	s := New(t, WithModels("llama3.2", "qwen2.5:0.5b"))
	c := newClient(t, s)
	ctx := testContext(t)

	if err := c.Heartbeat(ctx); err != nil {
		t.Errorf("Heartbeat: %v", err)
	}
	if v, err := c.Version(ctx); err != nil || v != "0.17.4" {
		t.Errorf("Version = %q, %v; want 0.17.4", v, err)
	}

	list, err := c.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
		if m.Model != m.Name || m.Size == 0 || len(m.Digest) != 64 || m.Details.Format != "gguf" || m.ModifiedAt.IsZero() {
			t.Errorf("List entry %+v is incomplete", m)
		}
	}
	if got, want := strings.Join(names, ","), "llama3.2:latest,qwen2.5:0.5b"; got != want {
		t.Errorf("List names = %s; want %s", got, want)
	}
	if list.Models[1].Details.Family != "qwen" {
		t.Errorf("qwen family = %q; want qwen", list.Models[1].Details.Family)
	}

	ps, err := c.ListRunning(ctx)
	if err != nil || len(ps.Models) != 2 || ps.Models[0].ExpiresAt.IsZero() || ps.Models[0].SizeVRAM == 0 {
		t.Errorf("ListRunning = %+v, %v; want 2 models with expires_at and size_vram", ps, err)
	}

	show, err := c.Show(ctx, &api.ShowRequest{Model: "qwen2.5:0.5b"})
	if err != nil || show.Modelfile == "" || show.Template == "" || show.ModelInfo["general.architecture"] != "qwen" {
		t.Errorf("Show = %+v, %v", show, err)
	}

	emb, err := c.Embed(ctx, &api.EmbedRequest{Model: "llama3.2", Input: []string{"a", "b"}})
	if err != nil || len(emb.Embeddings) != 2 || len(emb.Embeddings[0]) != 3 || emb.PromptEvalCount != 2 {
		t.Errorf("Embed = %+v, %v; want 2 embeddings of 3", emb, err)
	}

	var statuses []string
	err = c.Pull(ctx, &api.PullRequest{Model: "llama3.2"}, func(p api.ProgressResponse) error {
		statuses = append(statuses, p.Status)
		return nil
	})
	if got, want := strings.Join(statuses, ","), "pulling manifest,success"; err != nil || got != want {
		t.Errorf("Pull statuses = %s, %v; want %s", got, err, want)
	}
}

// TestPullAddsModel: as in Ollama, a pulled model is listed first (most
// recently modified) and served; pulling it again lists it once.
func TestPullAddsModel(t *testing.T) {
	s := New(t, WithModels("llama3.2"))
	c := newClient(t, s)
	ctx := testContext(t)
	chat := func() error {
		return c.Chat(ctx, &api.ChatRequest{Model: "qwen2.5", Messages: []api.Message{{Role: "user", Content: "hi"}}},
			func(api.ChatResponse) error { return nil })
	}
	if err := chat(); err == nil {
		t.Fatal("chat with a model not pulled yet succeeded")
	}
	for range 2 {
		if err := c.Pull(ctx, &api.PullRequest{Model: "qwen2.5"}, func(api.ProgressResponse) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	if got, want := strings.Join(names, ","), "qwen2.5:latest,llama3.2:latest"; got != want {
		t.Errorf("models after pull = %s; want %s", got, want)
	}
	if err := chat(); err != nil {
		t.Errorf("chat with the pulled model: %v", err)
	}
}

func TestGoClientErrors(t *testing.T) {
	s := New(t)
	c := newClient(t, s)
	ctx := testContext(t)

	err := c.Chat(ctx, &api.ChatRequest{
		Model:    "nope",
		Messages: []api.Message{{Role: "user", Content: "hi"}},
	}, func(api.ChatResponse) error { return nil })
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || se.ErrorMessage != "model 'nope' not found" {
		t.Errorf("Chat(unknown model) error = %#v; want 404 model 'nope' not found", err)
	}

	_, err = c.Embed(ctx, &api.EmbedRequest{Model: "nope", Input: "x"})
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || se.ErrorMessage != `model "nope" not found, try pulling it first` {
		t.Errorf("Embed(unknown model) error = %#v", err)
	}
}

func TestGoClientBlob(t *testing.T) {
	s := New(t)
	c := newClient(t, s)
	data := DeterministicBytes(3 << 20)
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	if err := c.CreateBlob(testContext(t), digest, bytes.NewReader(data)); err != nil {
		t.Fatalf("CreateBlob: %v", err)
	}
	if got := s.BlobBytes(); got != int64(len(data)) {
		t.Errorf("BlobBytes = %d; want %d", got, len(data))
	}
	err := c.CreateBlob(testContext(t), "sha256:"+strings.Repeat("0", 64), strings.NewReader("x"))
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest || !strings.HasPrefix(se.ErrorMessage, "digest mismatch") {
		t.Errorf("CreateBlob(wrong digest) error = %#v; want 400 digest mismatch", err)
	}
}

// do sends a request and returns the response with its whole body.
func do(t *testing.T, method, rawURL, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, rawURL, err)
	}
	return resp, string(b)
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func TestExactResponses(t *testing.T) {
	s := New(t)
	const (
		ctJSON  = "application/json; charset=utf-8"
		ctPlain = "text/plain"
		ctOAI   = "application/json"
		hi      = `"messages":[{"role":"user","content":"hi"}]`
	)
	tests := []struct {
		name, method, path, body string
		code                     int
		ctype, want              string
	}{
		{"root", "GET", "/", "", 200, "text/plain; charset=utf-8", "Ollama is running"},
		{"version", "GET", "/api/version", "", 200, ctJSON, `{"version":"0.17.4"}`},
		{"chat no body", "POST", "/api/chat", "", 400, ctJSON, `{"error":"missing request body"}`},
		{"chat bad json", "POST", "/api/chat", "{", 400, ctJSON, `{"error":"unexpected EOF"}`},
		{"chat no model", "POST", "/api/chat", `{` + hi + `}`, 400, ctJSON, `{"error":"model is required"}`},
		{"chat unknown model", "POST", "/api/chat", `{"model":"nope",` + hi + `}`, 404, ctJSON, `{"error":"model 'nope' not found"}`},
		{"generate unknown model", "POST", "/api/generate", `{"model":"nope","prompt":"hi"}`, 404, ctJSON, `{"error":"model 'nope' not found"}`},
		{"generate no model", "POST", "/api/generate", `{"prompt":"hi"}`, 404, ctJSON, `{"error":"model '' not found"}`},
		{"show no model", "POST", "/api/show", `{}`, 400, ctJSON, `{"error":"model is required"}`},
		{"show unknown model", "POST", "/api/show", `{"model":"nope"}`, 404, ctJSON, `{"error":"model 'nope' not found"}`},
		{"embed unknown model", "POST", "/api/embed", `{"model":"nope","input":"x"}`, 404, ctJSON, `{"error":"model \"nope\" not found, try pulling it first"}`},
		{"embed no model", "POST", "/api/embed", `{"input":"x"}`, 400, ctJSON, `{"error":"model is required"}`},
		{"embed bad input", "POST", "/api/embed", `{"model":"llama3.2","input":3}`, 400, ctJSON, `{"error":"invalid input type"}`},
		{"embed no input", "POST", "/api/embed", `{"model":"llama3.2"}`, 200, ctJSON, `{"model":"llama3.2","embeddings":[]}`},
		{"pull no stream", "POST", "/api/pull", `{"model":"llama3.2","stream":false}`, 200, ctJSON, `{"status":"success"}`},
		{"pull no name", "POST", "/api/pull", `{}`, 400, ctJSON, `{"error":"invalid model name"}`},
		{"openai unknown model", "POST", "/v1/chat/completions", `{"model":"nope",` + hi + `}`, 404, ctOAI,
			`{"error":{"message":"model 'nope' not found","type":"api_error","param":null,"code":null}}` + "\n"},
		{"openai no model", "POST", "/v1/chat/completions", `{` + hi + `}`, 400, ctOAI,
			`{"error":{"message":"model is required","type":"api_error","param":null,"code":null}}` + "\n"},
		{"openai no messages", "POST", "/v1/chat/completions", `{"model":"llama3.2","messages":[]}`, 400, ctJSON,
			`{"error":{"message":"[] is too short - 'messages'","type":"invalid_request_error","param":null,"code":null}}`},
		{"openai no body", "POST", "/v1/chat/completions", ``, 400, ctJSON,
			`{"error":{"message":"EOF","type":"invalid_request_error","param":null,"code":null}}`},
		{"openai models", "GET", "/v1/models", "", 200, ctOAI,
			fmt.Sprintf(`{"object":"list","data":[{"id":"llama3.2:latest","object":"model","created":%d,"owned_by":"library"}]}`+"\n", modifiedAt.Unix())},
		{"unknown path", "GET", "/api/nope", "", 404, ctPlain, "404 page not found"},
		{"unknown path post", "POST", "/v1/completions", "{}", 404, ctPlain, "404 page not found"},
		{"wrong method", "GET", "/api/chat", "", 405, ctPlain, "405 method not allowed"},
		{"wrong method blob", "GET", "/api/blobs/sha256:00", "", 405, ctPlain, "405 method not allowed"},
		{"test status", "GET", "/_test/status?code=503", "", 503, ctJSON, `{"error":"status 503"}`},
		{"test status bad", "GET", "/_test/status?code=abc", "", 400, ctJSON, `{"error":"code must be an HTTP status from 200 to 599"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, s.URL+tt.path, tt.body)
			if resp.StatusCode != tt.code {
				t.Errorf("status = %d; want %d", resp.StatusCode, tt.code)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type = %q; want %q", got, tt.ctype)
			}
			if body != tt.want {
				t.Errorf("body = %q; want %q", body, tt.want)
			}
		})
	}
}

func TestTagsAndPsShape(t *testing.T) {
	s := New(t)
	_, body := do(t, "GET", s.URL+"/api/tags", "")
	want := `{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-11-24T10:00:00.123456789Z",` +
		`"size":2019393189,"digest":"` + newModelInfo("llama3.2").digest + `","details":{"parent_model":"","format":"gguf",` +
		`"family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}}]}`
	if body != want {
		t.Errorf("/api/tags body =\n%s\nwant\n%s", body, want)
	}

	_, body = do(t, "GET", s.URL+"/api/ps", "")
	var ps struct {
		Models []map[string]json.RawMessage `json:"models"`
	}
	if err := json.Unmarshal([]byte(body), &ps); err != nil || len(ps.Models) != 1 {
		t.Fatalf("/api/ps body %s: %v", body, err)
	}
	for _, k := range []string{"name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"} {
		if _, ok := ps.Models[0][k]; !ok {
			t.Errorf("/api/ps model has no %q: %s", k, body)
		}
	}

	empty := New(t, WithModels())
	if _, body := do(t, "GET", empty.URL+"/api/tags", ""); body != `{"models":[]}` {
		t.Errorf("no models: /api/tags = %s; want {\"models\":[]}", body)
	}
	if _, body := do(t, "GET", empty.URL+"/v1/models", ""); body != `{"object":"list","data":null}`+"\n" {
		t.Errorf("no models: /v1/models = %s", body)
	}
}

func TestLoadAndUnload(t *testing.T) {
	s := New(t)
	f := func(path, body, wantReason string) {
		t.Helper()
		resp, got := do(t, "POST", s.URL+path, body)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/json; charset=utf-8" {
			t.Errorf("%s %s: status %d, Content-Type %q", path, body, resp.StatusCode, ct)
		}
		var r struct {
			Done       bool   `json:"done"`
			DoneReason string `json:"done_reason"`
		}
		if err := json.Unmarshal([]byte(got), &r); err != nil || !r.Done || r.DoneReason != wantReason {
			t.Errorf("%s %s = %s; want done with reason %s", path, body, got, wantReason)
		}
	}
	f("/api/chat", `{"model":"llama3.2"}`, "load")
	f("/api/chat", `{"model":"llama3.2","keep_alive":0}`, "unload")
	f("/api/generate", `{"model":"llama3.2"}`, "load")
	f("/api/generate", `{"model":"llama3.2","keep_alive":"0s"}`, "unload")
}

func TestModelNames(t *testing.T) {
	s := New(t, WithModels("llama3.2", "qwen2.5:0.5b"))
	tests := []struct {
		model string
		found bool
	}{
		{"llama3.2", true},
		{"llama3.2:latest", true},
		{"LLaMA3.2", true},
		{"library/llama3.2", true},
		{"registry.ollama.ai/library/llama3.2:latest", true},
		{"llama3.2:1b", false},
		{"llama3", false},
		{"qwen2.5:0.5b", true},
		{"qwen2.5", false},
	}
	for _, tt := range tests {
		resp, body := do(t, "POST", s.URL+"/api/show", `{"model":"`+tt.model+`"}`)
		if found := resp.StatusCode == http.StatusOK; found != tt.found {
			t.Errorf("show %q: status %d %s; want found=%v", tt.model, resp.StatusCode, body, tt.found)
		}
	}
}

func TestRedirectTrailingSlash(t *testing.T) {
	s := New(t)
	resp, _ := do(t, "POST", s.URL+"/api/chat/?x=1", `{}`)
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/api/chat?x=1" {
		t.Errorf("POST /api/chat/: %d Location %q; want 307 /api/chat?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = do(t, "GET", s.URL+"/api/tags/", "")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/api/tags" {
		t.Errorf("GET /api/tags/: %d Location %q; want 301 /api/tags", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAccessChecks(t *testing.T) {
	s := New(t)
	tests := []struct {
		name       string
		header     []string
		path       string
		code       int
		allowOrig  string
		emptyBody  bool
		wantBodyOK bool
	}{
		{"own host", nil, "/api/version", 200, "", false, true},
		{"localhost", []string{"Host", "localhost:11434"}, "/api/version", 200, "", false, true},
		{"private ip", []string{"Host", "10.1.2.3:11434"}, "/api/version", 200, "", false, true},
		{"dot internal", []string{"Host", "ollama.internal"}, "/api/version", 200, "", false, true},
		{"public name", []string{"Host", "gateway.example.com"}, "/api/version", 403, "", true, false},
		{"public name on 404", []string{"Host", "gateway.example.com"}, "/nope", 403, "", true, false},
		{"public name on test path", []string{"Host", "gateway.example.com"}, "/_test/echo", 200, "", false, true},
		{"foreign origin", []string{"Origin", "https://evil.example"}, "/api/version", 403, "", true, false},
		{"same origin", []string{"Origin", s.URL}, "/api/version", 200, "", false, true},
		{"local origin", []string{"Origin", "http://localhost:3000"}, "/api/version", 200, "http://localhost:3000", false, true},
		{"app origin", []string{"Origin", "app://obsidian.md"}, "/api/version", 200, "app://obsidian.md", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "GET", s.URL+tt.path, "", tt.header...)
			if resp.StatusCode != tt.code {
				t.Errorf("status = %d; want %d", resp.StatusCode, tt.code)
			}
			if tt.emptyBody && body != "" {
				t.Errorf("body = %q; want empty", body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allowOrig {
				t.Errorf("Access-Control-Allow-Origin = %q; want %q", got, tt.allowOrig)
			}
		})
	}

	resp, _ := do(t, "OPTIONS", s.URL+"/api/chat", "", "Origin", "http://localhost:3000", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Methods") == "" {
		t.Errorf("preflight: %d %v; want 204 with Access-Control-Allow-Methods", resp.StatusCode, resp.Header)
	}
}

func TestBlobs(t *testing.T) {
	s := New(t)
	data := DeterministicBytes(1 << 20)
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	blobURL := s.URL + "/api/blobs/" + digest

	if resp, _ := do(t, "HEAD", blobURL, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD before upload = %d; want 404", resp.StatusCode)
	}

	// Upload through a pipe: the body has no length and arrives chunked.
	pr, pw := io.Pipe()
	go func() {
		for b := data; len(b) > 0; b = b[min(len(b), 64<<10):] {
			if _, err := pw.Write(b[:min(len(b), 64<<10)]); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(testContext(t), "POST", blobURL, pr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(body) != 0 {
		t.Errorf("upload = %d %q; want 201 with an empty body", resp.StatusCode, body)
	}
	if got := s.BlobBytes(); got != int64(len(data)) {
		t.Errorf("BlobBytes = %d; want %d", got, len(data))
	}

	if resp, _ := do(t, "HEAD", blobURL, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD after upload = %d; want 200", resp.StatusCode)
	}
	if resp, _ := do(t, "POST", blobURL, "ignored"); resp.StatusCode != http.StatusOK {
		t.Errorf("second upload = %d; want 200 (exists)", resp.StatusCode)
	}

	other := "sha256:" + strings.Repeat("ab", 32)
	resp, got := do(t, "POST", s.URL+"/api/blobs/"+other, "hello")
	hello := sha256.Sum256([]byte("hello"))
	want := `{"error":"digest mismatch, expected \"` + other + `\", got \"sha256:` + hex.EncodeToString(hello[:]) + `\""}`
	if resp.StatusCode != http.StatusBadRequest || got != want {
		t.Errorf("mismatch = %d %s; want 400 %s", resp.StatusCode, got, want)
	}
	if resp, _ := do(t, "HEAD", s.URL+"/api/blobs/"+other, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD after failed upload = %d; want 404", resp.StatusCode)
	}

	resp, got = do(t, "POST", s.URL+"/api/blobs/sha256:1234", "x")
	if resp.StatusCode != http.StatusBadRequest || got != `{"error":"invalid digest format"}` {
		t.Errorf("bad digest = %d %s; want 400 invalid digest format", resp.StatusCode, got)
	}
}

func TestEcho(t *testing.T) {
	s := New(t)
	const uri = "/_test/echo?b=2&a=%20x&a=y"
	body := "hello, echo"
	resp, got := do(t, "PUT", s.URL+uri, body, "X-Custom", "v1", "Host", "backend.example:99")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("echo = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var e echoResponse
	if err := json.Unmarshal([]byte(got), &e); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	if e.Method != "PUT" || e.RequestURI != uri || e.Host != "backend.example:99" || e.BodyLen != int64(len(body)) ||
		e.BodySHA256 != hex.EncodeToString(sum[:]) || e.ContentLength != int64(len(body)) {
		t.Errorf("echo = %+v", e)
	}
	if v := e.Headers["X-Custom"]; len(v) != 1 || v[0] != "v1" {
		t.Errorf("echo headers = %v; want X-Custom: v1", e.Headers)
	}
	if h := s.LastHeaders(); h.Get("X-Custom") != "v1" {
		t.Errorf("LastHeaders = %v; want X-Custom: v1", h)
	}
}

func TestBytes(t *testing.T) {
	s := New(t)
	const n = 100_003
	resp, got := do(t, "GET", s.URL+"/_test/bytes?n="+fmt.Sprint(n), "")
	if resp.StatusCode != 200 || resp.ContentLength != n || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("bytes = %d, length %d, %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal([]byte(got), DeterministicBytes(n)) {
		t.Error("body differs from DeterministicBytes")
	}
	b := DeterministicBytes(300)
	for _, i := range []int{0, 1, 255, 256, 299} {
		if want := byte(i*7 + i>>8); b[i] != want {
			t.Errorf("DeterministicBytes[%d] = %d; want %d", i, b[i], want)
		}
	}
	if resp, _ := do(t, "GET", s.URL+"/_test/bytes?n=-1", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("n=-1: status %d; want 400", resp.StatusCode)
	}
}

func TestCounters(t *testing.T) {
	s := New(t)
	do(t, "GET", s.URL+"/", "")
	do(t, "GET", s.URL+"/api/version?x=1", "")
	do(t, "GET", s.URL+"/api/version", "")
	do(t, "GET", s.URL+"/nope", "")
	if got := s.Requests(); got != 4 {
		t.Errorf("Requests = %d; want 4", got)
	}
	if got := s.RequestsTo("/api/version"); got != 2 {
		t.Errorf("RequestsTo(/api/version) = %d; want 2", got)
	}
	if got := s.RequestsTo("/nope"); got != 1 {
		t.Errorf("RequestsTo(/nope) = %d; want 1", got)
	}
	if got := s.Addr(); !strings.HasPrefix(s.URL, "http://"+got) || !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("Addr = %q, URL = %q", got, s.URL)
	}
	s.Close()
	s.Close() // idempotent
	if _, err := http.Get(s.URL); err == nil {
		t.Error("server still answers after Close")
	}
}
