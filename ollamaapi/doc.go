// Package ollamaapi is the gateway's one table of the HTTP routes it knows:
// Ollama's own API (docs/api.md), its OpenAI- and Anthropic-compatible
// twins, and the gateway's own endpoints.
//
// For a request's method and path, Lookup returns the Route: everything the
// gateway knows about it, read by every package that needs a fact about
// Ollama's API instead of deciding it again:
//
//   - Class, the `endpoint` label of the metrics (telemetry);
//   - Buffered, whether the response is one small JSON document read whole
//     rather than streamed (proxy);
//   - Upload and HeadFirst, whether the request body is a model file
//     streamed through rather than buffered (proxy);
//   - ModelField, ModelFallback and ByModel, which JSON member of the body
//     names the model and whether the request goes to a backend that has it
//     (proxy's model-aware routing);
//   - Usage, where the token counts of the answer are read (telemetry);
//   - ChangesFleet, whether the request adds, changes or removes models.
//
// Adding a route is one line in the table of routes.go. Lookup is a map
// lookup and a few comparisons; it never allocates, and the Route it
// returns is shared and must not be modified.
package ollamaapi
