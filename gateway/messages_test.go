package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// anthropicBackend answers POST /v1/messages as Ollama v0.17.4 does
// (middleware/anthropic.go): a message, or with "stream": true its SSE
// events, message_start first, message_delta with the counts last.
func anthropicBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/messages" {
			http.NotFound(w, r)
			return
		}
		if !strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"msg_1","type":"message","role":"assistant","model":"llama3.2","content":[{"type":"text","text":"blue"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":7}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []struct{ name, data string }{
			{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"llama3.2","content":[],"usage":{"input_tokens":9,"output_tokens":0}}}`},
			{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
			{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"blue"}}`},
			{"content_block_stop", `{"type":"content_block_stop","index":0}`},
			{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":12,"output_tokens":7}}`},
			{"message_stop", `{"type":"message_stop"}`},
		} {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestAnthropicMessagesMetered: /v1/messages, routed by model before, was
// counted as endpoint="other" and its tokens were never read. It has its
// own class, and its tokens are read in Anthropic's usage shape, streamed
// or not.
func TestAnthropicMessagesMetered(t *testing.T) {
	backend := anthropicBackend(t)
	gw := startGateway(t, nil, backend.URL)
	for _, body := range []string{
		`{"model":"llama3.2","max_tokens":64,"messages":[{"role":"user","content":"Why is the sky blue?"}]}`,
		`{"model":"llama3.2","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Why is the sky blue?"}]}`,
	} {
		if status, _, out := post(t, gw.URL+"/v1/messages", body); status != 200 || !strings.Contains(out, "blue") {
			t.Fatalf("POST /v1/messages: %d %s", status, out)
		}
	}
	out := scrape(t, gw.URL, "/metrics")
	for series, want := range map[string]float64{
		`gateway_requests_total{method="POST",endpoint="/v1/messages",status="200"}`:                       2,
		`gateway_requests_total{method="POST",endpoint="other",status="200"}`:                              -1,
		`gateway_tokens_total{model="llama3.2",backend="` + backend.URL + `",type="prompt"}`:               24,
		`gateway_tokens_total{model="llama3.2",backend="` + backend.URL + `",type="completion"}`:           14,
		`gateway_time_to_first_token_seconds_count{endpoint="/v1/messages",backend="` + backend.URL + `"}`: 2,
	} {
		if got := sample(t, out, series); got != want {
			t.Errorf("%s = %v; want %v", series, got, want)
		}
	}
}
