package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is one problem of a config: the field, named by its JSON path
// (e.g. "ollamaAddresses[1]" or "rateLimit.maxRequests"), and what is wrong
// with it. Field is empty for a problem of the document as a whole. Problem
// never holds the value of an API or admin key.
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "<Field>: <Problem>", or Problem alone when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Validate checks c and returns every problem, in field order, joined with
// errors.Join, each a [*FieldError]; it returns nil if c is valid. It does
// not apply defaults or normalise: [Parse] does that before it validates.
func (c *Config) Validate() error {
	if c == nil {
		return &FieldError{Problem: "config is nil"}
	}
	var v validator
	v.ollamaAddresses(c.OllamaAddresses)

	lb := c.LoadBalancer
	v.duration("loadBalancer.healthCheckIntervalInSeconds", lb.HealthCheckIntervalInSeconds, time.Second, 1)
	v.path("loadBalancer.healthCheckEndpoint", lb.HealthCheckEndpoint)
	v.duration("loadBalancer.healthCheckTimeoutInMilliseconds", lb.HealthCheckTimeoutInMilliseconds, time.Millisecond, 1)
	v.atLeast("loadBalancer.failThreshold", int64(lb.FailThreshold), 1)
	v.atLeast("loadBalancer.riseThreshold", int64(lb.RiseThreshold), 1)
	if lb.Strategy != StrategyRoundRobin && lb.Strategy != StrategyLeastConnections {
		v.add("loadBalancer.strategy", fmt.Sprintf("must be %q or %q", StrategyRoundRobin, StrategyLeastConnections))
	}
	v.atLeast("loadBalancer.queueSize", int64(lb.QueueSize), 0)
	v.duration("loadBalancer.queueTimeoutSeconds", lb.QueueTimeoutSeconds, time.Second, 1)
	for i, o := range c.AddressOptions {
		for _, f := range []struct {
			name string
			n    int
		}{{"maxConcurrent", o.MaxConcurrent}, {"numParallel", o.NumParallel}, {"maxLoadedModels", o.MaxLoadedModels}} {
			if f.n < 0 {
				v.add(fmt.Sprintf("ollamaAddresses[%d].%s", i, f.name), "must be >= 1")
			}
		}
	}

	v.gatewayAddress(c.GatewayAddress)
	v.headerName("authHeaderName", c.AuthHeaderName)
	withPolicy := map[[32]byte]string{}
	v.keys("apiKeys", c.APIKeys, c.APIPublicKeys, withPolicy)
	v.keys("adminKeys", c.AdminKeys, c.AdminPublicKeys, withPolicy)
	v.publicKeys("apiKeys", c.APIPublicKeys)
	v.publicKeys("adminKeys", c.AdminPublicKeys)

	rl := c.RateLimit
	v.rate("rateLimit.maxRequests", rl.MaxRequests, rl.Enabled)
	v.rate("rateLimit.timeWindowSeconds", rl.TimeWindowSeconds, rl.Enabled)
	v.maxDuration("rateLimit.timeWindowSeconds", rl.TimeWindowSeconds, time.Second)
	v.perKey(c, rl.PerKey)
	v.atLeast("rateLimit.maxConcurrent", int64(rl.MaxConcurrent), 0)
	v.atLeast("rateLimit.authFailuresPerMinute", int64(rl.AuthFailuresPerMinute), 1)

	v.ips("security.allowIps", c.Security.AllowIPs)
	v.ips("security.denyIps", c.Security.DenyIPs)
	v.ips("security.trustedProxies", c.Security.TrustedProxies)
	v.origins("security.allowedOrigins", c.Security.AllowedOrigins)
	switch c.Security.ModelManagement {
	case "", ModelManagementAdmin, ModelManagementAny:
	default:
		v.add("security.modelManagement", fmt.Sprintf(`%q must be "admin" or "any"`, c.Security.ModelManagement))
	}

	v.metricsEndpoint("metrics.endpoint", c.Metrics.Endpoint)
	v.metricsNamespace("metrics.namespace", c.Metrics.Namespace)
	v.console(c)

	p := c.Proxy
	v.atLeast("proxy.maxRequestBodyBytes", p.MaxRequestBodyBytes, 1)
	if p.MaxConnsPerBackend < 1 || p.MaxConnsPerBackend > 100000 {
		v.add("proxy.maxConnsPerBackend", "must be between 1 and 100000")
	}
	v.duration("proxy.connWaitTimeoutSeconds", p.ConnWaitTimeoutSeconds, time.Second, 1)
	v.duration("proxy.firstByteTimeoutSeconds", p.FirstByteTimeoutSeconds, time.Second, 1)
	v.duration("proxy.streamIdleTimeoutSeconds", p.StreamIdleTimeoutSeconds, time.Second, 1)
	v.duration("proxy.headerReadTimeoutSeconds", p.HeaderReadTimeoutSeconds, time.Second, 1)
	v.duration("proxy.clientIdleTimeoutSeconds", p.ClientIdleTimeoutSeconds, time.Second, 1)
	v.duration("proxy.shutdownTimeoutSeconds", p.ShutdownTimeoutSeconds, time.Second, 0)
	v.bodyBudget(p)
	v.redis(c.Redis)

	return errors.Join(v.errs...)
}

