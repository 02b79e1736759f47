package ollamatest

import (
	"encoding/json"
	"time"
)

// The types below mirror the JSON of Ollama v0.17.4 (api/types.go and
// openai/openai.go): the field order, the omitempty flags and the null
// fields are Ollama's, so that encoding/json writes the same bytes.

// message is api.Message without the fields the fake never sets.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// metrics is api.Metrics; durations are in nanoseconds.
type metrics struct {
	TotalDuration      int64 `json:"total_duration,omitempty"`
	LoadDuration       int64 `json:"load_duration,omitempty"`
	PromptEvalCount    int   `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64 `json:"prompt_eval_duration,omitempty"`
	EvalCount          int   `json:"eval_count,omitempty"`
	EvalDuration       int64 `json:"eval_duration,omitempty"`
}

// chatRequest is the part of api.ChatRequest the fake reads.
type chatRequest struct {
	Model     string          `json:"model"`
	Messages  []message       `json:"messages"`
	Stream    *bool           `json:"stream,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
}

// chatResponse is api.ChatResponse.
type chatResponse struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Message    message   `json:"message"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	metrics
}

// generateRequest is the part of api.GenerateRequest the fake reads.
type generateRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	Stream    *bool           `json:"stream,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
}

// generateResponse is api.GenerateResponse.
type generateResponse struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Response   string    `json:"response"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	Context    []int     `json:"context,omitempty"`
	metrics
}

// embedRequest is the part of api.EmbedRequest the fake reads.
type embedRequest struct {
	Model     string          `json:"model"`
	Input     any             `json:"input"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
}

// embedResponse is api.EmbedResponse.
type embedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	TotalDuration   int64       `json:"total_duration,omitempty"`
	LoadDuration    int64       `json:"load_duration,omitempty"`
	PromptEvalCount int         `json:"prompt_eval_count,omitempty"`
}

// showRequest is the part of api.ShowRequest the fake reads.
type showRequest struct {
	Model string `json:"model"`
	Name  string `json:"name"`
}

// showResponse is the part of api.ShowResponse the fake fills in.
type showResponse struct {
	License      string         `json:"license,omitempty"`
	Modelfile    string         `json:"modelfile,omitempty"`
	Parameters   string         `json:"parameters,omitempty"`
	Template     string         `json:"template,omitempty"`
	Details      modelDetails   `json:"details"`
	ModelInfo    map[string]any `json:"model_info"`
	Capabilities []string       `json:"capabilities,omitempty"`
	ModifiedAt   time.Time      `json:"modified_at"`
}

// pullRequest is the part of api.PullRequest the fake reads.
type pullRequest struct {
	Model  string `json:"model"`
	Name   string `json:"name"`
	Stream *bool  `json:"stream,omitempty"`
}

// progressResponse is api.ProgressResponse.
type progressResponse struct {
	Status    string `json:"status"`
	Digest    string `json:"digest,omitempty"`
	Total     int64  `json:"total,omitempty"`
	Completed int64  `json:"completed,omitempty"`
}

// modelDetails is api.ModelDetails.
type modelDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// listModel is api.ListModelResponse.
type listModel struct {
	Name       string       `json:"name"`
	Model      string       `json:"model"`
	ModifiedAt time.Time    `json:"modified_at"`
	Size       int64        `json:"size"`
	Digest     string       `json:"digest"`
	Details    modelDetails `json:"details"`
}

// processModel is api.ProcessModelResponse.
type processModel struct {
	Name          string       `json:"name"`
	Model         string       `json:"model"`
	Size          int64        `json:"size"`
	Digest        string       `json:"digest"`
	Details       modelDetails `json:"details"`
	ExpiresAt     time.Time    `json:"expires_at"`
	SizeVRAM      int64        `json:"size_vram"`
	ContextLength int          `json:"context_length"`
}

// oaiChatRequest is the part of openai.ChatCompletionRequest the fake reads.
type oaiChatRequest struct {
	Model         string        `json:"model"`
	Messages      []oaiMessage  `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *streamOption `json:"stream_options"`
}

type streamOption struct {
	IncludeUsage bool `json:"include_usage"`
}

// oaiMessage is openai.Message; Content is a string or a list of parts.
type oaiMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

// oaiChoice is openai.Choice.
type oaiChoice struct {
	Index        int        `json:"index"`
	Message      oaiMessage `json:"message"`
	FinishReason *string    `json:"finish_reason"`
}

// oaiChunkChoice is openai.ChunkChoice.
type oaiChunkChoice struct {
	Index        int        `json:"index"`
	Delta        oaiMessage `json:"delta"`
	FinishReason *string    `json:"finish_reason"`
}

// oaiUsage is openai.Usage.
type oaiUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// oaiCompletion is openai.ChatCompletion.
type oaiCompletion struct {
	ID                string      `json:"id"`
	Object            string      `json:"object"`
	Created           int64       `json:"created"`
	Model             string      `json:"model"`
	SystemFingerprint string      `json:"system_fingerprint"`
	Choices           []oaiChoice `json:"choices"`
	Usage             oaiUsage    `json:"usage"`
}

// oaiChunk is openai.ChatCompletionChunk.
type oaiChunk struct {
	ID                string           `json:"id"`
	Object            string           `json:"object"`
	Created           int64            `json:"created"`
	Model             string           `json:"model"`
	SystemFingerprint string           `json:"system_fingerprint"`
	Choices           []oaiChunkChoice `json:"choices"`
	Usage             *oaiUsage        `json:"usage,omitempty"`
}

// oaiModel is openai.Model.
type oaiModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// oaiList is openai.ListCompletion.
type oaiList struct {
	Object string     `json:"object"`
	Data   []oaiModel `json:"data"`
}

// oaiError is openai.ErrorResponse.
type oaiError struct {
	Error oaiErrorBody `json:"error"`
}

type oaiErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   any     `json:"param"`
	Code    *string `json:"code"`
}

// echoResponse is the body of /_test/echo.
type echoResponse struct {
	Method           string              `json:"method"`
	RequestURI       string              `json:"requestURI"`
	Host             string              `json:"host"`
	Proto            string              `json:"proto"`
	Headers          map[string][]string `json:"headers"`
	ContentLength    int64               `json:"contentLength"`
	TransferEncoding []string            `json:"transferEncoding"`
	BodyLen          int64               `json:"bodyLen"`
	BodySHA256       string              `json:"bodySHA256"`
}

// keepAliveZero reports whether a keep_alive value is present and zero, the
// condition under which Ollama unloads the model: parseKeepAlive reads it,
// so a tiny number of seconds that truncates to 0 counts as zero, as in
// Ollama (api.Duration multiplies by time.Second).
func keepAliveZero(raw json.RawMessage) bool {
	d := parseKeepAlive(raw)
	return d != nil && *d == 0
}
