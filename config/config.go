package config

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"strings"
	"time"
)

// Defaults of the fields that have one. They are documented on the fields.
const (
	defaultHealthCheckIntervalInSeconds     = 30
	defaultHealthCheckEndpoint              = "/"
	defaultHealthCheckTimeoutInMilliseconds = 5000
	defaultGatewayAddress                   = "0.0.0.0:8080"
	defaultAuthHeaderName                   = "Authorization"
	defaultMetricsEndpoint                  = "/metrics"
	defaultMetricsNamespace                 = "gateway"
	defaultMaxRequestBodyBytes              = 64 << 20 // 64 MiB
	defaultMaxConnsPerBackend               = 512
	defaultConnWaitTimeoutSeconds           = 30
	defaultFirstByteTimeoutSeconds          = 600
	defaultStreamIdleTimeoutSeconds         = 300
	defaultHeaderReadTimeoutSeconds         = 10
	defaultClientIdleTimeoutSeconds         = 120
	defaultShutdownTimeoutSeconds           = 30
	defaultMinRequestBodyBytesPerSecond     = 8 << 10
	defaultAuthFailuresPerMinute            = 10
	defaultFailThreshold                    = 2
	defaultRiseThreshold                    = 1
	defaultRedisKeyPrefix                   = "ollama-gateway:"
	defaultRedisFailMode                    = "open"
	defaultRedisTimeoutMilliseconds         = 100
	defaultRedisLeaseMilliseconds           = 30000
	defaultStrategy                         = StrategyRoundRobin
	defaultQueueSize                        = 256
	defaultQueueTimeoutSeconds              = 60
)

// Load balancing strategies for requests that name no model
// (LoadBalancer.Strategy).
const (
	// StrategyRoundRobin sends each request to the next available backend
	// in turn, as the spec describes.
	StrategyRoundRobin = "round-robin"
	// StrategyLeastConnections sends each request to the available
	// backend with the fewest requests in flight, taking turns on ties.
	StrategyLeastConnections = "least-connections"
)

// Config is the parsed config.json: plain data with no behaviour beyond
// validation and unit conversion.
//
// Build one with [Parse] or [Load], which apply defaults and validate, or
// start from [Default]. A Config is safe for concurrent reads; do not modify
// one that other goroutines may read.
type Config struct {
	// OllamaAddresses are the base URLs of the Ollama servers requests are
	// forwarded to, e.g. "http://localhost:11434/". At least one is required;
	// each must be an http or https URL with a host and without query,
	// fragment or user info. Surrounding whitespace is trimmed; a trailing
	// slash is kept as given. No default.
	//
	// In the file, an entry is either that URL as a string (the spec's
	// form) or an object {"url": "...", "maxConcurrent": 4,
	// "numParallel": 2, "maxLoadedModels": 2}, strings and
	// objects mixed in one list; an object's url lands here and its
	// other fields in AddressOptions, at the same index.
	OllamaAddresses []string `json:"ollamaAddresses"`
	// AddressOptions holds the options of the OllamaAddresses entries
	// given as objects, index for index; it may be shorter than
	// OllamaAddresses (or nil), and a missing entry has every default.
	// It is filled by Parse, never read from or written to JSON under
	// its own name.
	AddressOptions []AddressOptions `json:"-"`
	// LoadBalancer configures backend health checks and fleet scheduling.
	LoadBalancer LoadBalancer `json:"loadBalancer"`
	// GatewayAddress is the host:port the gateway listens on. The host may
	// be empty, an IP address or a name; the port is a number in 0..65535.
	// Default "0.0.0.0:8080".
	GatewayAddress string `json:"gatewayAddress"`
	// Logging enables request logging. Default true.
	Logging bool `json:"logging"`
	// AuthHeaderName is the request header that carries the API key; it
	// must be a valid HTTP header field name. Default "Authorization".
	AuthHeaderName string `json:"authHeaderName"`
	// APIKeys are the keys accepted for the proxied Ollama API, each a
	// string (the key, printable ASCII without spaces, or "sha256:<64 hex
	// digits>", the SHA-256 digest of the key rather than the key itself)
	// or an object giving the key a name and a policy ([KeyEntry]); both
	// forms may be mixed. No default (nil).
	APIKeys []KeyEntry `json:"apiKeys"`
	// AdminKeys are the keys accepted for the gateway's admin endpoints
	// (/config/...) and for model management, in the same forms as
	// APIKeys. Optional; no default.
	AdminKeys []KeyEntry `json:"adminKeys,omitempty"`
	// APIPublicKeys are the object entries of apiKeys that name an Ollama
	// public key ([PublicKey]), in file order: signed requests made with
	// the matching private key are accepted. No default.
	APIPublicKeys []PublicKey `json:"-"`
	// AdminPublicKeys are the [PublicKey] entries of adminKeys: signed
	// requests with admin scope. No default.
	AdminPublicKeys []PublicKey `json:"-"`
	// RateLimit limits requests per client.
	RateLimit RateLimit `json:"rateLimit"`
	// Security holds the IP allow and deny lists.
	Security Security `json:"security"`
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics `json:"metrics"`
	// Proxy holds the gateway's own tuning: limits and timeouts.
	Proxy Proxy `json:"proxy"`
	// Console configures the operator console. Optional; off by default.
	Console Console `json:"console"`
	// Redis, when set, shares the rate limits and concurrency caps of
	// several gateway replicas through one Redis server. Optional; nil
	// (absent) keeps every limit in this process.
	Redis *Redis `json:"redis,omitempty"`
}

