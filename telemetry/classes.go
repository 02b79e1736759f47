package telemetry

import "bytes"

// Endpoint is a route class: the `endpoint` label. Raw paths never become
// labels, so 10,000 requests to random paths add no series.
type Endpoint uint8

// The route classes: Ollama's API, its OpenAI-compatible API, the gateway's
// own endpoints, and EndpointOther for everything else.
const (
	EndpointOther Endpoint = iota
	EndpointRoot
	EndpointChat
	EndpointGenerate
	EndpointEmbed
	EndpointEmbeddings
	EndpointTags
	EndpointPs
	EndpointShow
	EndpointPull
	EndpointPush
	EndpointCreate
	EndpointCopy
	EndpointDelete
	EndpointVersion
	EndpointBlobs
	EndpointOpenAIChat
	EndpointOpenAICompletions
	EndpointOpenAIEmbeddings
	EndpointOpenAIModels
	EndpointOpenAIModel
	EndpointOpenAIResponses
	EndpointConfigReload
	EndpointConfigNewKey
	EndpointHealth
	EndpointMetrics
	numEndpoints
)

var endpointNames = [numEndpoints]string{
	EndpointOther:             "other",
	EndpointRoot:              "/",
	EndpointChat:              "/api/chat",
	EndpointGenerate:          "/api/generate",
	EndpointEmbed:             "/api/embed",
	EndpointEmbeddings:        "/api/embeddings",
	EndpointTags:              "/api/tags",
	EndpointPs:                "/api/ps",
	EndpointShow:              "/api/show",
	EndpointPull:              "/api/pull",
	EndpointPush:              "/api/push",
	EndpointCreate:            "/api/create",
	EndpointCopy:              "/api/copy",
	EndpointDelete:            "/api/delete",
	EndpointVersion:           "/api/version",
	EndpointBlobs:             "/api/blobs/:digest",
	EndpointOpenAIChat:        "/v1/chat/completions",
	EndpointOpenAICompletions: "/v1/completions",
	EndpointOpenAIEmbeddings:  "/v1/embeddings",
	EndpointOpenAIModels:      "/v1/models",
	EndpointOpenAIModel:       "/v1/models/:model",
	EndpointOpenAIResponses:   "/v1/responses",
	EndpointConfigReload:      "/config/reload",
	EndpointConfigNewKey:      "/config/new-key",
	EndpointHealth:            "/healthz",
	EndpointMetrics:           "metrics",
}

// String returns the label value.
func (e Endpoint) String() string {
	if e >= numEndpoints {
		return endpointNames[EndpointOther]
	}
	return endpointNames[e]
}

// ClassifyPath returns the route class of a request path. The metrics
// endpoint (configurable) is classified by the caller.
func ClassifyPath(path []byte) Endpoint {
	switch string(path) { // no allocation: the compiler switches on the bytes
	case "/":
		return EndpointRoot
	case "/api/chat":
		return EndpointChat
	case "/api/generate":
		return EndpointGenerate
	case "/api/embed":
		return EndpointEmbed
	case "/api/embeddings":
		return EndpointEmbeddings
	case "/api/tags":
		return EndpointTags
	case "/api/ps":
		return EndpointPs
	case "/api/show":
		return EndpointShow
	case "/api/pull":
		return EndpointPull
	case "/api/push":
		return EndpointPush
	case "/api/create":
		return EndpointCreate
	case "/api/copy":
		return EndpointCopy
	case "/api/delete":
		return EndpointDelete
	case "/api/version":
		return EndpointVersion
	case "/v1/chat/completions":
		return EndpointOpenAIChat
	case "/v1/completions":
		return EndpointOpenAICompletions
	case "/v1/embeddings":
		return EndpointOpenAIEmbeddings
	case "/v1/models":
		return EndpointOpenAIModels
	case "/v1/responses":
		return EndpointOpenAIResponses
	case "/config/reload":
		return EndpointConfigReload
	case "/config/new-key":
		return EndpointConfigNewKey
	case "/healthz", "/readyz":
		return EndpointHealth
	}
	switch {
	case bytes.HasPrefix(path, []byte("/api/blobs/")):
		return EndpointBlobs
	case bytes.HasPrefix(path, []byte("/v1/models/")):
		return EndpointOpenAIModel
	}
	return EndpointOther
}

// Method is a normalised HTTP method: the `method` label.
type Method uint8

// The standard methods, and MethodOther for any other token.
const (
	MethodOther Method = iota
	MethodGet
	MethodHead
	MethodPost
	MethodPut
	MethodDelete
	MethodPatch
	MethodOptions
	MethodConnect
	MethodTrace
	numMethods
)

var methodNames = [numMethods]string{"OTHER", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}

// String returns the label value.
func (m Method) String() string {
	if m >= numMethods {
		return methodNames[MethodOther]
	}
	return methodNames[m]
}

// ClassifyMethod normalises a request method.
func ClassifyMethod(m []byte) Method {
	switch string(m) {
	case "GET":
		return MethodGet
	case "HEAD":
		return MethodHead
	case "POST":
		return MethodPost
	case "PUT":
		return MethodPut
	case "DELETE":
		return MethodDelete
	case "PATCH":
		return MethodPatch
	case "OPTIONS":
		return MethodOptions
	case "CONNECT":
		return MethodConnect
	case "TRACE":
		return MethodTrace
	}
	return MethodOther
}
