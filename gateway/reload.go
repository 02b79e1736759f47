package gateway

import (
	"context"
	"errors"
	"os"
	"slices"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/health"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// ErrNoConfigFile is returned by Reload and new-key generation when the
// gateway was built without a configuration file (WithConfigPath).
var ErrNoConfigFile = errors.New("gateway: no configuration file to reload or write")

// Option configures New.
type Option func(*Gateway)

// WithConfigPath names the configuration file that Reload reads and new
// keys are written to.
func WithConfigPath(path string) Option { return func(g *Gateway) { g.path = path } }

// ReloadResult says what a reload changed. It never holds a key.
type ReloadResult struct {
	// Backends lists the backends added, removed and kept (whose
	// connection pools and health survive the reload).
	Backends struct {
		Added   []string `json:"added"`
		Removed []string `json:"removed"`
		Kept    []string `json:"kept"`
	} `json:"backends"`
	// APIKeys is the number of keys now accepted, admin keys included.
	APIKeys int `json:"apiKeys"`
	// RateLimit is the rate limit now applied.
	RateLimit struct {
		Enabled           bool `json:"enabled"`
		MaxRequests       int  `json:"maxRequests"`
		TimeWindowSeconds int  `json:"timeWindowSeconds"`
		MaxConcurrent     int  `json:"maxConcurrent"`
		PerKey            int  `json:"perKeyOverrides"`
	} `json:"rateLimit"`
	// Logging and Metrics are the settings now applied.
	Logging bool `json:"logging"`
	Metrics struct {
		Enabled   bool   `json:"enabled"`
		Endpoint  string `json:"endpoint"`
		Namespace string `json:"namespace"`
	} `json:"metrics"`
	// RestartRequired names changed fields that only take effect when the
	// gateway restarts (the listening address, server timeouts).
	RestartRequired []string `json:"restartRequired,omitempty"`
}

// Reload reads the configuration file again and applies it. An invalid
// file changes nothing: the error names the field and the problem.
// Reloads (and key generation) are serialized.
func (g *Gateway) Reload() (res *ReloadResult, err error) {
	defer func() { g.console.reloaded(res, err) }() // the console shows the last one
	if g.path == "" {
		return nil, ErrNoConfigFile
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	cfg, err := config.Load(g.path)
	if err != nil {
		g.countReload(false)
		g.log.Warn("config reload refused: the running configuration stays", "err", err)
		return nil, err
	}
	return g.applyLocked(cfg)
}

// apply makes cfg (valid) the running configuration, as a reload does.
func (g *Gateway) apply(cfg *config.Config) (*ReloadResult, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.applyLocked(cfg)
}

func (g *Gateway) countReload(ok bool) {
	if m := g.metrics.Load(); m != nil {
		m.Reload(ok)
	}
}

// applyLocked builds the new snapshot off to the side and swaps it in.
// Requests in flight finish on the snapshot they started with.
func (g *Gateway) applyLocked(cfg *config.Config) (*ReloadResult, error) {
	if g.ctx.Err() != nil {
		return nil, errors.New("gateway: closed")
	}
	old := g.state.Load()
	st, err := g.newStateReusing(cfg, old)
	if err != nil {
		g.countReload(false)
		return nil, err
	}
	if err := g.configureRedis(cfg); err != nil {
		g.countReload(false)
		return nil, err
	}
	res := describe(old, st)
	g.state.Store(st)
	g.swapMetrics(old.Config, cfg)
	if !slices.Equal(old.Proxy.Pool().Backends(), st.Proxy.Pool().Backends()) || old.Config.LoadBalancer != cfg.LoadBalancer {
		// Kept backends keep their state; only the checker restarts.
		g.startHealth(st)
	}
	for _, b := range old.Proxy.Pool().Backends() {
		if !slices.Contains(st.Proxy.Pool().Backends(), b) {
			g.retire(b)
		}
	}
	g.countReload(true)
	g.log.Info("config reloaded", "added", res.Backends.Added, "removed", res.Backends.Removed,
		"apiKeys", res.APIKeys, "logging", res.Logging)
	if len(res.RestartRequired) > 0 {
		g.log.Warn("config changes need a restart to take effect", "fields", res.RestartRequired)
	}
	return res, nil
}

// newStateReusing builds a snapshot of cfg that keeps old's Backend (its
// connection pool and health) for every address whose connection settings
// did not change.
func (g *Gateway) newStateReusing(cfg *config.Config, old *Snapshot) (*Snapshot, error) {
	reuse := map[string]*proxy.Backend{}
	if old != nil && backendOptions(old.Config) == backendOptions(cfg) {
		for _, b := range old.Proxy.Pool().Backends() {
			reuse[b.Name()] = b
		}
	}
	return g.buildSnapshot(cfg, reuse)
}

// describe reports what changes from old to st.
func describe(old, st *Snapshot) *ReloadResult {
	res := &ReloadResult{}
	oldB, newB := old.Proxy.Pool().Backends(), st.Proxy.Pool().Backends()
	for _, b := range newB {
		if slices.Contains(oldB, b) {
			res.Backends.Kept = append(res.Backends.Kept, b.Name())
		} else {
			res.Backends.Added = append(res.Backends.Added, b.Name())
		}
	}
	for _, b := range oldB {
		if !slices.Contains(newB, b) {
			res.Backends.Removed = append(res.Backends.Removed, b.Name())
		}
	}
	c := st.Config
	res.APIKeys = st.policy.keyCount()
	res.RateLimit.Enabled = c.RateLimit.Enabled
	res.RateLimit.MaxRequests = c.RateLimit.MaxRequests
	res.RateLimit.TimeWindowSeconds = c.RateLimit.TimeWindowSeconds
	res.RateLimit.MaxConcurrent = c.RateLimit.MaxConcurrent
	res.RateLimit.PerKey = len(c.RateLimit.PerKey)
	res.Logging = c.Logging
	res.Metrics.Enabled, res.Metrics.Endpoint, res.Metrics.Namespace = c.Metrics.Enabled, c.Metrics.Endpoint, c.Metrics.Namespace
	o := old.Config
	if o.GatewayAddress != c.GatewayAddress {
		res.RestartRequired = append(res.RestartRequired, "gatewayAddress")
	}
	if o.Proxy.HeaderReadTimeoutSeconds != c.Proxy.HeaderReadTimeoutSeconds {
		res.RestartRequired = append(res.RestartRequired, "proxy.headerReadTimeoutSeconds")
	}
	if o.Proxy.ClientIdleTimeoutSeconds != c.Proxy.ClientIdleTimeoutSeconds {
		res.RestartRequired = append(res.RestartRequired, "proxy.clientIdleTimeoutSeconds")
	}
	return res
}

// backendOptions are the settings baked into a Backend's connection pool.
func backendOptions(c *config.Config) proxy.BackendOptions {
	return proxy.BackendOptions{
		MaxConns:         c.Proxy.MaxConnsPerBackend,
		ConnWaitTimeout:  c.Proxy.ConnWaitTimeout(),
		FirstByteTimeout: c.Proxy.FirstByteTimeout(),
		IdleTimeout:      c.Proxy.StreamIdleTimeout(),
	}
}

// swapMetrics replaces the metrics when they are turned on or off or their
// namespace changes (counters then start from zero under the new names).
func (g *Gateway) swapMetrics(old, cfg *config.Config) {
	switch {
	case !cfg.Metrics.Enabled:
		g.metrics.Store(nil)
	case !old.Metrics.Enabled || old.Metrics.Namespace != cfg.Metrics.Namespace || g.metrics.Load() == nil:
		g.metrics.Store(g.newMetrics(cfg.Metrics.Namespace))
	}
}

// startHealth (re)starts the active health checks for the backends of st,
// stopping those of the previous snapshot.
func (g *Gateway) startHealth(st *Snapshot) {
	if g.healthStop != nil {
		g.healthStop()
		<-g.healthDone
	}
	lb := st.Config.LoadBalancer
	backends := st.Proxy.Pool().Backends()
	targets := make([]health.Target, len(backends))
	for i, b := range backends {
		targets[i] = b
	}
	c := health.New(targets, health.Options{
		Interval:      st.Config.HealthCheckInterval(),
		Timeout:       st.Config.HealthCheckTimeout(),
		Path:          lb.HealthCheckEndpoint,
		FailThreshold: lb.FailThreshold,
		RiseThreshold: lb.RiseThreshold,
		Logger:        g.log,
		// Model lists and loaded models serve model-aware routing and
		// fleet scheduling, which need a choice.
		Models:   len(backends) > 1,
		Loaded:   len(backends) > 1,
		OnChange: g.console.healthChanged,
		OnCheck:  g.console.healthChecked,
	})
	g.checker.Store(c)
	ctx, stop := context.WithCancel(g.ctx)
	done := make(chan struct{})
	g.healthStop, g.healthDone = stop, done
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
}

// retire closes a removed backend's connections once its requests in
// flight (streams included) have finished, or when the gateway closes.
func (g *Gateway) retire(b *proxy.Backend) {
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for b.InFlight() > 0 {
			select {
			case <-g.ctx.Done():
				b.Close()
				return
			case <-t.C:
			}
		}
		b.Close()
	}()
}

// WatchConfig reloads when the configuration file changes, until ctx is
// done. It polls the file's identity and modification time every interval
// (default 1 s), so editors' and Kubernetes ConfigMaps' replace-by-rename
// is seen like an in-place write; a change is applied once the file has
// been stable for one more interval (debounce).
//
// A reload never undoes a key the gateway saved itself: reloads and key
// edits are serialized (reloadMu), each key edit applies the content it
// wrote under the file's lock, and every writer that locks re-reads the
// file first, so any file a later reload reads holds the gateway's keys.
// Only a writer that takes no lock (an editor) can drop them.
func (g *Gateway) WatchConfig(ctx context.Context, interval time.Duration) {
	if g.path == "" {
		return
	}
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	// Compare with the file as it was when the gateway was built, so a
	// change made before the watch started is not missed.
	last := g.stamp
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := statOf(g.path)
		switch {
		case cur != last:
			last, pending = cur, true // changed: wait until stable
		case pending:
			pending = false
			if cur.missing {
				continue
			}
			// Reload logs a refusal itself.
			_, _ = g.Reload()
		}
	}
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	missing bool
	mod     time.Time
	size    int64
	ino     uint64
}

func statOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{missing: true}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ino: inode(fi)}
}
