package ollamatest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// openStream starts a POST and returns the response once its headers are
// in, with a channel of its body's chunks: NDJSON lines ("\n" kept) or SSE
// events ("\n\n" kept). The channel closes at the end of the body.
func openStream(t *testing.T, ctx context.Context, rawURL, body string, sse bool) (*http.Response, <-chan string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", rawURL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		br := bufio.NewReader(resp.Body)
		for {
			s, err := br.ReadString('\n')
			if sse && err == nil {
				var blank string
				blank, err = br.ReadString('\n')
				s += blank
			}
			if s != "" {
				ch <- s
			}
			if err != nil {
				return
			}
		}
	}()
	return resp, ch
}

// next returns the next chunk, failing the test if none comes in time.
func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("stream ended early")
		}
		return s
	case <-time.After(waitTimeout):
		t.Fatal("no chunk within the test timeout")
	}
	return ""
}

// drain returns the remaining chunks.
func drain(t *testing.T, ch <-chan string) []string {
	t.Helper()
	var all []string
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return all
			}
			all = append(all, s)
		case <-time.After(waitTimeout):
			t.Fatal("stream did not end within the test timeout")
		}
	}
}

// assertNothing checks that no chunk is available for a short while. A
// correct server never sends one here, so the check cannot fail spuriously;
// a buffering bug might slip past it only if it is slower than the wait.
func assertNothing(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case s := <-ch:
		t.Fatalf("got chunk %q before it was released", s)
	case <-time.After(50 * time.Millisecond):
	}
}

var (
	chatLine = regexp.MustCompile(`^\{"model":"llama3\.2","created_at":"[^"]+","message":\{"role":"assistant","content":"([^"]*)"\},"done":false\}\n$`)
	chatLast = regexp.MustCompile(`^\{"model":"llama3\.2","created_at":"[^"]+","message":\{"role":"assistant","content":""\},"done":true,"done_reason":"stop",` +
		`"total_duration":\d+,"load_duration":\d+,"prompt_eval_count":26,"prompt_eval_duration":\d+,"eval_count":5,"eval_duration":\d+\}\n$`)
	genLine = regexp.MustCompile(`^\{"model":"llama3\.2","created_at":"[^"]+","response":"([^"]*)","done":false\}\n$`)
	genLast = regexp.MustCompile(`^\{"model":"llama3\.2","created_at":"[^"]+","response":"","done":true,"done_reason":"stop","context":\[1,2,3\],` +
		`"total_duration":\d+,"load_duration":\d+,"prompt_eval_count":26,"prompt_eval_duration":\d+,"eval_count":5,"eval_duration":\d+\}\n$`)
)

func TestNDJSONWireFormat(t *testing.T) {
	s := New(t)
	tests := []struct {
		path, body     string
		line, lastLine *regexp.Regexp
	}{
		{"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, chatLine, chatLast},
		{"/api/generate", `{"model":"llama3.2","prompt":"hi","stream":true}`, genLine, genLast},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, ch := openStream(t, testContext(t), s.URL+tt.path, tt.body, false)
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
				t.Errorf("Content-Type = %q; want application/x-ndjson", ct)
			}
			if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
				t.Errorf("TransferEncoding = %v, ContentLength = %d; want chunked", resp.TransferEncoding, resp.ContentLength)
			}
			lines := drain(t, ch)
			if len(lines) != 6 {
				t.Fatalf("got %d lines; want 6: %q", len(lines), lines)
			}
			var text strings.Builder
			for _, l := range lines[:5] {
				m := tt.line.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("line %q does not match %s", l, tt.line)
				}
				text.WriteString(m[1])
			}
			if text.String() != "The sky is blue." {
				t.Errorf("text = %q", text.String())
			}
			if !tt.lastLine.MatchString(lines[5]) {
				t.Errorf("last line %q does not match %s", lines[5], tt.lastLine)
			}
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Errorf("line %q is not valid JSON", l)
				}
			}
		})
	}
}

func TestTokenDelay(t *testing.T) {
	const delay = 5 * time.Millisecond
	s := New(t, WithTokenDelay(delay), WithTokens("a", "b", "c"))
	start := time.Now()
	_, ch := openStream(t, testContext(t), s.URL+"/api/generate", `{"model":"llama3.2","prompt":"hi"}`, false)
	if lines := drain(t, ch); len(lines) != 4 {
		t.Errorf("got %d lines; want 4", len(lines))
	}
	// Three waits: before each chunk but the first.
	if d := time.Since(start); d < 3*delay {
		t.Errorf("stream took %v; want at least %v", d, 3*delay)
	}
}

