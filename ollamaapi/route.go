package ollamaapi

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Route is what the gateway knows about one route: a method and a path
// pattern. The zero value of every field but Method and Pattern is the
// default: the response streams, the body is buffered (and capped), no
// model is read, no token count, the fleet is not changed.
type Route struct {
	// Method is the HTTP method, e.g. "POST". A route with no Method is
	// the one of its pattern for every method the table does not list.
	Method string
	// Pattern is the path the route matches exactly or, when its last
	// segment is a ":name" parameter ("/api/blobs/:digest"), every path
	// that starts with what precedes the parameter.
	Pattern string
	// Label is the metrics class, when not Pattern ("/readyz" is counted
	// with "/healthz").
	Label string

	// Buffered: the response is one small JSON (or text) document that
	// Ollama writes at once (version, model lists, running models,
	// liveness), read whole before it is passed on: that costs no latency,
	// frees the backend connection before the client has read the answer
	// and skips the streaming client's per-response allocations; the proxy
	// caps its size. Otherwise the response streams, as generations must.
	Buffered bool
	// Upload: the request body is a model file (gigabytes), streamed to
	// the backend instead of buffered, and not capped.
	Upload bool
	// HeadFirst: before an upload, ask the backend with a HEAD of the same
	// URI and skip the upload when it answers 200. Ollama answers a blob
	// it already has without reading the body, as its own client asks
	// first.
	HeadFirst bool

	// ModelField is the member of the JSON request body that names the
	// model, "" when the body names none.
	ModelField string
	// ModelFallback is the member read when ModelField is missing or
	// empty: Ollama's deprecated "name".
	ModelFallback string
	// AlsoModel is another member of the body that names a model the
	// request reads or makes, when present: /api/copy's "destination",
	// /api/create's "from". A key restricted to models must be allowed it
	// too.
	AlsoModel string
	// ByModel: the request must reach a backend that has the model its
	// body names (model-aware routing).
	ByModel bool

	// Usage says where a successful answer carries its token counts.
	Usage UsageFormat
	// StreamUsage: a streamed answer ("stream": true) carries its usage
	// only when the request asks with "stream_options": {"include_usage":
	// true}, in a last SSE chunk with no choices (OpenAI's chat and text
	// completions). See AppendStreamUsage and IsUsageOnlyChunk.
	StreamUsage bool
	// ChangesFleet: the request adds, changes or removes a backend's
	// models (pull, push, create, copy, delete, blob uploads).
	ChangesFleet bool

	// View is the merged view of the fleet the gateway answers itself for
	// this route when it has more than one backend (the union of their
	// model lists), instead of forwarding to one of them. NoView: forward.
	View View
	// FleetWide: the route may be sent to every backend in one call, with
	// the query parameter fleet=all (pull and delete a model fleet-wide).
	FleetWide bool
	// Blobs says where the request names model blobs (digests), so that
	// an upload and the create naming it reach the same backend.
	Blobs BlobRef

	class Class
}

// View is a merged view of the fleet's models.
type View uint8

// The views.
const (
	// NoView: the route is forwarded as any other.
	NoView View = iota
	// TagsView is GET /api/tags: {"models":[...]}, Ollama's list entries.
	TagsView
	// RunningView is GET /api/ps: {"models":[...]}, the loaded models.
	RunningView
	// OpenAIModelsView is GET /v1/models: {"object":"list","data":[...]}.
	OpenAIModelsView
	// OpenAIModelView is GET /v1/models/{model}: one model, OpenAI's shape.
	OpenAIModelView
)

// BlobRef says where a request names blobs by digest.
type BlobRef uint8

// The places a request names blobs.
const (
	// NoBlobs: the request names none.
	NoBlobs BlobRef = iota
	// BlobInPath: the last path segment is the digest (/api/blobs/:digest).
	BlobInPath
	// BlobsInBody: the values of the JSON body's "files" and "adapters"
	// objects are digests (/api/create).
	BlobsInBody
)

// Class returns the route's metrics class.
func (r *Route) Class() Class { return r.class }

// UsageFormat says where an answer carries its token counts.
type UsageFormat uint8

// The usage formats.
const (
	// NoUsage: the answer carries no token counts.
	NoUsage UsageFormat = iota
	// OllamaUsage: the final NDJSON line (or the whole answer when not
	// streamed) has "done": true, "prompt_eval_count" and "eval_count".
	OllamaUsage
	// OpenAIUsage: the answer, or with stream_options.include_usage its
	// last SSE chunk, has "usage": {"prompt_tokens", "completion_tokens"}.
	OpenAIUsage
	// AnthropicUsage: the answer has "usage": {"input_tokens",
	// "output_tokens"}; a stream carries them in its SSE events
	// message_start (the input) and message_delta (both, cumulative).
	AnthropicUsage
)

// String returns "none", "ollama", "openai" or "anthropic".
func (f UsageFormat) String() string {
	switch f {
	case OllamaUsage:
		return "ollama"
	case OpenAIUsage:
		return "openai"
	case AnthropicUsage:
		return "anthropic"
	}
	return "none"
}

