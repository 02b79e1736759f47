// Package limiter decides whether a client may make one more request: a
// token-bucket rate limiter (Local) and a cap on simultaneous requests per
// client (Concurrency).
//
// # Algorithm
//
// Each client, identified by a ClientKey (an IP address, an IPv6 /64 or an API
// key's ID, in a scope), has a token bucket of capacity Rate.Limit refilled
// continuously at Rate.Limit per Rate.Window. A client seen for the first
// time starts with a full bucket; each allowed request takes one token, so
// a client may burst Limit requests and then sustain Limit per Window.
// Tokens are kept in fixed point with the time of the last update; the rate
// is a parameter of every call, so a new rate (a configuration reload, a
// per-key override) applies at once, the tokens held being clamped to the
// new capacity. Time is a parameter too (Allow(key, rate, now)): tests step
// through fixed instants, and a clock that goes backwards refills nothing.
// The Decision carries what the 429 response and the X-RateLimit-* headers
// need: Remaining, RetryAfter and Reset.
//
// A bucket that has refilled completely behaves exactly like an absent one,
// so Local forgets it: Sweep (run periodically by Run) drops such buckets,
// and a full shard drops them before evicting anything. Memory is bounded
// by Options.MaxClients; see Local for the eviction policy.
//
// # Concurrency and memory
//
// Local and Concurrency split their clients over Options.Shards shards, each
// a mutex and a map chosen by a seeded hash of the key (hash/maphash), so
// requests of different clients rarely contend and no lock covers every
// client. A shard's buckets are stored by value in a slice indexed through
// its map: about 67 bytes per tracked client, no pointer per client, and no
// allocation per request for a known client.
//
// Limiter is the interface the request path depends on; a limiter shared
// between gateway instances (say, Redis-backed) can implement it too.
//
// # Construction
//
// Create a Local with NewLocal and a Concurrency with NewConcurrency; the
// zero Options select the defaults (256 shards, 1,000,000 clients). Their
// zero values are not usable. All methods are safe for concurrent use. The
// package has no global state.
package limiter
