package config

import "time"

const (
	defaultConsolePath           = "/ui"
	defaultConsoleSessionMinutes = 480
)

// Console configures the operator console, a web page of the fleet served by
// the gateway itself (see the README's "Console" section). The block is
// optional: a config file without it leaves the console off.
type Console struct {
	// Enabled serves the console. Default false: the console is a
	// browser-facing surface with its own sign-in, opt in to it.
	Enabled bool `json:"enabled"`
	// Path is where the page is served; its data and actions live under
	// it. Default "/ui". It must start with "/", must not be "/",
	// "/healthz", "/readyz" nor the metrics endpoint, and must not be in
	// the gateway's admin namespace (/config) nor in Ollama's (/api, /v1).
	Path string `json:"path"`
	// SessionMinutes is how long a sign-in lasts, in minutes. Default 480
	// (8 hours); must be >= 1.
	SessionMinutes int `json:"sessionMinutes"`
}

// SessionTTL returns how long a console sign-in lasts.
func (c Console) SessionTTL() time.Duration {
	return time.Duration(c.SessionMinutes) * time.Minute
}

// console validates the console block: its path may not shadow another
// endpoint of the gateway's, metrics included.
func (v *validator) console(c *Config) {
	con := c.Console
	v.metricsEndpoint("console.path", con.Path)
	if con.Enabled && c.Metrics.Enabled && (con.Path == c.Metrics.Endpoint || under(c.Metrics.Endpoint, con.Path) || under(con.Path, c.Metrics.Endpoint)) {
		v.add("console.path", "must not overlap metrics.endpoint ("+c.Metrics.Endpoint+")")
	}
	v.duration("console.sessionMinutes", con.SessionMinutes, time.Minute, 1)
}