// validator collects the problems of a config.
type validator struct {
	errs []error
}

func (v *validator) add(field, problem string) {
	v.errs = append(v.errs, &FieldError{Field: field, Problem: problem})
}

func (v *validator) atLeast(field string, n, lowest int64) {
	if n < lowest {
		v.add(field, fmt.Sprintf("must be >= %d", lowest))
	}
}

// duration checks a number of units that becomes a time.Duration: at
// least lowest and, through the conversion the accessors use, at most
// MaxDuration.
func (v *validator) duration(field string, n int, unit time.Duration, lowest int64) {
	if int64(n) < lowest {
		v.atLeast(field, int64(n), lowest)
		return
	}
	v.maxDuration(field, n, unit)
}

// maxDuration reports a non-negative number of units beyond MaxDuration.
func (v *validator) maxDuration(field string, n int, unit time.Duration) {
	if _, ok := toDuration(int64(n), unit); !ok && n >= 0 {
		v.add(field, fmt.Sprintf("must be at most %d (one year)", int64(MaxDuration/unit)))
	}
}

func (v *validator) rate(field string, n int, enabled bool) {
	switch {
	case enabled && n <= 0:
		v.add(field, "must be > 0 when enabled")
	case n < 0:
		v.add(field, "must not be negative")
	}
}

func (v *validator) ollamaAddresses(addrs []string) {
	if len(addrs) == 0 {
		v.add("ollamaAddresses", "at least one Ollama address is required")
		return
	}
	seen := make(map[string]int, len(addrs)) // identity -> first index
	for i, a := range addrs {
		field := fmt.Sprintf("ollamaAddresses[%d]", i)
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "" {
			v.add(field, fmt.Sprintf("%q is not an http(s) URL", redact(a)))
			continue
		}
		ok := true
		if u.User != nil {
			v.add(field, "must not contain user info (user:password@)")
			ok = false
		}
		if u.RawQuery != "" || u.ForceQuery {
			v.add(field, fmt.Sprintf("%q must not have a query", redact(a)))
			ok = false
		}
		if u.Fragment != "" || strings.Contains(a, "#") {
			v.add(field, fmt.Sprintf("%q must not have a fragment", redact(a)))
			ok = false
		}
		if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				v.add(field, fmt.Sprintf("%q: port must be between 1 and 65535", redact(a)))
				ok = false
			}
		}
		if !ok {
			continue
		}
		id := u.Scheme + "://" + strings.ToLower(u.Host) + strings.TrimSuffix(u.EscapedPath(), "/")
		if first, dup := seen[id]; dup {
			v.add(field, fmt.Sprintf("duplicate of ollamaAddresses[%d]", first))
			continue
		}
		seen[id] = i
	}
}

