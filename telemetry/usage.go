package telemetry

import (
	"bytes"

	"github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// Usage is what a response says about its tokens.
type Usage struct {
	OK                 bool   // the response carried counts
	Model              string // as the backend named it; "" when the kept tail does not name it
	Prompt, Completion int    // tokens
	EvalNanos          int64  // generation time, when reported (Ollama API)
	LoadNanos          int64  // model load time, when reported (Ollama API's load_duration)
}

// UsageOf reads the token counts from the tail of a successful response
// whose route carries them in format f (the route's Usage): the final
// NDJSON line of Ollama's answers, the usage of an OpenAI-compatible
// answer, the usage of an Anthropic-compatible one. It is called once,
// after the stream ended: nothing is spent per chunk.
func UsageOf(f ollamaapi.UsageFormat, tail []byte) Usage {
	if len(tail) == 0 {
		return Usage{}
	}
	switch f {
	case ollamaapi.OllamaUsage:
		return ollamaUsage(tail)
	case ollamaapi.OpenAIUsage:
		return openAIUsage(tail)
	case ollamaapi.AnthropicUsage:
		return anthropicUsage(tail)
	}
	return Usage{}
}

// ollamaUsage reads the final NDJSON line of /api/chat or /api/generate
// (or a whole non-streamed answer).
func ollamaUsage(tail []byte) Usage {
	line := lastLine(tail)
	var v struct {
		Model           string `json:"model"`
		Done            bool   `json:"done"`
		PromptEvalCount int    `json:"prompt_eval_count"`
		EvalCount       int    `json:"eval_count"`
		EvalDuration    int64  `json:"eval_duration"`
		LoadDuration    int64  `json:"load_duration"`
	}
	if json.Unmarshal(line, &v) != nil || !v.Done {
		return Usage{}
	}
	return Usage{OK: true, Model: v.Model, Prompt: v.PromptEvalCount, Completion: v.EvalCount, EvalNanos: v.EvalDuration,
		LoadNanos: v.LoadDuration}
}

// openAIUsage finds the usage of an OpenAI-compatible answer: the SSE
// chunk that carries it (stream_options.include_usage), or the whole JSON
// body when it fits in the tail.
func openAIUsage(tail []byte) Usage {
	var v struct {
		Model string `json:"model"`
		Usage *struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	for rest := tail; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		line = bytes.TrimPrefix(line, []byte("data: "))
		if !bytes.Contains(line, []byte(`"usage"`)) {
			continue
		}
		if json.Unmarshal(line, &v) == nil && v.Usage != nil {
			return Usage{OK: true, Model: v.Model, Prompt: v.Usage.PromptTokens, Completion: v.Usage.CompletionTokens}
		}
	}
	return Usage{}
}

// anthropicUsage reads the usage of an Anthropic-compatible answer
// (/v1/messages): a whole message {"type":"message","model":...,"usage":
// {"input_tokens","output_tokens"}} when it fits in the tail, or a stream's
// SSE events: the last message_delta carries the counts (Ollama sends both,
// cumulative; Anthropic's own API only output_tokens), message_start the
// model and the input tokens, when it is still in the tail.
func anthropicUsage(tail []byte) Usage {
	type counts struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	}
	var v struct {
		Type    string  `json:"type"`
		Model   string  `json:"model"`
		Usage   *counts `json:"usage"`
		Message *struct {
			Model string  `json:"model"`
			Usage *counts `json:"usage"`
		} `json:"message"`
	}
	var u Usage
	startInput := 0
	for rest := tail; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		line = bytes.TrimPrefix(line, []byte("data: "))
		if !bytes.Contains(line, []byte(`"usage"`)) {
			continue
		}
		v.Type, v.Model, v.Usage, v.Message = "", "", nil, nil
		if json.Unmarshal(line, &v) != nil {
			continue
		}
		switch {
		case v.Type == "message" && v.Usage != nil: // a whole answer
			return Usage{OK: true, Model: v.Model, Prompt: v.Usage.InputTokens, Completion: v.Usage.OutputTokens}
		case v.Type == "message_start" && v.Message != nil:
			u.Model = v.Message.Model
			if v.Message.Usage != nil {
				startInput = v.Message.Usage.InputTokens
			}
		case v.Type == "message_delta" && v.Usage != nil:
			u.OK = true
			u.Prompt, u.Completion = v.Usage.InputTokens, v.Usage.OutputTokens
		}
	}
	if !u.OK {
		return Usage{}
	}
	if u.Prompt == 0 {
		u.Prompt = startInput
	}
	return u
}

// nextLine splits the first line, trimmed of spaces, off b.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return bytes.TrimSpace(b[:i]), b[i+1:]
	}
	return bytes.TrimSpace(b), nil
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\r\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
