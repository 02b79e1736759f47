package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// withAddr returns a config document with one valid Ollama address and the
// given fields, e.g. withAddr(`"logging": false`).
func withAddr(fields string) string {
	if fields == "" {
		return `{"ollamaAddresses":["http://localhost:11434"]}`
	}
	return `{"ollamaAddresses":["http://localhost:11434"], ` + fields + `}`
}

// problems returns the messages of the errors joined in err.
func problems(err error) []string {
	var msgs []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			msgs = append(msgs, e.Error())
		}
		return msgs
	}
	if err != nil {
		msgs = append(msgs, err.Error())
	}
	return msgs
}

func TestLoadSeed(t *testing.T) {
	// testdata/seed.json is the example config.json of the original
	// gateway's documentation, verbatim.
	got, err := Load(filepath.Join("testdata", "seed.json"))
	if err != nil {
		t.Fatalf("Load(seed.json) error: %v", err)
	}
	want := Default()
	want.OllamaAddresses = []string{"http://localhost:11434/"}
	want.APIKeys = Keys("ahP7DieD7rNpTUa6No--iJpOaXY3TDK8dIjKg0cp-hI")
	want.RateLimit = RateLimit{MaxRequests: 10, TimeWindowSeconds: 15, Enabled: false, AuthFailuresPerMinute: 10}
	want.Security = Security{AllowIPs: []string{}, DenyIPs: []string{}}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Load(seed.json)\n got %+v\nwant %+v", *got, want)
	}
	if d := got.HealthCheckInterval(); d != 30*time.Second {
		t.Errorf("HealthCheckInterval() = %v; want 30s", d)
	}
	if d := got.HealthCheckTimeout(); d != 5*time.Second {
		t.Errorf("HealthCheckTimeout() = %v; want 5s", d)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse([]byte(`{"ollamaAddresses":["http://localhost:11434"]}`))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	want := Config{
		OllamaAddresses: []string{"http://localhost:11434"},
		LoadBalancer: LoadBalancer{
			HealthCheckIntervalInSeconds:     30,
			HealthCheckEndpoint:              "/",
			HealthCheckTimeoutInMilliseconds: 5000,
			FailThreshold:                    2,
			RiseThreshold:                    1,
			Strategy:                         "round-robin",
			QueueSize:                        256,
			QueueTimeoutSeconds:              60,
		},
		GatewayAddress: "0.0.0.0:8080",
		Logging:        true,
		AuthHeaderName: "Authorization",
		RateLimit:      RateLimit{AuthFailuresPerMinute: 10},
		Metrics:        Metrics{Enabled: true, Endpoint: "/metrics", Namespace: "gateway"},
		Proxy: Proxy{
			MaxRequestBodyBytes:      67108864,
			MaxConnsPerBackend:       512,
			ConnWaitTimeoutSeconds:   30,
			FirstByteTimeoutSeconds:  600,
			StreamIdleTimeoutSeconds: 300,
			HeaderReadTimeoutSeconds: 10,
			ClientIdleTimeoutSeconds: 120,
			ShutdownTimeoutSeconds:   30,

			MinRequestBodyBytesPerSecond: 8192,
		},
		Console: Console{Path: "/ui", SessionMinutes: 480},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Parse(minimal)\n got %+v\nwant %+v", *got, want)
	}
	p := got.Proxy
	for _, d := range []struct {
		name      string
		got, want time.Duration
	}{
		{"ConnWaitTimeout", p.ConnWaitTimeout(), 30 * time.Second},
		{"FirstByteTimeout", p.FirstByteTimeout(), 10 * time.Minute},
		{"StreamIdleTimeout", p.StreamIdleTimeout(), 5 * time.Minute},
		{"HeaderReadTimeout", p.HeaderReadTimeout(), 10 * time.Second},
		{"ClientIdleTimeout", p.ClientIdleTimeout(), 2 * time.Minute},
		{"ShutdownTimeout", p.ShutdownTimeout(), 30 * time.Second},
	} {
		if d.got != d.want {
			t.Errorf("%s() = %v; want %v", d.name, d.got, d.want)
		}
	}
}