// Class is a route class: the value of the metrics' `endpoint` label. Raw
// paths never become labels, so requests to random paths add no series.
type Class uint8

// The classes that are not a route's own. The others are numbered from the
// table, in its order; NumClasses counts them all.
const (
	// ClassOther is every path the table does not know.
	ClassOther Class = iota
	// ClassMetrics is the gateway's metrics endpoint, whose path is
	// configured: the gateway sets it itself.
	ClassMetrics
)

// NumClasses returns the number of classes: every Class is below it.
func NumClasses() int { return len(idx.names) }

// String returns the label value: the route's pattern ("/api/chat",
// "/api/blobs/:digest"), "metrics" or "other".
func (c Class) String() string {
	if int(c) >= len(idx.names) {
		return idx.names[ClassOther]
	}
	return idx.names[c]
}

// Unknown is the route of every path the table does not know: streamed,
// counted as ClassOther, nothing read from it.
var Unknown = &Route{class: ClassOther}

// Lookup returns the route of a request. It never returns nil and never
// allocates; the Route is shared and must not be modified.
func Lookup(method, path []byte) *Route { return idx.lookup(method, path) }

func (x *index) lookup(method, path []byte) *Route {
	p := x.exact[string(path)] // no allocation: the compiler looks the bytes up
	if p == nil {
		for i := range x.prefixed {
			if bytes.HasPrefix(path, x.prefixed[i].prefix) {
				p = x.prefixed[i].p
				break
			}
		}
		if p == nil {
			return Unknown
		}
	}
	for _, r := range p.methods {
		if string(method) == r.Method {
			return r
		}
	}
	return p.any
}

// pattern is the routes of one pattern: one per method listed, and the one
// for any other method.
type pattern struct {
	methods []*Route
	any     *Route
}

// prefixPattern is a pattern that ends in a parameter.
type prefixPattern struct {
	prefix []byte // the pattern up to the parameter
	p      *pattern
}

// index is the table made fast to search.
type index struct {
	names    []string // by Class
	exact    map[string]*pattern
	prefixed []prefixPattern // longest prefix first
}

var idx = mustBuild(table)

func mustBuild(routes []Route) *index {
	x, err := build(routes)
	if err != nil {
		panic(err)
	}
	return x
}

// build indexes routes, numbering their classes. It fails on a route the
// table cannot hold: a pattern that is not a path, a parameter that is not
// the last segment, a method given twice for one pattern.
func build(routes []Route) (*index, error) {
	x := &index{names: []string{ClassOther: "other", ClassMetrics: "metrics"}, exact: map[string]*pattern{}}
	classes := map[string]Class{}
	byPattern := map[string]*pattern{}
	for i := range routes {
		r := &routes[i]
		prefix, param := patternPrefix(r.Pattern)
		if !strings.HasPrefix(r.Pattern, "/") || strings.Contains(prefix, "/:") {
			return nil, fmt.Errorf("ollamaapi: route %s %q: the pattern must be a path with at most a final :parameter", r.Method, r.Pattern)
		}
		label := cmp.Or(r.Label, r.Pattern)
		c, ok := classes[label]
		if !ok {
			if len(x.names) > 255 {
				return nil, fmt.Errorf("ollamaapi: route %s %q: more classes than a Class holds", r.Method, r.Pattern)
			}
			c = Class(len(x.names))
			classes[label] = c
			x.names = append(x.names, label)
		}
		r.class = c
		p := byPattern[r.Pattern]
		if p == nil {
			p = &pattern{}
			byPattern[r.Pattern] = p
			if param {
				x.prefixed = append(x.prefixed, prefixPattern{[]byte(prefix), p})
			} else {
				x.exact[r.Pattern] = p
			}
		}
		if r.Method == "" {
			if p.any != nil {
				return nil, fmt.Errorf("ollamaapi: route %q is listed twice for any method", r.Pattern)
			}
			p.any = r
			continue
		}
		for _, o := range p.methods {
			if o.Method == r.Method {
				return nil, fmt.Errorf("ollamaapi: route %s %q is listed twice", r.Method, r.Pattern)
			}
		}
		p.methods = append(p.methods, r)
	}
	for pat, p := range byPattern {
		if p.any == nil {
			// Other methods: the class, nothing else.
			p.any = &Route{Pattern: pat, class: p.methods[0].class}
		}
	}
	slices.SortStableFunc(x.prefixed, func(a, b prefixPattern) int { return len(b.prefix) - len(a.prefix) })
	return x, nil
}

// patternPrefix returns the part of pattern before a final ":parameter"
// segment, and whether there is one.
func patternPrefix(pattern string) (prefix string, param bool) {
	i := strings.LastIndexByte(pattern, '/')
	if i >= 0 && strings.HasPrefix(pattern[i+1:], ":") {
		return pattern[:i+1], true
	}
	return pattern, false
}
