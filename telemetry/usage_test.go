package telemetry

import (
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Answers as Ollama v0.17.4 writes them.
const (
	ollamaChat = `{"model":"llama3.2","message":{"role":"assistant","content":"x"},"done":false}` + "\n" +
		`{"model":"llama3.2","created_at":"2026-11-24T10:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":9,"load_duration":1500000000,"prompt_eval_count":26,"eval_count":5,"eval_duration":500000000}` + "\n"
	openAISSE = "data: {\"id\":\"c\",\"model\":\"llama3.2\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"model\":\"llama3.2\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":5,\"total_tokens\":16}}\n\n" +
		"data: [DONE]\n\n"
	openAIJSON = `{"id":"c","object":"chat.completion","model":"qwen","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}` + "\n"

	// anthropic/anthropic.go: message_start carries the model and an
	// estimate of the input, message_delta the final counts.
	anthropicStart = "event: message_start\n" +
		`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"llama3.2","content":[],"usage":{"input_tokens":9,"output_tokens":0}}}` + "\n\n" +
		"event: content_block_start\n" +
		`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n"
	anthropicEnd = "event: content_block_delta\n" +
		`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"blue"}}` + "\n\n" +
		"event: content_block_stop\n" +
		`data: {"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\n" +
		`data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":12,"output_tokens":7}}` + "\n\n" +
		"event: message_stop\n" +
		`data: {"type":"message_stop"}` + "\n\n"
	anthropicJSON = `{"id":"msg_1","type":"message","role":"assistant","model":"qwen","content":[{"type":"text","text":"blue"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":7}}`
)

func TestUsageOf(t *testing.T) {
	// Anthropic's own API sends only output_tokens in message_delta.
	anthropicOwnEnd := strings.Replace(anthropicEnd, `"input_tokens":12,`, "", 1)
	tests := []struct {
		name   string
		format ollamaapi.UsageFormat
		tail   string
		want   Usage
	}{
		{"ollama stream", ollamaapi.OllamaUsage, ollamaChat, Usage{OK: true, Model: "llama3.2", Prompt: 26, Completion: 5, EvalNanos: 500000000, LoadNanos: 1500000000}},
		{"ollama answer", ollamaapi.OllamaUsage, ollamaChat[strings.Index(ollamaChat, "\n")+1:], Usage{OK: true, Model: "llama3.2", Prompt: 26, Completion: 5, EvalNanos: 500000000, LoadNanos: 1500000000}},
		{"ollama not done", ollamaapi.OllamaUsage, `{"model":"m","done":false}` + "\n", Usage{}},
		{"openai stream", ollamaapi.OpenAIUsage, openAISSE, Usage{OK: true, Model: "llama3.2", Prompt: 11, Completion: 5}},
		{"openai answer", ollamaapi.OpenAIUsage, openAIJSON, Usage{OK: true, Model: "qwen", Prompt: 3, Completion: 4}},
		{"anthropic stream", ollamaapi.AnthropicUsage, anthropicStart + anthropicEnd, Usage{OK: true, Model: "llama3.2", Prompt: 12, Completion: 7}},
		{"anthropic stream, start out of the tail", ollamaapi.AnthropicUsage, anthropicEnd, Usage{OK: true, Prompt: 12, Completion: 7}},
		{"anthropic's own stream", ollamaapi.AnthropicUsage, anthropicStart + anthropicOwnEnd, Usage{OK: true, Model: "llama3.2", Prompt: 9, Completion: 7}},
		{"anthropic stream cut before the end", ollamaapi.AnthropicUsage, anthropicStart, Usage{}},
		{"anthropic answer", ollamaapi.AnthropicUsage, anthropicJSON, Usage{OK: true, Model: "qwen", Prompt: 12, Completion: 7}},
		{"no usage", ollamaapi.NoUsage, ollamaChat, Usage{}},
		{"garbage", ollamaapi.OllamaUsage, "garbage", Usage{}},
		{"anthropic garbage", ollamaapi.AnthropicUsage, `data: {"usage":` + "\n" + `{"type":"message_delta","usage":7}`, Usage{}},
		{"empty", ollamaapi.AnthropicUsage, "", Usage{}},
	}
	for _, tt := range tests {
		if got := UsageOf(tt.format, []byte(tt.tail)); got != tt.want {
			t.Errorf("%s: UsageOf = %+v; want %+v", tt.name, got, tt.want)
		}
	}
}

// FuzzUsageOf: a backend's answer, whatever it is, never panics the
// reader, and counts are never negative for well-formed input.
func FuzzUsageOf(f *testing.F) {
	for _, s := range []string{ollamaChat, openAISSE, openAIJSON, anthropicStart + anthropicEnd, anthropicEnd, anthropicJSON, "", "data: \n"} {
		for format := range ollamaapi.AnthropicUsage + 1 {
			f.Add(uint8(format), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, format uint8, tail []byte) {
		u := UsageOf(ollamaapi.UsageFormat(format), tail)
		if !u.OK && u != (Usage{}) {
			t.Errorf("UsageOf = %+v: counts without OK", u)
		}
	})
}
