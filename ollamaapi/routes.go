package ollamaapi

// Paths the gateway requests itself.
const (
	// LocalModelsPath lists a backend's models (GET): Ollama answers
	// {"models":[{"name":"llama3.2:latest","model":...}]}.
	LocalModelsPath = "/api/tags"
	// RunningModelsPath lists the models a backend has loaded (GET), with
	// their expires_at and size_vram.
	RunningModelsPath = "/api/ps"
)

// table is every route the gateway knows, one line each. A route missing
// here still works: it is forwarded and streamed, counted as "other", and
// nothing is read from it. Methods are Ollama's (server/routes.go); a
// request with another method to a listed path gets that path's class and
// nothing else. See Route for the meaning of each field.
var table = []Route{
	// Ollama's API, in the order of docs/api.md.
	{Method: "POST", Pattern: "/api/generate", ModelField: "model", ByModel: true, Usage: OllamaUsage},
	{Method: "POST", Pattern: "/api/chat", ModelField: "model", ByModel: true, Usage: OllamaUsage},
	// Since Ollama 0.5 a create body names its files by digest (the files
	// go first, as blobs): a small JSON document, buffered to read them.
	{Method: "POST", Pattern: "/api/create", ModelField: "model", ModelFallback: "name", AlsoModel: "from", ChangesFleet: true, Blobs: BlobsInBody},
	{Method: "HEAD", Pattern: "/api/blobs/:digest", Blobs: BlobInPath},
	{Method: "POST", Pattern: "/api/blobs/:digest", Upload: true, HeadFirst: true, ChangesFleet: true, Blobs: BlobInPath},
	{Method: "GET", Pattern: LocalModelsPath, Buffered: true, View: TagsView},
	{Method: "POST", Pattern: "/api/show", ModelField: "model", ModelFallback: "name", ByModel: true},
	{Method: "POST", Pattern: "/api/copy", ModelField: "source", AlsoModel: "destination", ChangesFleet: true},
	{Method: "DELETE", Pattern: "/api/delete", ModelField: "model", ModelFallback: "name", ChangesFleet: true, FleetWide: true},
	{Method: "POST", Pattern: "/api/pull", ModelField: "model", ModelFallback: "name", ChangesFleet: true, FleetWide: true},
	{Method: "POST", Pattern: "/api/push", ModelField: "model", ModelFallback: "name", ChangesFleet: true},
	{Method: "POST", Pattern: "/api/embed", ModelField: "model", ByModel: true},
	{Method: "GET", Pattern: RunningModelsPath, Buffered: true, View: RunningView},
	{Method: "POST", Pattern: "/api/embeddings", ModelField: "model", ByModel: true},
	{Method: "GET", Pattern: "/api/version", Buffered: true},
	{Method: "GET", Pattern: "/", Buffered: true},

	// The OpenAI-compatible API (docs/api/openai-compatibility.mdx).
	{Method: "POST", Pattern: "/v1/chat/completions", ModelField: "model", ByModel: true, Usage: OpenAIUsage, StreamUsage: true},
	{Method: "POST", Pattern: "/v1/completions", ModelField: "model", ByModel: true, Usage: OpenAIUsage, StreamUsage: true},
	{Method: "POST", Pattern: "/v1/embeddings", ModelField: "model", ByModel: true, Usage: OpenAIUsage},
	{Method: "GET", Pattern: "/v1/models", Buffered: true, View: OpenAIModelsView},
	{Method: "GET", Pattern: "/v1/models/:model", Buffered: true, View: OpenAIModelView},
	{Method: "POST", Pattern: "/v1/responses", ModelField: "model", ByModel: true, Usage: OpenAIUsage},

	// The Anthropic-compatible API (docs/api/anthropic-compatibility.mdx).
	{Method: "POST", Pattern: "/v1/messages", ModelField: "model", ByModel: true, Usage: AnthropicUsage},

	// The gateway's own endpoints, any method. They never reach a
	// backend except a method the gateway does not serve there.
	{Pattern: "/config/reload"},
	{Pattern: "/config/new-key"},
	{Pattern: "/healthz"},
	{Pattern: "/readyz", Label: "/healthz"},
}
