package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestConsoleValidate: console.path may not shadow another endpoint of the
// gateway's; each problem names the field.
func TestConsoleValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"default, off", func(c *Config) {}, nil},
		{"default, on", func(c *Config) { c.Console.Enabled = true }, nil},
		{"own path", func(c *Config) { c.Console.Enabled, c.Console.Path = true, "/ops/console" }, nil},
		{"relative", func(c *Config) { c.Console.Path = "ui" }, []string{`console.path: must start with "/"`}},
		{"root", func(c *Config) { c.Console.Path = "/" }, []string{`console.path: must not be "/" (that is the proxied Ollama API)`}},
		{"healthz", func(c *Config) { c.Console.Path = "/healthz" }, []string{`console.path: must not be "/healthz" (the gateway serves its liveness check there)`}},
		{"readyz", func(c *Config) { c.Console.Path = "/readyz" }, []string{`console.path: must not be "/readyz" (the gateway serves its readiness check there)`}},
		{"admin", func(c *Config) { c.Console.Path = "/config/ui" }, []string{`console.path: must not be under "/config/" (the gateway's admin endpoints)`}},
		{"ollama", func(c *Config) { c.Console.Path = "/api/ui" }, []string{`console.path: must not be under "/api/" or "/v1/" (Ollama's endpoints)`}},
		{"query", func(c *Config) { c.Console.Path = "/ui?x" }, []string{"console.path: must be a plain path without query or fragment"}},
		{"metrics", func(c *Config) { c.Console.Enabled, c.Console.Path = true, "/metrics" },
			[]string{"console.path: must not overlap metrics.endpoint (/metrics)"}},
		{"metrics under it", func(c *Config) { c.Console.Enabled, c.Metrics.Endpoint = true, "/ui/metrics" },
			[]string{"console.path: must not overlap metrics.endpoint (/ui/metrics)"}},
		{"metrics off", func(c *Config) { c.Console.Enabled, c.Console.Path, c.Metrics.Enabled = true, "/metrics", false }, nil},
		{"console off", func(c *Config) { c.Metrics.Endpoint = "/ui" }, nil},
		{"session", func(c *Config) { c.Console.SessionMinutes = 0 }, []string{"console.sessionMinutes: must be >= 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.OllamaAddresses = []string{"http://localhost:11434"}
			tt.mutate(&c)
			if got := problems(c.Validate()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestConsoleDefaults: a file without the block leaves the console off at
// /ui; an empty path gets the default.
func TestConsoleDefaults(t *testing.T) {
	for _, tt := range []struct{ doc, wantPath string }{
		{`{"ollamaAddresses":["http://localhost:11434"]}`, "/ui"},
		{`{"ollamaAddresses":["http://localhost:11434"],"console":{"enabled":true,"path":""}}`, "/ui"},
		{`{"ollamaAddresses":["http://localhost:11434"],"console":{"enabled":true,"path":"/ops"}}`, "/ops"},
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%s) = %v", tt.doc, err)
		}
		if c.Console.Path != tt.wantPath || c.Console.SessionMinutes != 480 {
			t.Errorf("Load(%s).Console = %+v; want path %q, 480 minutes", tt.doc, c.Console, tt.wantPath)
		}
	}
}
