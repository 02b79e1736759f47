// Package scheduler models the model scheduler of Ollama v0.17.4
// (server/sched.go and the runner semaphore of llm/server.go) for the fake
// Ollama servers of the tests (internal/ollamatest) and the benchmarks
// (bench/fastollama). It holds no HTTP code: a handler calls
// [Scheduler.Acquire] before its first byte and [Lease.Release] when it is
// done.
//
// What it reproduces, checked against those sources:
//
//   - A request for a model that is loaded, or being loaded, joins it at
//     once: it waits for the load to end (that wait is its load_duration),
//     then for one of the model's Parallel slots (OLLAMA_NUM_PARALLEL),
//     first come first served and without bound, as on Ollama's runner
//     semaphore. It is never refused.
//   - A request for a model that is not loaded goes to the scheduler's
//     pending queue, served in order. The head loads its model if fewer
//     than MaxLoaded (OLLAMA_MAX_LOADED_MODELS) models are loaded; else it
//     evicts an idle model, or, when every loaded model is busy, marks one
//     to unload as soon as it goes idle and waits, holding up the requests
//     behind it, until an unload (another model going idle does not
//     help, as Ollama's loop waits for an unload). Past MaxQueue (OLLAMA_MAX_QUEUE) requests waiting behind
//     the head, a request is refused with [ErrMaxQueue] (Ollama's 503).
//   - The eviction order is Ollama's, not recency: the shortest keep-alive
//     first, then a fixed order of the models (Ollama sorts by the model's
//     blob path; this package by the model name, which is predictable).
//   - A model stays loaded KeepAlive (OLLAMA_KEEP_ALIVE, default 5m) after
//     its last request ends; a request's own keep_alive replaces it for the
//     model (0 unloads it as soon as it is idle, negative keeps it loaded
//     forever). The expiry time is set when the model goes idle and left as
//     it was while it is busy; while a model loads it reads as now plus its
//     keep-alive, as /api/ps shows it.
//   - A request with nothing to generate ([Scheduler.Load]: an empty
//     prompt, an embed without input) waits for its model, not for a slot.
//   - Loads of different models overlap (Ollama starts the weights load and
//     moves on to the next pending request); an unload is instant.
//
// What it leaves out: memory fitting (every model fits while fewer than
// MaxLoaded are loaded), reloads for changed options, embedding models
// forced to one slot, and the abort of a load whose first client left (here
// the load completes and the model stays loaded).
//
// A load takes Config.LoadDelay, a real timer, or lasts until
// [Scheduler.EndLoad] with [Manual]; [Scheduler.WaitFor] and
// [Scheduler.Changed] signal every change of state, so that tests need no
// sleeps.
//
// All methods are safe for concurrent use.
package scheduler