// redact hides the user info of an address-like string, which may hold a
// password, for use in an error message.
func redact(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	end := len(s)
	if i := strings.IndexAny(s[start:], "/?#"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
		return s[:start] + "xxxxx" + s[start+at:]
	}
	return s
}

func (v *validator) gatewayAddress(addr string) {
	const field = "gatewayAddress"
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		reason := err.Error()
		var ae *net.AddrError
		if errors.As(err, &ae) {
			reason = ae.Err
		}
		v.add(field, fmt.Sprintf("%q must be host:port (%s)", addr, reason))
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(field, fmt.Sprintf("port %q must be a number between 0 and 65535", port))
	}
}

// headerName checks that name is an HTTP header field name: an RFC 7230
// token.
func (v *validator) headerName(field, name string) {
	if name == "" {
		v.add(field, "must not be empty")
		return
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			v.add(field, fmt.Sprintf("%q is not a valid HTTP header name", name))
			return
		}
	}
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// keys checks API or admin keys. Messages name a key by index only: the
// value is a secret. The publicKey entries of the list, pubs, are checked
// apart (publicKeys); f names an entry by its index in the file. A key
// listed twice (in one list or both) may carry its policy in one entry
// only.
func (v *validator) keys(field string, keys []KeyEntry, pubs []PublicKey, seen map[[32]byte]string) {
	for i, k := range keys {
		f := fmt.Sprintf("%s[%d]", field, stringKeyIndex(i, pubs))
		n := len(v.errs)
		v.keyEntry(f, k)
		if len(v.errs) > n || !k.HasPolicy() {
			continue
		}
		d := k.Digest()
		if first, dup := seen[d]; dup {
			v.add(f, "same key as "+first+", which has a policy too: give it once")
			continue
		}
		seen[d] = f
	}
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func (v *validator) ips(field string, list []string) {
	for i, s := range list {
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		if _, err := netip.ParsePrefix(s); err == nil {
			continue
		}
		v.add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q is not an IP address or CIDR", s))
	}
}

// path checks a URL path the gateway requests or serves: it starts with
// "/" and holds no white space or control characters.
func (v *validator) path(field, p string) bool {
	if !strings.HasPrefix(p, "/") {
		v.add(field, `must start with "/"`)
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			v.add(field, "must not contain spaces or control characters")
			return false
		}
	}
	return true
}

func (v *validator) metricsEndpoint(field, p string) {
	if !v.path(field, p) {
		return
	}
	switch {
	case p == "/":
		v.add(field, `must not be "/" (that is the proxied Ollama API)`)
	case p == "/healthz":
		v.add(field, `must not be "/healthz" (the gateway serves its liveness check there)`)
	case p == "/readyz":
		v.add(field, `must not be "/readyz" (the gateway serves its readiness check there)`)
	case strings.ContainsAny(p, "?#"):
		v.add(field, "must be a plain path without query or fragment")
	case under(p, "/config"):
		v.add(field, `must not be under "/config/" (the gateway's admin endpoints)`)
	case under(p, "/api"), under(p, "/v1"):
		v.add(field, `must not be under "/api/" or "/v1/" (Ollama's endpoints)`)
	}
}

// under reports whether path p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func (v *validator) metricsNamespace(field, ns string) {
	ok := ns != ""
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			ok = false
			break
		}
	}
	if !ok {
		v.add(field, fmt.Sprintf("%q must match ^[a-zA-Z_][a-zA-Z0-9_]*$", ns))
	}
}