// AddressOptions are the options of one OllamaAddresses entry given as an
// object.
type AddressOptions struct {
	// MaxConcurrent caps the requests routed by model (inference,
	// embeddings, /api/show) the gateway has in flight on this server at
	// once, streams until their last chunk. Set it to the server's
	// OLLAMA_NUM_PARALLEL × the models it keeps loaded; past it, requests
	// go to another server or wait in the queue (LoadBalancer.QueueSize).
	// 0 (the default, and a string entry) means no cap; else >= 1.
	MaxConcurrent int `json:"maxConcurrent,omitempty"`
	// NumParallel is the server's OLLAMA_NUM_PARALLEL: how many requests
	// it generates at once for each loaded model. With it, the gateway
	// sends a model at most that many requests at once on this server,
	// so that none waits in Ollama's own queue while another server (or
	// the gateway's fair queue) could take it. 0 (the default) means
	// unknown: no per-model count; else >= 1.
	NumParallel int `json:"numParallel,omitempty"`
	// MaxLoadedModels is the server's OLLAMA_MAX_LOADED_MODELS: how many
	// models it keeps loaded at once. With it, the gateway knows that
	// loading one more model there evicts another, and that it cannot
	// while every loaded model is busy. 0 (the default) means unknown;
	// else >= 1.
	MaxLoadedModels int `json:"maxLoadedModels,omitempty"`
}

// Address returns the options of OllamaAddresses[i]; every default for a
// string entry.
func (c *Config) Address(i int) AddressOptions {
	if i < 0 || i >= len(c.AddressOptions) {
		return AddressOptions{}
	}
	return c.AddressOptions[i]
}

