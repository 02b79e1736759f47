package config

import (
	"os"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, s := range []string{
		`{"ollamaAddresses":["http://localhost:11434"]}`,
		`{"ollamaAddresses":[" http://a:1/ ","https://b"],"proxy":{"maxConnsPerBackend":1e3}}`,
		`{"ollamaAddresses":["http://u:p@h:0/?q#f"],"gatewayAddress":"",` +
			`"apiKeys":["sha256:00"],"adminKeys":["a b"],"security":{"allowIps":["::1/129"]},` +
			`"metrics":{"endpoint":"/api/x","namespace":"9"},"rateLimit":{"enabled":true,"maxRequests":-1}}`,
		`{"OLLAMAADDRESSES":["http://x"],"rateLimit":{"maxRequest":1},"logging":null}`,
		"\xef\xbb\xbf{\"ollamaAddresses\":[\"http://[::1]:11434\"]} x",
		`{"ollamaAddresses":["http://x"],"apiKeys":["k",{"publicKey":"ssh-ed25519 ` +
			`AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS a@b","name":"a"}],` +
			`"adminKeys":[{"publicKey":"ssh-rsa AAAA"},{"PUBLICKEY":null,"x":1},7]}`,
		`[[[[]]]]`,
		`{"ollamaAddresses":["http://x"],"redis":{"url":"rediss://u:p@[::1]:6380/15","passwordEnv":"HOME",` +
			`"keyPrefix":"","failMode":"closed","timeoutMilliseconds":60001,"leaseMilliseconds":null}}`,
		`{"ollamaAddresses":["http://x"],"redis":null}`,
		``,
		// ollamaAddresses objects, mixed with strings.
		`{"ollamaAddresses":["http://a",{"url":"http://b","maxConcurrent":4},{"URL":7,"maxConcurrent":1e400},{},null,[1]],` +
			`"loadBalancer":{"strategy":"least-connections","queueSize":-1,"queueTimeoutSeconds":9223372036854775807}}`,
		`{"ollamaAddresses":{"url":"http://a"}}`,
		`{"ollamaAddresses":[{"url":"http://a","maxConcurrent":9223372036854775808}]}`,
		`{"ollamaAddresses":[{"url":"http://a","numParallel":2,"maxLoadedModels":0},{"url":"http://b","NumParallel":-1e300,"maxLoadedModels":"3"}]}`,
		// Extreme numbers for every field that becomes a duration.
		`{"ollamaAddresses":["http://x"],"rateLimit":{"enabled":true,"maxRequests":1,"timeWindowSeconds":9223372037}}`,
		`{"ollamaAddresses":["http://x"],"apiKeys":["k"],"rateLimit":{"enabled":true,"maxRequests":9223372036854775807,` +
			`"timeWindowSeconds":31536000,"perKey":{"k":{"maxRequests":1,"timeWindowSeconds":9223372036854775807}}}}`,
		`{"ollamaAddresses":["http://x"],"loadBalancer":{"healthCheckIntervalInSeconds":9223372036854775807,` +
			`"healthCheckTimeoutInMilliseconds":9223372036855}}`,
		`{"ollamaAddresses":["http://x"],"proxy":{"connWaitTimeoutSeconds":31536000,"firstByteTimeoutSeconds":31536001,` +
			`"streamIdleTimeoutSeconds":-9223372036854775808,"headerReadTimeoutSeconds":18446744073709551616,` +
			`"clientIdleTimeoutSeconds":1e308,"shutdownTimeoutSeconds":9223372037}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			_ = err.Error()
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse succeeded but Validate() = %v", err)
		}
		if len(c.OllamaAddresses) < 1 {
			t.Fatalf("Parse succeeded with no Ollama address")
		}
		checkDurations(t, c)
	})
}

// checkDurations checks that every duration of a valid config is what its
// number says: within (0, MaxDuration], or 0 where 0 is allowed, and never
// wrapped around.
func checkDurations(t *testing.T, c *Config) {
	t.Helper()
	type dur struct {
		field  string
		n      int
		unit   time.Duration
		got    time.Duration
		zeroOK bool
	}
	p := c.Proxy
	ds := []dur{
		{"loadBalancer.healthCheckIntervalInSeconds", c.LoadBalancer.HealthCheckIntervalInSeconds, time.Second, c.HealthCheckInterval(), false},
		{"loadBalancer.healthCheckTimeoutInMilliseconds", c.LoadBalancer.HealthCheckTimeoutInMilliseconds, time.Millisecond, c.HealthCheckTimeout(), false},
		{"rateLimit.timeWindowSeconds", c.RateLimit.TimeWindowSeconds, time.Second, c.RateLimit.Window(), !c.RateLimit.Enabled},
		{"proxy.connWaitTimeoutSeconds", p.ConnWaitTimeoutSeconds, time.Second, p.ConnWaitTimeout(), false},
		{"proxy.firstByteTimeoutSeconds", p.FirstByteTimeoutSeconds, time.Second, p.FirstByteTimeout(), false},
		{"proxy.streamIdleTimeoutSeconds", p.StreamIdleTimeoutSeconds, time.Second, p.StreamIdleTimeout(), false},
		{"proxy.headerReadTimeoutSeconds", p.HeaderReadTimeoutSeconds, time.Second, p.HeaderReadTimeout(), false},
		{"proxy.clientIdleTimeoutSeconds", p.ClientIdleTimeoutSeconds, time.Second, p.ClientIdleTimeout(), false},
		{"proxy.shutdownTimeoutSeconds", p.ShutdownTimeoutSeconds, time.Second, p.ShutdownTimeout(), true},
	}
	for name, r := range c.RateLimit.PerKey {
		ds = append(ds, dur{"rateLimit.perKey[" + name + "].timeWindowSeconds", r.TimeWindowSeconds, time.Second, r.Window(), false})
	}
	for _, d := range ds {
		if d.got < 0 || d.got > MaxDuration || (d.got == 0 && !d.zeroOK) {
			t.Errorf("%s = %d gives %v; want a duration in (0, %v]", d.field, d.n, d.got, MaxDuration)
		}
		if int64(d.got/d.unit) != int64(d.n) || d.got%d.unit != 0 {
			t.Errorf("%s = %d gives %v: not %d units of %v", d.field, d.n, d.got, d.n, d.unit)
		}
	}
}