func TestParseExplicitValuesWin(t *testing.T) {
	in := `{
  "ollamaAddresses": ["  http://a:11434/  ", "https://b.example/ollama"],
  "loadBalancer": {"healthCheckIntervalInSeconds": 5, "healthCheckEndpoint": "/api/version", "healthCheckTimeoutInMilliseconds": 250},
  "gatewayAddress": "127.0.0.1:9000",
  "logging": false,
  "authHeaderName": "X-Api-Key",
  "apiKeys": ["k1", "sha256:` + strings.Repeat("ab", 32) + `"],
  "adminKeys": ["admin-1"],
  "rateLimit": {"maxRequests": 100, "timeWindowSeconds": 60, "enabled": true},
  "security": {"allowIps": ["10.0.0.0/8", "::1"], "denyIps": ["10.0.0.7"]},
  "metrics": {"enabled": false, "endpoint": "/prom", "namespace": "ogw"},
  "proxy": {
    "maxRequestBodyBytes": 1024, "maxConnsPerBackend": 8, "connWaitTimeoutSeconds": 1,
    "firstByteTimeoutSeconds": 2, "streamIdleTimeoutSeconds": 3, "headerReadTimeoutSeconds": 4,
    "clientIdleTimeoutSeconds": 5, "shutdownTimeoutSeconds": 0,
    "maxBufferedBodyBytes": 4096, "maxBufferedBodyBytesPerKey": 2048, "minRequestBodyBytesPerSecond": 0
  }
}`
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	want := Config{
		OllamaAddresses: []string{"http://a:11434/", "https://b.example/ollama"},
		LoadBalancer:    LoadBalancer{5, "/api/version", 250, 2, 1, "round-robin", 256, 60},
		GatewayAddress:  "127.0.0.1:9000",
		Logging:         false,
		AuthHeaderName:  "X-Api-Key",
		APIKeys:         Keys("k1", "sha256:"+strings.Repeat("ab", 32)),
		AdminKeys:       Keys("admin-1"),
		RateLimit:       RateLimit{MaxRequests: 100, TimeWindowSeconds: 60, Enabled: true, AuthFailuresPerMinute: 10},
		Security:        Security{AllowIPs: []string{"10.0.0.0/8", "::1"}, DenyIPs: []string{"10.0.0.7"}},
		Metrics:         Metrics{Enabled: false, Endpoint: "/prom", Namespace: "ogw"},
		Proxy:           Proxy{1024, 8, 1, 2, 3, 4, 5, 0, 4096, 2048, 0},
		Console:         Console{Path: "/ui", SessionMinutes: 480},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Parse\n got %+v\nwant %+v", *got, want)
	}
	if d := got.HealthCheckTimeout(); d != 250*time.Millisecond {
		t.Errorf("HealthCheckTimeout() = %v; want 250ms", d)
	}
	if d := got.Proxy.ShutdownTimeout(); d != 0 {
		t.Errorf("ShutdownTimeout() = %v; want 0", d)
	}
}

func TestParseEmptyStringMeansDefault(t *testing.T) {
	got, err := Parse([]byte(withAddr(`"gatewayAddress": "", "authHeaderName": "",
		"loadBalancer": {"healthCheckEndpoint": ""}, "metrics": {"endpoint": "", "namespace": ""}`)))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	def := Default()
	if got.GatewayAddress != def.GatewayAddress || got.AuthHeaderName != def.AuthHeaderName ||
		got.LoadBalancer.HealthCheckEndpoint != def.LoadBalancer.HealthCheckEndpoint ||
		got.Metrics.Endpoint != def.Metrics.Endpoint || got.Metrics.Namespace != def.Metrics.Namespace {
		t.Errorf("empty strings did not give defaults: %+v", *got)
	}
}

func TestParseNullKeepsDefault(t *testing.T) {
	got, err := Parse([]byte(withAddr(`"gatewayAddress": null, "metrics": null, "proxy": {"maxConnsPerBackend": null}`)))
	if err != nil {
		t.Fatalf("Parse error: %v", err)
	}
	def := Default()
	if got.GatewayAddress != def.GatewayAddress || got.Metrics != def.Metrics || got.Proxy != def.Proxy {
		t.Errorf("null did not keep defaults: %+v", *got)
	}
}

