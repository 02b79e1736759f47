// Package redisstore is the gateway's connection to the Redis server its
// replicas share: one client (github.com/redis/rueidis, auto-pipelined, so
// concurrent calls share a connection and a write), Lua scripts run with
// EVALSHA and reloaded on NOSCRIPT (after a Redis restart), key prefixing,
// a short timeout on every call, and a breaker: after a failure, calls fail
// at once with ErrUnavailable for a short backoff instead of each waiting
// out the timeout, so an outage never holds requests up; the first call
// after the backoff tries again, so service resumes by itself.
//
// Failures are reported to Options.Observe (metrics) on every call and
// logged at most once per Options.LogEvery. The password never appears in
// a log line, an error or a metric.
//
// What to do when Redis is unreachable (fail open or closed) is the
// caller's choice: see limiter.Redis. A Client is safe for concurrent use.
package redisstore