func TestNonStreamWireFormat(t *testing.T) {
	s := New(t)
	resp, body := do(t, "POST", s.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}`)
	want := regexp.MustCompile(`^\{"model":"llama3\.2","created_at":"[^"]+","message":\{"role":"assistant","content":"The sky is blue\."\},"done":true,"done_reason":"stop",` +
		`"total_duration":\d+,"load_duration":\d+,"prompt_eval_count":26,"prompt_eval_duration":\d+,"eval_count":5,"eval_duration":\d+\}$`)
	if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || !want.MatchString(body) {
		t.Errorf("non-stream chat = %q %s", resp.Header.Get("Content-Type"), body)
	}
}

// sseChunk is the part of a chat.completion.chunk the tests read.
type sseChunk struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Created           int64  `json:"created"`
	Model             string `json:"model"`
	SystemFingerprint string `json:"system_fingerprint"`
	Choices           []struct {
		Index        int               `json:"index"`
		Delta        map[string]string `json:"delta"`
		FinishReason *string           `json:"finish_reason"`
	} `json:"choices"`
	Usage *oaiUsage `json:"usage"`
}

func TestSSEWireFormat(t *testing.T) {
	s := New(t)
	f := func(includeUsage bool) {
		t.Helper()
		body := `{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		if includeUsage {
			body = `{"model":"llama3.2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
		}
		resp, ch := openStream(t, testContext(t), s.URL+"/v1/chat/completions", body, true)
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type = %q; want text/event-stream", ct)
		}
		events := drain(t, ch)
		want := 7
		if includeUsage {
			want = 8
		}
		if len(events) != want {
			t.Fatalf("include_usage=%v: got %d events; want %d: %q", includeUsage, len(events), want, events)
		}
		if last := events[len(events)-1]; last != "data: [DONE]\n\n" {
			t.Errorf("last event = %q; want data: [DONE]", last)
		}
		first := regexp.MustCompile(`^data: \{"id":"chatcmpl-\d+","object":"chat\.completion\.chunk","created":\d+,"model":"llama3\.2","system_fingerprint":"fp_ollama",` +
			`"choices":\[\{"index":0,"delta":\{"role":"assistant","content":"The"\},"finish_reason":null\}\]\}\n\n$`)
		if !first.MatchString(events[0]) {
			t.Errorf("first event %q does not match %s", events[0], first)
		}
		var text strings.Builder
		var id string
		for i, e := range events[:len(events)-1] {
			data, ok := strings.CutPrefix(e, "data: ")
			if !ok || !strings.HasSuffix(e, "\n\n") {
				t.Fatalf("event %q is not data: ...\\n\\n", e)
			}
			var c sseChunk
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				t.Fatalf("event %q: %v", e, err)
			}
			if id == "" {
				id = c.ID
			}
			if c.ID != id || c.Object != "chat.completion.chunk" || c.Model != "llama3.2" {
				t.Errorf("event %q: wrong id, object or model", e)
			}
			switch {
			case i < 5:
				if len(c.Choices) != 1 || c.Choices[0].FinishReason != nil || c.Usage != nil {
					t.Errorf("token event %q", e)
				}
				text.WriteString(c.Choices[0].Delta["content"])
			case i == 5:
				if len(c.Choices) != 1 || c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "stop" || c.Choices[0].Delta["content"] != "" {
					t.Errorf("finish event %q", e)
				}
			default:
				if !strings.Contains(e, `"choices":[]`) || c.Usage == nil || *c.Usage != (oaiUsage{26, 5, 31}) {
					t.Errorf("usage event %q", e)
				}
			}
		}
		if text.String() != "The sky is blue." {
			t.Errorf("text = %q", text.String())
		}
	}
	f(false)
	f(true)
}

