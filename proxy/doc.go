// Package proxy forwards HTTP requests to a pool of Ollama backends and
// streams their answers back, chunk by chunk.
//
// A [Pool] holds one pooled [fasthttp.HostClient] per [Backend] and picks
// backends round-robin with a single atomic counter, skipping backends marked
// down. A Backend may also know its models ([Backend.SetModels]): then a
// request whose buffered body names a model goes to a backend that has it,
// when there is a choice (see route.go). A [Proxy] is the request handler:
// it copies the client request (minus hop-by-hop headers), sends it to a
// backend, retries connection failures on the next backend while nothing
// has been answered yet, and
// passes the response body through a metering reader that the fasthttp server
// drains and flushes chunk by chunk, so every NDJSON line or SSE event reaches
// the client as soon as Ollama writes it.
//
// Pool and Proxy are immutable after construction and safe for concurrent use;
// a configuration reload builds new ones and swaps them in.
//
// One request, top to bottom: options.go ([Options], [New]); forward.go
// ([Proxy.Handle] and the per-request exchange); upload.go (the request body:
// buffered for replay, or streamed for model uploads); retry.go (attempts
// across backends, and which failures may be retried); stream.go (the
// response body passed on; sseusage.go cuts out of an OpenAI stream the
// usage chunk upload.go asked for on the client's behalf, so that its tokens
// are counted); result.go ([Result], [Finisher]). Below them:
// conn.go and frames.go (a backend connection's timeouts, and when it may
// be reused), backend.go, pool.go, route.go, models.go, headers.go,
// errors.go.
package proxy
