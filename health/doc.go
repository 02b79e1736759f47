// Package health decides whether each Ollama backend is up or down.
//
// A [Checker] combines two sources of evidence about a fixed set of
// [Target]s:
//
//   - Active checks: [Checker.Run] requests Options.Path on every target
//     every Options.Interval, each target from its own goroutine, so a hung
//     backend (bounded by Options.Timeout) never delays another's check.
//     A 2xx answer is a success; any other status, a connection error or a
//     timeout is a failure.
//   - Passive reports: the proxy calls [Checker.ReportFailure] when it could
//     not connect to a backend. A refused connection is conclusive, so the
//     target is marked down at once.
//
// Each target moves between three states, kept by the target itself (the
// backend: the Checker holds no copy, so every reader sees one state):
//
//	unknown --first success--------------------------> up
//	up      --FailThreshold consecutive failures-----> down
//	any     --ReportFailure--------------------------> down
//	down    --RiseThreshold consecutive successes----> up
//
// A new target starts unknown and New does not touch it, so a backend keeps
// receiving traffic until there is evidence against it; a target kept across
// a reload keeps its state, and a down one needs RiseThreshold successes
// under the new Checker too. The Checker reads the state with Target.Down,
// sets it with Target.SetHealthy, and logs (and calls Options.OnChange) only
// when SetHealthy reports a change.
//
// With Options.Models, the Checker also keeps each [ModelTarget]'s list of
// models, for model-aware routing and the fleet's merged views: after every
// successful check it fetches the backend's GET /api/tags
// (ollamaapi.LocalModelsPath) and passes the names and the raw entries to
// SetModelList. A failed fetch keeps the last list; three in a row make it
// unknown (ForgetModels) until a fetch succeeds. Down backends are
// not fetched from; their last list is kept for when they come back.
//
// The package depends on the standard library and the route table only; it
// declares the small [Target] interface it needs instead of importing the
// proxy.
package health