// LoadBalancer configures the health checks of the Ollama servers and how
// requests are spread over them.
type LoadBalancer struct {
	// HealthCheckIntervalInSeconds is the time between two health checks
	// of a server, in seconds. Default 30; must be >= 1.
	HealthCheckIntervalInSeconds int `json:"healthCheckIntervalInSeconds"`
	// HealthCheckEndpoint is the path requested on each server to check it.
	// Default "/" (Ollama answers "Ollama is running"); must start with "/".
	HealthCheckEndpoint string `json:"healthCheckEndpoint"`
	// HealthCheckTimeoutInMilliseconds is how long one health check may
	// take, in milliseconds. Default 5000; must be >= 1.
	HealthCheckTimeoutInMilliseconds int `json:"healthCheckTimeoutInMilliseconds"`
	// FailThreshold is how many consecutive failed checks mark a backend
	// down, so one blip does not flap it. Default 2; must be >= 1.
	FailThreshold int `json:"failThreshold,omitempty"`
	// RiseThreshold is how many consecutive successful checks bring a down
	// backend back. Default 1; must be >= 1.
	RiseThreshold int `json:"riseThreshold,omitempty"`
	// Strategy picks the backend of a request that names no model:
	// "round-robin" (the default, the spec's) or "least-connections".
	// Requests that name a model are scheduled by where it is loaded and
	// by free capacity (README, "Fleet scheduling").
	Strategy string `json:"strategy,omitempty"`
	// QueueSize is how many requests may wait, over all backends, for a
	// slot when every backend that could serve them is at its
	// maxConcurrent (or answered "server busy"). Default 256; 0 turns the
	// queue off (such requests are answered 503 at once); >= 0.
	QueueSize int `json:"queueSize"`
	// QueueTimeoutSeconds is the longest a request waits in the queue
	// before it is answered 503 with Retry-After, in seconds. Default 60;
	// >= 1.
	QueueTimeoutSeconds int `json:"queueTimeoutSeconds,omitempty"`
}

// QueueTimeout returns LoadBalancer.QueueTimeoutSeconds as a Duration
// (default 1m).
func (l LoadBalancer) QueueTimeout() time.Duration {
	return durationOf(int64(l.QueueTimeoutSeconds), time.Second)
}

// RateLimit limits how many requests one client may make in a time window.
type RateLimit struct {
	// MaxRequests is how many requests a client may make per window. No
	// default; must be > 0 when Enabled, and is never negative.
	MaxRequests int `json:"maxRequests"`
	// TimeWindowSeconds is the length of the window, in seconds. No
	// default; must be > 0 when Enabled, and is never negative.
	TimeWindowSeconds int `json:"timeWindowSeconds"`
	// Enabled turns rate limiting on. Default false.
	Enabled bool `json:"enabled"`
	// PerKey overrides MaxRequests and TimeWindowSeconds for single keys,
	// e.g. a premium key. An entry is named by the key's id (16 hex digits,
	// as shown in logs and by the keys CLI), by "sha256:<64 hex digits>", or
	// by the key itself; it must name a key of APIKeys or AdminKeys.
	// Optional; applies only when Enabled.
	PerKey map[string]RateOverride `json:"perKey,omitempty"`
	// MaxConcurrent caps the requests (streams included) one client may
	// have in flight at once, so one user cannot hold every Ollama slot.
	// 0 (the default) means no cap. Applies only when Enabled.
	MaxConcurrent int `json:"maxConcurrent,omitempty"`
	// AuthFailuresPerMinute caps failed authentications per client IP (or
	// IPv6 /64) per minute, whether or not Enabled is set: key guessing is
	// throttled with 429. Default 10; must be >= 1.
	AuthFailuresPerMinute int `json:"authFailuresPerMinute,omitempty"`
}

// RateOverride is the rate of one key in RateLimit.PerKey.
type RateOverride struct {
	// MaxRequests is how many requests the key may make per window; > 0.
	MaxRequests int `json:"maxRequests"`
	// TimeWindowSeconds is the length of the window in seconds; > 0.
	TimeWindowSeconds int `json:"timeWindowSeconds"`
}