func TestParseErrors(t *testing.T) {
	hex64 := strings.Repeat("0f", 32)
	tests := []struct {
		name, in string
		want     string // the whole message of the only error
	}{
		// decoding
		{"empty", ``, `empty file`},
		{"blank", " \n\t ", `empty file`},
		{"trailing data", withAddr(``) + ` {}`, `line 1, column 48: invalid character '{' after top-level value`},
		{"not an object", `["http://x"]`, `expected an object, got array`},
		{"top-level null", `null`, `expected an object, got null`},
		{"unknown field", withAddr(`"rateLimit": {"maxRequest": 5}`), `rateLimit.maxRequest: unknown field`},
		{"unknown top-level field", withAddr(`"ollamaAddress": "x"`), `ollamaAddress: unknown field`},
		{"unknown odd key", withAddr(`"proxy": {"max conns": 5}`), `proxy["max conns"]: unknown field`},
		{"type string for int", withAddr(`"rateLimit": {"maxRequests": "10"}`), `rateLimit.maxRequests: expected a number, got string`},
		{"type fraction for int", withAddr(`"rateLimit": {"maxRequests": 1.5}`), `rateLimit.maxRequests: expected a whole number, got 1.5`},
		{"type exponent for int", withAddr(`"proxy": {"maxConnsPerBackend": 1e3}`), `proxy.maxConnsPerBackend: expected a whole number without fraction or exponent, got 1e3`},
		{"type int out of range", withAddr(`"proxy": {"maxRequestBodyBytes": 99999999999999999999}`), `proxy.maxRequestBodyBytes: number 99999999999999999999 is out of range`},
		{"type float out of range", withAddr(`"proxy": {"maxRequestBodyBytes": 1e400}`), `proxy.maxRequestBodyBytes: number 1e400 is out of range`},
		{"type bool", withAddr(`"logging": "yes"`), `logging: expected true or false, got string`},
		{"type array", `{"ollamaAddresses": "http://x"}`, `ollamaAddresses: expected an array of strings or objects, got string`},
		{"type element", withAddr(`"apiKeys": ["k", 5]`), `apiKeys[1]: expected a string or an object, got number`},
		{"type null element", withAddr(`"apiKeys": [null]`), `apiKeys[0]: expected a string or an object, got null`},
		{"type object", withAddr(`"metrics": true`), `metrics: expected an object, got boolean`},

		// ollamaAddresses
		{"no addresses", `{}`, `ollamaAddresses: at least one Ollama address is required`},
		{"empty addresses", `{"ollamaAddresses": []}`, `ollamaAddresses: at least one Ollama address is required`},
		{"bad scheme", `{"ollamaAddresses": ["htp://x"]}`, `ollamaAddresses[0]: "htp://x" is not an http(s) URL`},
		{"no scheme", `{"ollamaAddresses": ["localhost:11434"]}`, `ollamaAddresses[0]: "localhost:11434" is not an http(s) URL`},
		{"no host", `{"ollamaAddresses": ["http:///x"]}`, `ollamaAddresses[0]: "http:///x" is not an http(s) URL`},
		{"blank address", `{"ollamaAddresses": ["  "]}`, `ollamaAddresses[0]: "" is not an http(s) URL`},
		{"query", `{"ollamaAddresses": ["http://x/?a=1"]}`, `ollamaAddresses[0]: "http://x/?a=1" must not have a query`},
		{"fragment", `{"ollamaAddresses": ["http://x/#f"]}`, `ollamaAddresses[0]: "http://x/#f" must not have a fragment`},
		{"user info", `{"ollamaAddresses": ["http://u:pw@x/"]}`, `ollamaAddresses[0]: must not contain user info (user:password@)`},
		{"port zero", `{"ollamaAddresses": ["http://x:0"]}`, `ollamaAddresses[0]: "http://x:0": port must be between 1 and 65535`},
		{"port too big", `{"ollamaAddresses": ["http://x:65536"]}`, `ollamaAddresses[0]: "http://x:65536": port must be between 1 and 65535`},
		{"port empty", `{"ollamaAddresses": ["http://x:"]}`, `ollamaAddresses[0]: "http://x:": port must be between 1 and 65535`},
		{"duplicate", `{"ollamaAddresses": ["http://a:1", "http://b:1", "http://a:1/"]}`, `ollamaAddresses[2]: duplicate of ollamaAddresses[0]`},
		{"duplicate after trim", `{"ollamaAddresses": ["http://A:1/", " http://a:1 "]}`, `ollamaAddresses[1]: duplicate of ollamaAddresses[0]`},

		// loadBalancer
		{"interval", withAddr(`"loadBalancer": {"healthCheckIntervalInSeconds": 0}`), `loadBalancer.healthCheckIntervalInSeconds: must be >= 1`},
		{"timeout", withAddr(`"loadBalancer": {"healthCheckTimeoutInMilliseconds": -1}`), `loadBalancer.healthCheckTimeoutInMilliseconds: must be >= 1`},
		{"interval overflow", withAddr(`"loadBalancer": {"healthCheckIntervalInSeconds": 9223372037}`), `loadBalancer.healthCheckIntervalInSeconds: must be at most 31536000 (one year)`},
		{"timeout overflow", withAddr(`"loadBalancer": {"healthCheckTimeoutInMilliseconds": 9223372036855}`), `loadBalancer.healthCheckTimeoutInMilliseconds: must be at most 31536000000 (one year)`},
		{"endpoint", withAddr(`"loadBalancer": {"healthCheckEndpoint": "health"}`), `loadBalancer.healthCheckEndpoint: must start with "/"`},
		{"endpoint space", withAddr(`"loadBalancer": {"healthCheckEndpoint": "/a b"}`), `loadBalancer.healthCheckEndpoint: must not contain spaces or control characters`},

		// gatewayAddress
		{"gateway no port", withAddr(`"gatewayAddress": "0.0.0.0"`), `gatewayAddress: "0.0.0.0" must be host:port (missing port in address)`},
		{"gateway named port", withAddr(`"gatewayAddress": ":http"`), `gatewayAddress: port "http" must be a number between 0 and 65535`},
		{"gateway port range", withAddr(`"gatewayAddress": "[::1]:65536"`), `gatewayAddress: port "65536" must be a number between 0 and 65535`},

		// authHeaderName
		{"header space", withAddr(`"authHeaderName": "X Api Key"`), `authHeaderName: "X Api Key" is not a valid HTTP header name`},
		{"header colon", withAddr(`"authHeaderName": "X-Key:"`), `authHeaderName: "X-Key:" is not a valid HTTP header name`},

		// keys
		{"key empty", withAddr(`"apiKeys": ["ok", ""]`), `apiKeys[1]: must not be empty`},
		{"key space", withAddr(`"apiKeys": ["has space"]`), `apiKeys[0]: must be printable ASCII without spaces or control characters`},
		{"key control", withAddr(`"apiKeys": ["a\u0001b"]`), `apiKeys[0]: must be printable ASCII without spaces or control characters`},
		{"key non-ASCII", withAddr(`"adminKeys": ["clé"]`), `adminKeys[0]: must be printable ASCII without spaces or control characters`},
		{"key sha256 short", withAddr(`"apiKeys": ["sha256:abc"]`), `apiKeys[0]: sha256 form needs 64 hex digits`},
		{"key sha256 not hex", withAddr(`"adminKeys": ["sha256:` + strings.Repeat("zz", 32) + `"]`), `adminKeys[0]: sha256 form needs 64 hex digits`},
		{"key sha256 long", withAddr(`"apiKeys": ["sha256:` + hex64 + `0"]`), `apiKeys[0]: sha256 form needs 64 hex digits`},

		// rateLimit
		{"max requests enabled", withAddr(`"rateLimit": {"enabled": true, "timeWindowSeconds": 1}`), `rateLimit.maxRequests: must be > 0 when enabled`},
		{"window enabled", withAddr(`"rateLimit": {"enabled": true, "maxRequests": 1}`), `rateLimit.timeWindowSeconds: must be > 0 when enabled`},
		{"negative disabled", withAddr(`"rateLimit": {"maxRequests": -1}`), `rateLimit.maxRequests: must not be negative`},
		{"negative enabled", withAddr(`"rateLimit": {"enabled": true, "maxRequests": 1, "timeWindowSeconds": -5}`), `rateLimit.timeWindowSeconds: must be > 0 when enabled`},
		// Regression (issue 10, item 4): 9223372037 s overflowed the window
		// to a negative Duration and turned the limit off.
		{"window overflow", withAddr(`"rateLimit": {"enabled": true, "maxRequests": 1, "timeWindowSeconds": 9223372037}`), `rateLimit.timeWindowSeconds: must be at most 31536000 (one year)`},
		{"window overflow disabled", withAddr(`"rateLimit": {"timeWindowSeconds": 9223372036854775807}`), `rateLimit.timeWindowSeconds: must be at most 31536000 (one year)`},
		{"window over a year", withAddr(`"rateLimit": {"enabled": true, "maxRequests": 1, "timeWindowSeconds": 31536001}`), `rateLimit.timeWindowSeconds: must be at most 31536000 (one year)`},
		{"perKey window overflow", withAddr(`"apiKeys": ["k1"], "rateLimit": {"perKey": {"k1": {"maxRequests": 1, "timeWindowSeconds": 9223372037}}}`), `rateLimit.perKey[#0].timeWindowSeconds: must be at most 31536000 (one year)`},

		// security
		{"deny CIDR", withAddr(`"security": {"denyIps": ["10.0.0.1", "10.0.0.0/33"]}`), `security.denyIps[1]: "10.0.0.0/33" is not an IP address or CIDR`},
		{"allow name", withAddr(`"security": {"allowIps": ["localhost"]}`), `security.allowIps[0]: "localhost" is not an IP address or CIDR`},

		// metrics
		{"metrics relative", withAddr(`"metrics": {"endpoint": "metrics"}`), `metrics.endpoint: must start with "/"`},
		{"metrics root", withAddr(`"metrics": {"endpoint": "/"}`), `metrics.endpoint: must not be "/" (that is the proxied Ollama API)`},
		{"metrics config", withAddr(`"metrics": {"endpoint": "/config/metrics"}`), `metrics.endpoint: must not be under "/config/" (the gateway's admin endpoints)`},
		{"metrics api", withAddr(`"metrics": {"endpoint": "/api/metrics"}`), `metrics.endpoint: must not be under "/api/" or "/v1/" (Ollama's endpoints)`},
		{"metrics v1", withAddr(`"metrics": {"endpoint": "/v1/metrics"}`), `metrics.endpoint: must not be under "/api/" or "/v1/" (Ollama's endpoints)`},
		{"metrics healthz", withAddr(`"metrics": {"endpoint": "/healthz"}`), `metrics.endpoint: must not be "/healthz" (the gateway serves its liveness check there)`},
		{"metrics readyz", withAddr(`"metrics": {"endpoint": "/readyz"}`), `metrics.endpoint: must not be "/readyz" (the gateway serves its readiness check there)`},
		{"metrics query", withAddr(`"metrics": {"endpoint": "/m?x=1"}`), `metrics.endpoint: must be a plain path without query or fragment`},
		{"namespace digit", withAddr(`"metrics": {"namespace": "1gw"}`), `metrics.namespace: "1gw" must match ^[a-zA-Z_][a-zA-Z0-9_]*$`},
		{"namespace dash", withAddr(`"metrics": {"namespace": "my-gw"}`), `metrics.namespace: "my-gw" must match ^[a-zA-Z_][a-zA-Z0-9_]*$`},

		// proxy
		{"body", withAddr(`"proxy": {"maxRequestBodyBytes": 0}`), `proxy.maxRequestBodyBytes: must be >= 1`},
		{"conns low", withAddr(`"proxy": {"maxConnsPerBackend": 0}`), `proxy.maxConnsPerBackend: must be between 1 and 100000`},
		{"conns high", withAddr(`"proxy": {"maxConnsPerBackend": 100001}`), `proxy.maxConnsPerBackend: must be between 1 and 100000`},
		{"conn wait", withAddr(`"proxy": {"connWaitTimeoutSeconds": 0}`), `proxy.connWaitTimeoutSeconds: must be >= 1`},
		{"first byte", withAddr(`"proxy": {"firstByteTimeoutSeconds": 0}`), `proxy.firstByteTimeoutSeconds: must be >= 1`},
		{"stream idle", withAddr(`"proxy": {"streamIdleTimeoutSeconds": 0}`), `proxy.streamIdleTimeoutSeconds: must be >= 1`},
		{"header read", withAddr(`"proxy": {"headerReadTimeoutSeconds": 0}`), `proxy.headerReadTimeoutSeconds: must be >= 1`},
		{"client idle", withAddr(`"proxy": {"clientIdleTimeoutSeconds": 0}`), `proxy.clientIdleTimeoutSeconds: must be >= 1`},
		{"shutdown", withAddr(`"proxy": {"shutdownTimeoutSeconds": -1}`), `proxy.shutdownTimeoutSeconds: must be >= 0`},
		{"connWaitTimeoutSeconds overflow", withAddr(`"proxy": {"connWaitTimeoutSeconds": 9223372037}`), `proxy.connWaitTimeoutSeconds: must be at most 31536000 (one year)`},
		{"firstByteTimeoutSeconds overflow", withAddr(`"proxy": {"firstByteTimeoutSeconds": 9223372037}`), `proxy.firstByteTimeoutSeconds: must be at most 31536000 (one year)`},
		{"streamIdleTimeoutSeconds overflow", withAddr(`"proxy": {"streamIdleTimeoutSeconds": 9223372037}`), `proxy.streamIdleTimeoutSeconds: must be at most 31536000 (one year)`},
		{"headerReadTimeoutSeconds overflow", withAddr(`"proxy": {"headerReadTimeoutSeconds": 9223372037}`), `proxy.headerReadTimeoutSeconds: must be at most 31536000 (one year)`},
		{"clientIdleTimeoutSeconds overflow", withAddr(`"proxy": {"clientIdleTimeoutSeconds": 9223372037}`), `proxy.clientIdleTimeoutSeconds: must be at most 31536000 (one year)`},
		{"shutdownTimeoutSeconds overflow", withAddr(`"proxy": {"shutdownTimeoutSeconds": 9223372037}`), `proxy.shutdownTimeoutSeconds: must be at most 31536000 (one year)`},
		{"body budget below body", withAddr(`"proxy": {"maxRequestBodyBytes": 1000, "maxBufferedBodyBytes": 999}`), `proxy.maxBufferedBodyBytes: must be 0 (4 × proxy.maxRequestBodyBytes) or >= proxy.maxRequestBodyBytes (1000)`},
		{"body budget negative", withAddr(`"proxy": {"maxBufferedBodyBytes": -1}`), `proxy.maxBufferedBodyBytes: must be 0 (4 × proxy.maxRequestBodyBytes) or >= proxy.maxRequestBodyBytes (67108864)`},
		{"key budget below body", withAddr(`"proxy": {"maxRequestBodyBytes": 1000, "maxBufferedBodyBytesPerKey": 999}`), `proxy.maxBufferedBodyBytesPerKey: must be 0 (2 × proxy.maxRequestBodyBytes) or >= proxy.maxRequestBodyBytes (1000)`},
		{"key budget above budget", withAddr(`"proxy": {"maxRequestBodyBytes": 1000, "maxBufferedBodyBytes": 2000, "maxBufferedBodyBytesPerKey": 2001}`), `proxy.maxBufferedBodyBytesPerKey: must be <= proxy.maxBufferedBodyBytes (2000)`},
		{"key budget above default budget", withAddr(`"proxy": {"maxRequestBodyBytes": 1000, "maxBufferedBodyBytesPerKey": 4001}`), `proxy.maxBufferedBodyBytesPerKey: must be <= proxy.maxBufferedBodyBytes (4000)`},
		{"body rate negative", withAddr(`"proxy": {"minRequestBodyBytesPerSecond": -1}`), `proxy.minRequestBodyBytesPerSecond: must be >= 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%s) = %+v, nil; want error %q", tt.in, *c, tt.want)
			}
			if c != nil {
				t.Errorf("Parse(%s) returned a config with its error", tt.in)
			}
			if got := problems(err); len(got) != 1 || got[0] != tt.want {
				t.Errorf("Parse(%s) error:\n got %q\nwant [%q]", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	for _, in := range []string{
		withAddr(`"gatewayAddress": ":8080"`),
		withAddr(`"gatewayAddress": "[::]:0"`),
		withAddr(`"gatewayAddress": "gateway.local:80"`),
		withAddr(`"metrics": {"endpoint": "/configs", "namespace": "_a9"}`),
		withAddr(`"security": {"allowIps": ["fe80::1%eth0", "2001:db8::/32", "192.168.1.0/24"]}`),
		withAddr(`"apiKeys": ["sha256:` + strings.Repeat("aB", 32) + `", "!~"]`),
		withAddr(`"authHeaderName": "x-api-key"`),
		withAddr(`"rateLimit": {"enabled": false, "maxRequests": 0, "timeWindowSeconds": 0}`),
		withAddr(`"LOGGING": false`), // keys match case-insensitively, as in encoding/json
		`{"ollamaAddresses": ["http://[::1]:11434", "https://h", "http://h/sub/path/"]}`,
		"\xef\xbb\xbf" + withAddr(``),
	} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%s) error: %v", in, err)
		}
	}
}

func TestParseReportsEveryProblemInFieldOrder(t *testing.T) {
	in := `{
  "ollamaAddresses": ["htp://x", "http://ok"],
  "gatewayAddress": "nope",
  "apiKeys": ["sha256:12"],
  "rateLimit": {"enabled": true},
  "proxy": {"maxConnsPerBackend": 0}
}`
	_, err := Parse([]byte(in))
	want := []string{
		`ollamaAddresses[0]: "htp://x" is not an http(s) URL`,
		`gatewayAddress: "nope" must be host:port (missing port in address)`,
		`apiKeys[0]: sha256 form needs 64 hex digits`,
		`rateLimit.maxRequests: must be > 0 when enabled`,
		`rateLimit.timeWindowSeconds: must be > 0 when enabled`,
		`proxy.maxConnsPerBackend: must be between 1 and 100000`,
	}
	if got := problems(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse error:\n got %q\nwant %q", got, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "ollamaAddresses[0]" {
		t.Errorf("errors.As(*FieldError) = %+v; want the ollamaAddresses[0] error", fe)
	}
	// Decoding problems are reported together too.
	_, err = Parse([]byte(withAddr(`"logging": 1, "metrics": {"enabld": true}, "proxy": {"x": 1, "shutdownTimeoutSeconds": "1"}`)))
	want = []string{
		`logging: expected true or false, got number`,
		`metrics.enabld: unknown field`,
		`proxy.shutdownTimeoutSeconds: expected a number, got string`,
		`proxy.x: unknown field`,
	}
	if got := problems(err); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse error:\n got %q\nwant %q", got, want)
	}
}

func TestParseSyntaxErrorPosition(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"{\n  \"logging\": true,\n  \"x\": tru\n}", `line 3, column 11: invalid character`},
		{"{\n\t\"ollamaAddresses\": [\"é\" \"x\"]\n}", `line 2, column 26: invalid character '"' after array element`},
		{"{\"logging\": true", `line 1, column 17: unexpected end of JSON input`},
		{"{\"apiKeys\": [\"secret\u0001\"]}", `line 1, column 21: invalid character '\x01' in string literal`},
	} {
		_, err := Parse([]byte(tt.in))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %v; want prefix %q", tt.in, err, tt.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "config.json")
	_, err := Load(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) error = %v; want one that is fs.ErrNotExist", err)
	}
	if want := missing + ": open " + missing + ": no such file or directory"; err.Error() != want {
		t.Errorf("Load(missing) error = %q; want %q", err, want)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"ollamaAddresses": [], "rateLimit": {"enabled": true, "maxRequests": 1}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	want := bad + ": ollamaAddresses: at least one Ollama address is required\n" +
		bad + ": rateLimit.timeWindowSeconds: must be > 0 when enabled"
	if err == nil || err.Error() != want {
		t.Errorf("Load(bad) error:\n got %v\nwant %s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("Load(bad) error does not wrap a *FieldError")
	}

	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty); err == nil || err.Error() != empty+": empty file" {
		t.Errorf("Load(empty) error = %v; want %q", err, empty+": empty file")
	}
}

func TestErrorsNeverHoldKeys(t *testing.T) {
	secrets := []string{"s3cr3t value", "sha256:TOPSECRET", "tab\tsecret", "ünïcode-secret"}
	var list string
	for i, s := range secrets {
		if i > 0 {
			list += ", "
		}
		list += `"` + strings.ReplaceAll(s, "\t", `\t`) + `"`
	}
	for _, in := range []string{
		withAddr(`"apiKeys": [` + list + `]`),
		withAddr(`"adminKeys": [` + list + `]`),
		withAddr(`"apiKeys": [` + list + `, 7]`),
		`{"ollamaAddresses": ["http://user:s3cr3t@host"]}`,
		`{"ollamaAddresses": ["ftp://user:s3cr3t@host"]}`,
		`{"ollamaAddresses": ["user:s3cr3t@host"]}`,
		`{"ollamaAddresses": ["http://user:s3cr3t@host?q"]}`,
	} {
		_, err := Parse([]byte(in))
		if err == nil {
			t.Fatalf("Parse(%s) = nil error; want one", in)
		}
		for _, s := range append(secrets, "s3cr3t", "SECRET", "secret") {
			if strings.Contains(err.Error(), s) {
				t.Errorf("Parse(%s) error %q holds the secret %q", in, err, s)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	c := Default()
	err := c.Validate()
	if got, want := problems(err), []string{"ollamaAddresses: at least one Ollama address is required"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Default().Validate() = %q; want %q", got, want)
	}
	c.OllamaAddresses = []string{"http://localhost:11434"}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v; want nil", err)
	}
	// Validate does not apply defaults.
	c.AuthHeaderName = ""
	if got, want := problems(c.Validate()), []string{"authHeaderName: must not be empty"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() = %q; want %q", got, want)
	}
	var nilConfig *Config
	if err := nilConfig.Validate(); err == nil {
		t.Errorf("(*Config)(nil).Validate() = nil; want an error")
	}
}

func TestDurationsSaturate(t *testing.T) {
	c := Default()
	c.LoadBalancer.HealthCheckIntervalInSeconds = math.MaxInt
	c.LoadBalancer.HealthCheckTimeoutInMilliseconds = -5
	if d := c.HealthCheckInterval(); d != MaxDuration {
		t.Errorf("HealthCheckInterval() = %v; want MaxDuration", d)
	}
	if d := c.HealthCheckTimeout(); d != 0 {
		t.Errorf("HealthCheckTimeout() = %v; want 0", d)
	}
	p := Proxy{StreamIdleTimeoutSeconds: math.MaxInt64 / int(time.Second)}
	if got := p.StreamIdleTimeout(); got != MaxDuration {
		t.Errorf("StreamIdleTimeout() = %v; want %v", got, MaxDuration)
	}
	// The largest valid value converts exactly.
	r := RateLimit{TimeWindowSeconds: int(MaxDuration / time.Second)}
	if got := r.Window(); got != MaxDuration {
		t.Errorf("Window() = %v; want %v", got, MaxDuration)
	}
}

func TestFieldErrorWithoutField(t *testing.T) {
	if got := (&FieldError{Problem: "p"}).Error(); got != "p" {
		t.Errorf("Error() = %q; want %q", got, "p")
	}
	if got := (&FieldError{Field: "a.b", Problem: "p"}).Error(); got != "a.b: p" {
		t.Errorf("Error() = %q; want %q", got, "a.b: p")
	}
}

func TestAccessControlFields(t *testing.T) {
	const key = "k-premium-0123456789"
	id := KeyID(KeyDigest(key))
	ok := `{"ollamaAddresses":["http://localhost:11434"],"apiKeys":["` + key + `"],
		"rateLimit":{"enabled":true,"maxRequests":5,"timeWindowSeconds":60,"maxConcurrent":2,
			"perKey":{"` + id + `":{"maxRequests":100,"timeWindowSeconds":60}}},
		"security":{"trustedProxies":["10.0.0.0/8"],"allowedOrigins":["https://chat.example.com","*"]},
		"metrics":{"requireKey":true}}`
	c, err := Parse([]byte(ok))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.RateLimit.PerKey[id].MaxRequests != 100 || c.RateLimit.MaxConcurrent != 2 ||
		!c.Metrics.RequireKey || len(c.Security.TrustedProxies) != 1 || len(c.Security.AllowedOrigins) != 2 {
		t.Errorf("fields not loaded: %+v", c)
	}
	// The same override may name the key itself or its digest.
	for _, name := range []string{key, "sha256:" + hexDigest(key)} {
		doc := strings.Replace(ok, id, name, 1)
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("perKey by %s form: %v", name[:6], err)
		}
	}

	bad := []struct{ doc, want string }{
		{strings.Replace(ok, id, "0000000000000000", 1), `rateLimit.perKey["0000000000000000"]: names no key of apiKeys or adminKeys`},
		{strings.Replace(ok, id, "not-a-configured-secret", 1), `rateLimit.perKey[#0]: names no key`},
		{strings.Replace(ok, `"maxRequests":100`, `"maxRequests":0`, 1), `.maxRequests: must be > 0`},
		{strings.Replace(ok, `"maxRequests":100`, `"maxRequests":"x"`, 1), `rateLimit.perKey["` + id + `"].maxRequests: expected`},
		{strings.Replace(ok, `"maxConcurrent":2`, `"maxConcurrent":-1`, 1), `rateLimit.maxConcurrent: must be >= 0`},
		{strings.Replace(ok, `"10.0.0.0/8"`, `"10.0.0.0/99"`, 1), `security.trustedProxies[0]: "10.0.0.0/99" is not an IP address or CIDR`},
		{strings.Replace(ok, `"https://chat.example.com"`, `"chat.example.com/x"`, 1), `security.allowedOrigins[0]:`},
		{strings.Replace(ok, `"maxConcurrent":2`, `"authFailuresPerMinute":0`, 1), `rateLimit.authFailuresPerMinute: must be >= 1`},
	}
	for _, tt := range bad {
		_, err := Parse([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error = %v; want it to contain %q", err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "not-a-configured-secret") {
			t.Errorf("error reveals a key: %v", err)
		}
	}
}

func hexDigest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func TestKeyDigest(t *testing.T) {
	d := sha256.Sum256([]byte("abc"))
	if KeyDigest("abc") != d || KeyDigest("sha256:"+hex.EncodeToString(d[:])) != d {
		t.Error("KeyDigest disagrees for a key and its sha256 form")
	}
	if got := KeyID(d); got != hex.EncodeToString(d[:8]) || len(got) != 16 {
		t.Errorf("KeyID = %q", got)
	}
}

func TestBufferedBodyBudgetDefaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p          Proxy
		total, per int64
	}{
		{"defaults", Proxy{MaxRequestBodyBytes: 64 << 20}, 256 << 20, 128 << 20},
		{"explicit", Proxy{MaxRequestBodyBytes: 10, MaxBufferedBodyBytes: 100, MaxBufferedBodyBytesPerKey: 30}, 100, 30},
		{"per key capped by total", Proxy{MaxRequestBodyBytes: 10, MaxBufferedBodyBytes: 15}, 15, 15},
		{"saturates", Proxy{MaxRequestBodyBytes: math.MaxInt64/2 + 1}, math.MaxInt64, math.MaxInt64},
	} {
		if got := tc.p.BufferedBodyBudget(); got != tc.total {
			t.Errorf("%s: BufferedBodyBudget() = %d; want %d", tc.name, got, tc.total)
		}
		if got := tc.p.BufferedBodyBudgetPerKey(); got != tc.per {
			t.Errorf("%s: BufferedBodyBudgetPerKey() = %d; want %d", tc.name, got, tc.per)
		}
	}
}