func TestOpenAINonStream(t *testing.T) {
	s := New(t)
	resp, body := do(t, "POST", s.URL+"/v1/chat/completions", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
	want := regexp.MustCompile(`^\{"id":"chatcmpl-\d+","object":"chat\.completion","created":\d+,"model":"llama3\.2","system_fingerprint":"fp_ollama",` +
		`"choices":\[\{"index":0,"message":\{"role":"assistant","content":"The sky is blue\."\},"finish_reason":"stop"\}\],` +
		`"usage":\{"prompt_tokens":26,"completion_tokens":5,"total_tokens":31\}\}\n$`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !want.MatchString(body) {
		t.Errorf("completion = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestPaced(t *testing.T) {
	tests := []struct {
		name, path, body string
		sse              bool
		chunks           int
	}{
		{"chat", "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, false, 6},
		{"generate", "/api/generate", `{"model":"llama3.2","prompt":"hi"}`, false, 6},
		{"pull", "/api/pull", `{"model":"llama3.2"}`, false, 2},
		{"openai", "/v1/chat/completions", `{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}`, true, 7},
		{"openai usage", "/v1/chat/completions",
			`{"model":"llama3.2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, true, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, WithPaced())
			s.Release() // the first chunk carries the headers
			_, ch := openStream(t, testContext(t), s.URL+tt.path, tt.body, tt.sse)
			next(t, ch)
			for k := 1; k < tt.chunks; k++ {
				assertNothing(t, ch)
				s.Release()
				next(t, ch)
			}
			if rest := drain(t, ch); len(rest) != 0 {
				t.Errorf("extra chunks after %d releases: %q", tt.chunks, rest)
			}
			if got := s.AbortedCount(); got != 0 {
				t.Errorf("AbortedCount = %d; want 0", got)
			}
		})
	}
}

func TestPacedReleasesAreCounted(t *testing.T) {
	s := New(t, WithPaced())
	for range 6 {
		s.Release() // never blocks, even with no stream waiting
	}
	_, ch := openStream(t, testContext(t), s.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, false)
	if lines := drain(t, ch); len(lines) != 6 {
		t.Errorf("got %d lines; want 6", len(lines))
	}
}

func TestPacedConcurrentStreams(t *testing.T) {
	const streams = 8
	s := New(t, WithPaced())
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(testContext(t), "POST", s.URL+"/api/generate", strings.NewReader(`{"model":"llama3.2","prompt":"hi"}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			n := 0
			for sc := bufio.NewScanner(resp.Body); sc.Scan(); n++ {
			}
			if n != 6 {
				t.Errorf("got %d lines; want 6", n)
			}
		})
	}
	for range streams * 6 {
		s.Release()
	}
	wg.Wait()
}

func TestImmediateHeaders(t *testing.T) {
	s := New(t, WithPaced(), WithImmediateHeaders())
	// No release yet: the headers must still arrive.
	resp, ch := openStream(t, testContext(t), s.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, false)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("headers = %d %v", resp.StatusCode, resp.Header)
	}
	assertNothing(t, ch)
	s.Release()
	if l := next(t, ch); !chatLine.MatchString(l) {
		t.Errorf("first line %q", l)
	}
}

func TestAbortedWhenClientCancels(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		path string
		body string
		sse  bool
	}{
		{"paced chat", WithPaced(), "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, false},
		{"delayed generate", WithTokenDelay(time.Hour), "/api/generate", `{"model":"llama3.2","prompt":"hi"}`, false},
		{"paced openai", WithPaced(), "/v1/chat/completions", `{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, tt.opt)
			s.Release()
			ctx, cancel := context.WithCancel(testContext(t))
			_, ch := openStream(t, ctx, s.URL+tt.path, tt.body, tt.sse)
			next(t, ch)
			if got := s.InFlight(); got != 1 {
				t.Errorf("InFlight during stream = %d; want 1", got)
			}
			cancel()
			select {
			case <-s.Aborted():
			case <-time.After(waitTimeout):
				t.Fatal("no abort reported after the client cancelled")
			}
			if got := s.AbortedCount(); got != 1 {
				t.Errorf("AbortedCount = %d; want 1", got)
			}
			waitFor(t, func() bool { return s.InFlight() == 0 }, "InFlight to drop to 0")
		})
	}
}

func TestAbortedNonStream(t *testing.T) {
	s := New(t, WithTokenDelay(time.Hour))
	ctx, cancel := context.WithCancel(testContext(t))
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/api/chat",
			strings.NewReader(`{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}`))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, func() bool { return s.InFlight() == 1 }, "the request to reach the handler")
	cancel()
	select {
	case <-s.Aborted():
	case <-time.After(waitTimeout):
		t.Fatal("no abort reported")
	}
	if err := <-errc; err == nil {
		t.Error("request succeeded; want a cancellation error")
	}
}

func TestCloseEndsPacedStream(t *testing.T) {
	s := New(t, WithPaced())
	s.Release()
	_, ch := openStream(t, testContext(t), s.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`, false)
	next(t, ch)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return while a paced stream was waiting")
	}
	drain(t, ch)
	if got := s.AbortedCount(); got != 0 {
		t.Errorf("AbortedCount = %d; want 0 (the server closed, not the client)", got)
	}
}

// waitFor polls cond until it holds or the test timeout passes.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