// Security holds the IP filters. Each entry is an IP address or a CIDR
// prefix, IPv4 or IPv6, e.g. "10.0.0.1", "10.0.0.0/8" or "fd00::/8".
type Security struct {
	// AllowIPs, when not empty, lists the only clients that are allowed.
	// Default empty (every client is allowed).
	AllowIPs []string `json:"allowIps"`
	// DenyIPs lists clients that are refused. Default empty.
	DenyIPs []string `json:"denyIps"`
	// TrustedProxies lists the IPs/CIDRs of reverse proxies in front of the
	// gateway. Only when the TCP peer is one of them is X-Forwarded-For
	// read, and the client is its right-most address that is not a trusted
	// proxy. Default empty: X-Forwarded-For is never trusted.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// ModelManagement says which keys may change the fleet's models
	// (pull, push, create, copy, delete, blob uploads: the routes marked
	// ChangesFleet in ollamaapi): "admin" (the default) needs a key of
	// AdminKeys (without adminKeys nobody may: there is no loopback
	// fallback), "any" lets every API key do it, as before this field.
	ModelManagement string `json:"modelManagement,omitempty"`
	// AllowedOrigins lists the browser origins (e.g.
	// "https://chat.example.com") allowed to call the gateway across
	// origins (CORS); "*" allows any. Default empty: no cross-origin
	// browser access.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
}

// Metrics configures the Prometheus metrics endpoint.
type Metrics struct {
	// RequireKey makes the metrics endpoint require an API key like the
	// proxied API. Default false (Prometheus scrapes without a key).
	RequireKey bool `json:"requireKey,omitempty"`
	// Enabled turns metrics on. Default true.
	Enabled bool `json:"enabled"`
	// Endpoint is the path metrics are served on. Default "/metrics". It
	// must start with "/", must not be "/", "/healthz" or "/readyz" (the
	// gateway's own checks), and must not be in the gateway's admin
	// namespace (/config) nor in Ollama's (/api, /v1).
	Endpoint string `json:"endpoint"`
	// Namespace is the prefix of every metric name, e.g. "gateway" gives
	// "gateway_requests_total". Default "gateway"; must match
	// ^[a-zA-Z_][a-zA-Z0-9_]*$.
	Namespace string `json:"namespace"`
}

// Proxy holds the gateway's own tuning. The block is new and optional: a
// config file without it gets every default.
type Proxy struct {
	// MaxRequestBodyBytes is the largest request body accepted, in bytes.
	// It is not applied to /api/blobs/* uploads, which are
	// streamed. Default 64 MiB (67108864); must be >= 1.
	MaxRequestBodyBytes int64 `json:"maxRequestBodyBytes"`
	// MaxConnsPerBackend is the most connections open to one Ollama server
	// at a time. Default 512; must be between 1 and 100000.
	MaxConnsPerBackend int `json:"maxConnsPerBackend"`
	// ConnWaitTimeoutSeconds is how long a request waits for a free backend
	// connection before it is answered 503, in seconds. Default 30; >= 1.
	ConnWaitTimeoutSeconds int `json:"connWaitTimeoutSeconds"`
	// FirstByteTimeoutSeconds is how long the backend has to start
	// answering, in seconds; model loads are slow. Default 600; >= 1.
	FirstByteTimeoutSeconds int `json:"firstByteTimeoutSeconds"`
	// StreamIdleTimeoutSeconds is the longest silence allowed between two
	// body chunks, in either direction, in seconds. Default 300; >= 1.
	StreamIdleTimeoutSeconds int `json:"streamIdleTimeoutSeconds"`
	// HeaderReadTimeoutSeconds is how long a client has to send its request
	// headers (slowloris guard), in seconds. Default 10; >= 1.
	HeaderReadTimeoutSeconds int `json:"headerReadTimeoutSeconds"`
	// ClientIdleTimeoutSeconds is how long an idle keep-alive client
	// connection is kept, in seconds. Default 120; >= 1.
	ClientIdleTimeoutSeconds int `json:"clientIdleTimeoutSeconds"`
	// ShutdownTimeoutSeconds is how long requests and streams in flight may
	// finish after SIGTERM, in seconds; 0 means stop at once. Default 30;
	// >= 0.
	ShutdownTimeoutSeconds int `json:"shutdownTimeoutSeconds"`
	// MaxBufferedBodyBytes caps the request bodies held in memory at once
	// (every body but the streamed uploads is buffered, for replay), summed
	// over all requests, in bytes. A body is counted at its announced
	// length from its first byte until it has been sent to a backend; one
	// that does not fit is answered 503 with Retry-After. 0 (the default)
	// means 4 × MaxRequestBodyBytes (256 MiB); else it must be >=
	// MaxRequestBodyBytes.
	MaxBufferedBodyBytes int64 `json:"maxBufferedBodyBytes,omitempty"`
	// MaxBufferedBodyBytesPerKey is the share of MaxBufferedBodyBytes one
	// API key may hold, in bytes, whether or not rate limiting is on; past
	// it, 429 with Retry-After. 0 (the default) means 2 ×
	// MaxRequestBodyBytes (128 MiB), at most MaxBufferedBodyBytes; else it
	// must be between MaxRequestBodyBytes and MaxBufferedBodyBytes.
	MaxBufferedBodyBytesPerKey int64 `json:"maxBufferedBodyBytesPerKey,omitempty"`
	// MinRequestBodyBytesPerSecond is the slowest average rate at which a
	// buffered request body may arrive, in bytes per second, measured from
	// its start after a grace of 10 s: a body that falls behind is cut with
	// 408. Default 8192; 0 turns the check off (the idle timeout between
	// reads, StreamIdleTimeoutSeconds, still applies); >= 0.
	MinRequestBodyBytesPerSecond int64 `json:"minRequestBodyBytesPerSecond"`
}

