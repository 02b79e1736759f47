// Package ollamatest provides a fake Ollama server for end-to-end tests of
// the gateway.
//
// [New] starts an [httptest.Server] on 127.0.0.1 that speaks the wire format
// of Ollama v0.17.4, checked against that version's sources
// (server/routes.go, middleware/openai.go, api/types.go, openai/openai.go):
//
//   - GET/HEAD /, /api/version, /api/tags, GET /api/ps, GET /v1/models;
//   - POST /api/chat, /api/generate (NDJSON streams or one JSON object),
//     /api/embed, /api/show, /api/pull (the pulled model is served from then
//     on);
//   - POST /v1/chat/completions (SSE stream ending in "data: [DONE]", or one
//     JSON object);
//   - POST and HEAD /api/blobs/sha256:<hex> (the upload is hashed while it is
//     read, never held in memory);
//   - gin's router behaviour for everything else: "404 page not found",
//     "405 method not allowed" for a known path with another method, and a
//     redirect for a known path with a trailing slash;
//   - Ollama's access checks: 403 with an empty body for a Host header that
//     is not local (the fake listens on loopback) and for a browser Origin
//     that Ollama does not allow by default.
//
// Error bodies follow v0.17.4, which differs from older docs: an unknown
// model on /api/chat, /api/generate and /api/show is
// 404 {"error":"model 'x' not found"}, while /api/embed still answers
// {"error":"model \"x\" not found, try pulling it first"}.
//
// Paths under /_test/ are not Ollama's: /_test/echo describes the request as
// received, /_test/bytes?n=N answers N bytes of [DeterministicBytes] and
// /_test/status?code=N answers that status. They skip the access checks.
//
// Every generated reply is the configured tokens ([WithTokens]). Streams can
// be slowed ([WithTokenDelay]) or driven one chunk at a time by the test
// ([WithPaced] and [Server.Release]), which makes it possible to prove that a
// proxy passes each chunk on as soon as it arrives without relying on
// timing. A stream cut short by its client is reported on
// [Server.Aborted].
//
// Opt-in options model Ollama's scheduler ([WithScheduler],
// [WithParallel], [WithMaxQueue], [WithMaxLoadedModels], [WithLoadDelay],
// [WithKeepAlive], [WithLoaded]): per-model parallel slots, model loads
// that take time and evict idle models, keep_alive, the 503 "server busy"
// of a full pending queue, and /api/ps listing what is loaded. Counters
// ([Server.Loads], [Server.Running], [Server.Queued], [Server.Pending])
// and [Server.WaitFor], which waits on the server's change signal, let a
// test observe it without sleeping. Without them every request runs at
// once, as before.
//
// All methods of [Server] are safe for concurrent use.
package ollamatest