// perKey checks the per-key rate overrides: each names a configured key and
// has a positive rate. An entry given as a raw key is never printed.
func (v *validator) perKey(c *Config, m map[string]RateOverride) {
	if len(m) == 0 {
		return
	}
	digests := c.keyDigestsByName()
	names := slices.Sorted(maps.Keys(m))
	for i, name := range names {
		field := "rateLimit.perKey[" + publicKeyName(name, i) + "]"
		if _, ok := lookupKeyName(digests, name); !ok {
			v.add(field, "names no key of apiKeys or adminKeys")
		}
		r := m[name]
		if r.MaxRequests <= 0 {
			v.add(field+".maxRequests", "must be > 0")
		}
		if r.TimeWindowSeconds <= 0 {
			v.add(field+".timeWindowSeconds", "must be > 0")
		}
		v.maxDuration(field+".timeWindowSeconds", r.TimeWindowSeconds, time.Second)
	}
}

// PerKeyDigests resolves the names of RateLimit.PerKey (key id, sha256
// form or key) to the digests of the keys they name. Validate reports a
// name that resolves to no configured key; such names are left out here.
func (c *Config) PerKeyDigests() map[[32]byte]RateOverride {
	if len(c.RateLimit.PerKey) == 0 {
		return nil
	}
	digests := c.keyDigestsByName()
	out := make(map[[32]byte]RateOverride, len(c.RateLimit.PerKey))
	for name, r := range c.RateLimit.PerKey {
		if d, ok := lookupKeyName(digests, name); ok {
			out[d] = r
		}
	}
	return out
}

// keyDigestsByName maps every name a configured key can be given by (the
// key, its id, its sha256 form) to its digest.
func (c *Config) keyDigestsByName() map[string][32]byte {
	m := make(map[string][32]byte)
	for _, e := range append(slices.Clone(c.APIKeys), c.AdminKeys...) {
		k := e.Credential()
		if k == "" {
			continue
		}
		d := KeyDigest(k)
		m[KeyID(d)] = d
		m["sha256:"+hex.EncodeToString(d[:])] = d
		m[k] = d
	}
	return m
}

// lookupKeyName finds name as written, else lower-cased (hex digits).
func lookupKeyName(m map[string][32]byte, name string) ([32]byte, bool) {
	if d, ok := m[name]; ok {
		return d, true
	}
	d, ok := m[strings.ToLower(name)]
	return d, ok
}

// publicKeyName returns how a PerKey entry may be shown: as written when it
// is a key id or a digest, else by its position (it is a secret key).
func publicKeyName(name string, i int) string {
	if strings.HasPrefix(name, "sha256:") || (len(name) == 16 && isHex(name)) {
		return strconv.Quote(name)
	}
	return "#" + strconv.Itoa(i)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// origins checks CORS origins: "*" or scheme://host[:port], no path.
func (v *validator) origins(field string, list []string) {
	for i, o := range list {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			v.add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf(`%q is not an origin like "https://app.example.com" or "*"`, o))
		}
	}
}

// bodyBudget checks the limits on buffered request bodies: a budget smaller
// than the largest accepted body would refuse that body forever.
func (v *validator) bodyBudget(p Proxy) {
	largest := p.MaxRequestBodyBytes
	if n := p.MaxBufferedBodyBytes; n < 0 || (n > 0 && n < largest) {
		v.add("proxy.maxBufferedBodyBytes",
			fmt.Sprintf("must be 0 (4 × proxy.maxRequestBodyBytes) or >= proxy.maxRequestBodyBytes (%d)", largest))
	}
	switch n := p.MaxBufferedBodyBytesPerKey; {
	case n < 0 || (n > 0 && n < largest):
		v.add("proxy.maxBufferedBodyBytesPerKey",
			fmt.Sprintf("must be 0 (2 × proxy.maxRequestBodyBytes) or >= proxy.maxRequestBodyBytes (%d)", largest))
	case n > 0 && n > p.BufferedBodyBudget():
		v.add("proxy.maxBufferedBodyBytesPerKey",
			fmt.Sprintf("must be <= proxy.maxBufferedBodyBytes (%d)", p.BufferedBodyBudget()))
	}
	v.atLeast("proxy.minRequestBodyBytesPerSecond", p.MinRequestBodyBytesPerSecond, 0)
}