// Redis connects the gateway to the Redis server its replicas share.
type Redis struct {
	// URL is the server, "redis://[user[:password]@]host[:port][/db]", or
	// "rediss://..." for TLS. Port 6379 and database 0 by default. A
	// password here is never logged nor shown; PasswordEnv keeps it out
	// of the file. Required.
	URL string `json:"url"`
	// PasswordEnv names an environment variable holding the password,
	// which then replaces any password of URL. Optional; when set, the
	// variable must be set and not empty.
	PasswordEnv string `json:"passwordEnv,omitempty"`
	// KeyPrefix starts every Redis key the gateway writes, so several
	// gateway fleets (or other programs) can share one database. Default
	// "ollama-gateway:"; printable ASCII without spaces.
	KeyPrefix string `json:"keyPrefix,omitempty"`
	// FailMode says what a request gets while Redis cannot be reached:
	// "open" (the default) admits it under this replica's own limits,
	// "closed" answers 503.
	FailMode string `json:"failMode,omitempty"`
	// TimeoutMilliseconds bounds one Redis call, in milliseconds; past it
	// the call counts as failed and FailMode applies. Default 100; between
	// 1 and 60000.
	TimeoutMilliseconds int `json:"timeoutMilliseconds,omitempty"`
	// LeaseMilliseconds is how long a concurrency slot (rateLimit.
	// maxConcurrent) lives in Redis unless renewed; the replica holding it
	// renews it every third of that while the request runs, so the slots
	// of a replica that died come back after at most this long. Default
	// 30000; between 100 and 3600000.
	LeaseMilliseconds int `json:"leaseMilliseconds,omitempty"`
}

// Timeout returns TimeoutMilliseconds as a Duration (default 100ms).
func (r *Redis) Timeout() time.Duration {
	return durationOf(int64(r.TimeoutMilliseconds), time.Millisecond)
}

// Lease returns LeaseMilliseconds as a Duration (default 30s).
func (r *Redis) Lease() time.Duration {
	return durationOf(int64(r.LeaseMilliseconds), time.Millisecond)
}

// Password returns the password from the PasswordEnv variable, or "" when
// PasswordEnv is not set (the URL's own password, if any, then applies).
func (r *Redis) Password() string {
	if r.PasswordEnv == "" {
		return ""
	}
	return os.Getenv(r.PasswordEnv)
}

// Default returns a Config holding every documented default. OllamaAddresses,
// APIKeys, AdminKeys and the IP lists are empty, and rate limiting is off, so
// the result does not validate until at least one Ollama address is added.
func Default() Config {
	return Config{
		LoadBalancer: LoadBalancer{
			HealthCheckIntervalInSeconds:     defaultHealthCheckIntervalInSeconds,
			HealthCheckEndpoint:              defaultHealthCheckEndpoint,
			HealthCheckTimeoutInMilliseconds: defaultHealthCheckTimeoutInMilliseconds,
			FailThreshold:                    defaultFailThreshold,
			RiseThreshold:                    defaultRiseThreshold,
			Strategy:                         defaultStrategy,
			QueueSize:                        defaultQueueSize,
			QueueTimeoutSeconds:              defaultQueueTimeoutSeconds,
		},
		GatewayAddress: defaultGatewayAddress,
		Logging:        true,
		AuthHeaderName: defaultAuthHeaderName,
		RateLimit:      RateLimit{AuthFailuresPerMinute: defaultAuthFailuresPerMinute},
		Metrics: Metrics{
			Enabled:   true,
			Endpoint:  defaultMetricsEndpoint,
			Namespace: defaultMetricsNamespace,
		},
		Console: Console{Path: defaultConsolePath, SessionMinutes: defaultConsoleSessionMinutes},
		Proxy: Proxy{
			MaxRequestBodyBytes:      defaultMaxRequestBodyBytes,
			MaxConnsPerBackend:       defaultMaxConnsPerBackend,
			ConnWaitTimeoutSeconds:   defaultConnWaitTimeoutSeconds,
			FirstByteTimeoutSeconds:  defaultFirstByteTimeoutSeconds,
			StreamIdleTimeoutSeconds: defaultStreamIdleTimeoutSeconds,
			HeaderReadTimeoutSeconds: defaultHeaderReadTimeoutSeconds,
			ClientIdleTimeoutSeconds: defaultClientIdleTimeoutSeconds,
			ShutdownTimeoutSeconds:   defaultShutdownTimeoutSeconds,

			MinRequestBodyBytesPerSecond: defaultMinRequestBodyBytesPerSecond,
		},
	}
}

// MaxDuration is the longest time any config field may give (one year):
// every number that becomes a duration (rate windows, health check
// interval and timeout, proxy timeouts) is checked by [Config.Validate]
// to lie between the field's minimum and MaxDuration, so that no value
// can overflow a time.Duration or silently disable what it configures.
const MaxDuration = 365 * 24 * time.Hour

// toDuration is the one conversion of a config number into a Duration: n
// units. It reports false when n is negative or the result would exceed
// MaxDuration; the Duration is then 0 for a negative n, MaxDuration for a
// too large one. Validate reports such values, so the accessors below,
// which use it too, never see one in a valid Config.
func toDuration(n int64, unit time.Duration) (time.Duration, bool) {
	switch {
	case n < 0:
		return 0, false
	case n > int64(MaxDuration/unit):
		return MaxDuration, false
	}
	return time.Duration(n) * unit, true
}

// durationOf is toDuration without the verdict, for the accessors.
func durationOf(n int64, unit time.Duration) time.Duration {
	d, _ := toDuration(n, unit)
	return d
}

// HealthCheckInterval returns LoadBalancer.HealthCheckIntervalInSeconds as a
// Duration (default 30s). Like every duration accessor, it gives 0 for a
// negative value and MaxDuration for a larger one (values Validate
// refuses).
func (c *Config) HealthCheckInterval() time.Duration {
	return durationOf(int64(c.LoadBalancer.HealthCheckIntervalInSeconds), time.Second)
}

// HealthCheckTimeout returns LoadBalancer.HealthCheckTimeoutInMilliseconds as
// a Duration (default 5s).
func (c *Config) HealthCheckTimeout() time.Duration {
	return durationOf(int64(c.LoadBalancer.HealthCheckTimeoutInMilliseconds), time.Millisecond)
}

// Window returns RateLimit.TimeWindowSeconds as a Duration (no default).
func (r RateLimit) Window() time.Duration {
	return durationOf(int64(r.TimeWindowSeconds), time.Second)
}

// Window returns TimeWindowSeconds as a Duration.
func (r RateOverride) Window() time.Duration {
	return durationOf(int64(r.TimeWindowSeconds), time.Second)
}

// ConnWaitTimeout returns ConnWaitTimeoutSeconds as a Duration (default 30s).
func (p Proxy) ConnWaitTimeout() time.Duration {
	return durationOf(int64(p.ConnWaitTimeoutSeconds), time.Second)
}

// FirstByteTimeout returns FirstByteTimeoutSeconds as a Duration (default
// 10m).
func (p Proxy) FirstByteTimeout() time.Duration {
	return durationOf(int64(p.FirstByteTimeoutSeconds), time.Second)
}

// StreamIdleTimeout returns StreamIdleTimeoutSeconds as a Duration (default
// 5m).
func (p Proxy) StreamIdleTimeout() time.Duration {
	return durationOf(int64(p.StreamIdleTimeoutSeconds), time.Second)
}

// HeaderReadTimeout returns HeaderReadTimeoutSeconds as a Duration (default
// 10s).
func (p Proxy) HeaderReadTimeout() time.Duration {
	return durationOf(int64(p.HeaderReadTimeoutSeconds), time.Second)
}

// ClientIdleTimeout returns ClientIdleTimeoutSeconds as a Duration (default
// 2m).
func (p Proxy) ClientIdleTimeout() time.Duration {
	return durationOf(int64(p.ClientIdleTimeoutSeconds), time.Second)
}

// ShutdownTimeout returns ShutdownTimeoutSeconds as a Duration (default 30s);
// 0 means stop at once.
func (p Proxy) ShutdownTimeout() time.Duration {
	return durationOf(int64(p.ShutdownTimeoutSeconds), time.Second)
}

// BufferedBodyBudget returns the effective MaxBufferedBodyBytes: the
// configured value, or 4 × MaxRequestBodyBytes when it is 0.
func (p Proxy) BufferedBodyBudget() int64 {
	if p.MaxBufferedBodyBytes > 0 {
		return p.MaxBufferedBodyBytes
	}
	return times(p.MaxRequestBodyBytes, 4)
}

// BufferedBodyBudgetPerKey returns the effective MaxBufferedBodyBytesPerKey:
// the configured value, or 2 × MaxRequestBodyBytes (at most
// BufferedBodyBudget) when it is 0.
func (p Proxy) BufferedBodyBudgetPerKey() int64 {
	if p.MaxBufferedBodyBytesPerKey > 0 {
		return p.MaxBufferedBodyBytesPerKey
	}
	return min(times(p.MaxRequestBodyBytes, 2), p.BufferedBodyBudget())
}

// times returns n × k for n, k >= 0, saturating at math.MaxInt64.
func times(n, k int64) int64 {
	if n > math.MaxInt64/k {
		return math.MaxInt64
	}
	return n * k
}

// KeyDigest returns the SHA-256 digest of an APIKeys or AdminKeys entry:
// the digest given by a "sha256:<64 hex digits>" entry, else the digest of
// the key itself. The entry must be valid (see Validate).
func KeyDigest(entry string) [32]byte {
	var d [32]byte
	if h, ok := strings.CutPrefix(entry, "sha256:"); ok && len(h) == 64 {
		if _, err := hex.Decode(d[:], []byte(h)); err == nil {
			return d
		}
	}
	return sha256.Sum256([]byte(entry))
}

// KeyID returns the public id of a key from its digest: the first 8 bytes
// in hex (16 digits). It names a key in logs, metrics and RateLimit.PerKey
// without revealing it.
func KeyID(digest [32]byte) string { return hex.EncodeToString(digest[:8]) }

// The values of Security.ModelManagement.
const (
	// ModelManagementAdmin: only admin keys may change the fleet's models.
	ModelManagementAdmin = "admin"
	// ModelManagementAny: every API key may.
	ModelManagementAny = "any"
)

// AnyKeyManagesModels reports whether Security.ModelManagement lets every
// API key manage models (default false: admin keys only).
func (s Security) AnyKeyManagesModels() bool { return s.ModelManagement == ModelManagementAny }
