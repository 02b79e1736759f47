package gateway

import (
	"strconv"
	"sync"
	"time"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// maxConsoleErrors is how many recent backend errors the console keeps.
const maxConsoleErrors = 20

// trafficStep is the console's traffic resolution, in seconds.
const trafficStep = 10

// console is what the operator console keeps between requests: its
// sessions, the traffic ring, and notes of events the snapshot does not
// hold (when each backend's health last changed, recent backend errors,
// the last reload). It outlives snapshots and is safe for concurrent use.
type console struct {
	sessions sessions
	traffic  traffic

	mu     sync.Mutex
	since  map[string]healthNote    // by backend name
	check  map[string]time.Duration // the last health check's duration, by backend name
	errs   []backendErrorNote       // a ring of maxConsoleErrors, oldest first once full
	next   int
	reload *reloadNote
}

type healthNote struct {
	up    bool
	since time.Time
}

// backendErrorNote is one failed attempt to reach a backend.
type backendErrorNote struct {
	At      int64  `json:"at"` // Unix milliseconds
	Backend string `json:"backend"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// reloadNote is the result of the last configuration reload.
type reloadNote struct {
	At     int64         `json:"at"` // Unix milliseconds
	OK     bool          `json:"ok"`
	Error  string        `json:"error,omitempty"`
	Result *ReloadResult `json:"result,omitempty"`
}

func newConsole() *console {
	return &console{since: map[string]healthNote{}, check: map[string]time.Duration{}}
}

// healthChanged notes a backend's health change (health.Options.OnChange).
func (c *console) healthChanged(name string, up bool) {
	c.mu.Lock()
	c.since[name] = healthNote{up: up, since: time.Now()}
	c.mu.Unlock()
}

// healthChecked notes an active health check of a backend: how long it
// took and, when it failed, why, among the recent backend errors
// (health.Options.OnCheck).
func (c *console) healthChecked(name string, took time.Duration, reason string) {
	c.mu.Lock()
	c.check[name] = took
	c.mu.Unlock()
	if reason != "" {
		c.noteError(name, "health check", reason)
	}
}

// backendError notes a failed attempt to reach a backend.
func (c *console) backendError(name, kind string, err error) {
	c.noteError(name, kind, err.Error())
}

func (c *console) noteError(name, kind, msg string) {
	n := backendErrorNote{At: time.Now().UnixMilli(), Backend: name, Kind: kind, Message: msg}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < maxConsoleErrors {
		c.errs = append(c.errs, n)
		return
	}
	c.errs[c.next] = n
	c.next = (c.next + 1) % maxConsoleErrors
}

// reloaded notes the outcome of a reload.
func (c *console) reloaded(res *ReloadResult, err error) {
	n := &reloadNote{At: time.Now().UnixMilli(), OK: err == nil, Result: res}
	if err != nil {
		n.Error = err.Error()
	}
	c.mu.Lock()
	c.reload = n
	c.mu.Unlock()
}

// consoleState is the console's data, as GET <console.path>/state answers
// it. A field whose value is not known yet (a backend's loaded models
// before its first /api/ps, its last check before the first one) is null.
type consoleState struct {
	Now      int64              `json:"now"` // Unix milliseconds
	KeyID    string             `json:"keyId"`
	CSRF     string             `json:"csrf"`
	Backends []consoleBackend   `json:"backends"`
	Traffic  consoleTraffic     `json:"traffic"`
	Keys     []consoleKey       `json:"keys"`
	Reload   *reloadNote        `json:"reload"`
	Errors   []backendErrorNote `json:"errors"`
	// Queued counts the requests waiting in the gateway's queue for a
	// backend with room (fleet scheduling).
	Queued int `json:"queued"`
	// HealthIntervalSeconds is the active health checks' interval.
	HealthIntervalSeconds float64 `json:"healthIntervalSeconds"`
}

type consoleBackend struct {
	Name     string `json:"name"`
	Health   string `json:"health"` // "up", "down" or "unknown"
	Since    int64  `json:"since"`  // Unix milliseconds of the last change; 0 if none seen
	InFlight int64  `json:"inFlight"`
	// Cap is the backend's cap on requests in flight
	// (ollamaAddresses[i].maxConcurrent), else proxy.maxConnsPerBackend.
	Cap    int           `json:"cap"`
	CapSet bool          `json:"capSet"` // whether Cap is maxConcurrent
	Models []string      `json:"models"` // nil when no list was fetched yet
	Loaded []loadedModel `json:"loaded"` // nil when not fetched (one backend)
	// CheckMs is how long the last active health check took, in
	// milliseconds, failed or not; null before the first.
	CheckMs *float64 `json:"checkMs"`
}

type loadedModel struct {
	Name      string `json:"name"`
	ExpiresAt int64  `json:"expiresAt"` // Unix milliseconds; 0 if not listed
	VRAMBytes int64  `json:"vramBytes"`
}

type consoleTraffic struct {
	StepSeconds int            `json:"stepSeconds"`
	Points      []trafficPoint `json:"points"`
	// Models are the 15 minutes' requests by the model their answer
	// named (the first trafficModels names, then "other"), most first.
	Models []modelTraffic `json:"models"`
}

type consoleKey struct {
	ID    string `json:"id"`
	Name  string `json:"name"` // the entry's name, "" if none
	Admin bool   `json:"admin"`
	// RateLimit is the key's limit, e.g. "60 / 1m0s"; "" when off.
	RateLimit string `json:"rateLimit"`
	// Models are the key's model patterns, nil for every model.
	Models []string `json:"models"`
	// Tokens is the key's token budget, "" if none.
	Tokens string `json:"tokens"`
	// ExpiresAt is when the key expires, Unix milliseconds; 0 never.
	ExpiresAt int64 `json:"expiresAt"`
	Expired   bool  `json:"expired"`
	// Requests and tokens since the gateway started, as GET /config/keys
	// reports them.
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	// Window is the usage in the key's current token budget window, null
	// when the key has no budget.
	Window *WindowUsage `json:"window"`
	// LastUsed is when the key's last request ended, Unix milliseconds; 0
	// never.
	LastUsed int64 `json:"lastUsed"`
}

// consoleState gathers the console's data from st and the notes.
func (g *Gateway) consoleState(st *Snapshot, se *consoleSession, now time.Time) *consoleState {
	c := g.console
	s := &consoleState{
		Now:   now.UnixMilli(),
		KeyID: se.keyID,
		CSRF:  se.csrf,
		Traffic: consoleTraffic{StepSeconds: trafficStep, Points: c.traffic.series(now, trafficStep),
			Models: c.traffic.byModel(now)},
		HealthIntervalSeconds: st.Config.HealthCheckInterval().Seconds(),
		Queued:                st.Proxy.QueueLen(),
	}
	c.mu.Lock()
	for _, b := range st.Proxy.Pool().Backends() {
		cb := consoleBackend{
			Name:     b.Name(),
			InFlight: b.InFlight(),
			Cap:      st.Config.Proxy.MaxConnsPerBackend,
		}
		if n := b.Capacity().MaxConcurrent; n > 0 {
			cb.Cap, cb.CapSet = n, true
		}
		if l := b.Loaded(); l != nil {
			cb.Loaded = []loadedModel{}
			for _, e := range l.Entries() {
				lm := loadedModel{Name: e.Name, VRAMBytes: e.SizeVRAM}
				if !e.ExpiresAt.IsZero() {
					lm.ExpiresAt = e.ExpiresAt.UnixMilli()
				}
				cb.Loaded = append(cb.Loaded, lm)
			}
		}
		switch b.Health() {
		case proxy.HealthUp:
			cb.Health = "up"
		case proxy.HealthDown:
			cb.Health = "down"
		default:
			cb.Health = "unknown"
		}
		if n, ok := c.since[b.Name()]; ok {
			cb.Since = n.since.UnixMilli()
		}
		if d, ok := c.check[b.Name()]; ok {
			ms := float64(d.Microseconds()) / 1000
			cb.CheckMs = &ms
		}
		if m := b.Models(); m != nil {
			cb.Models = []string{}
			for _, e := range m.Entries() {
				cb.Models = append(cb.Models, e.Name)
			}
		}
		s.Backends = append(s.Backends, cb)
	}
	s.Reload = c.reload
	s.Errors = append(s.Errors, c.errs[c.next:]...)
	s.Errors = append(s.Errors, c.errs[:c.next]...)
	c.mu.Unlock()

	// The keys of config.json, then those shared through Redis.
	for _, k := range append(st.policy.keys.All(), g.sharedKeySet().All()...) {
		u := g.keyUsage(k, now)
		ck := consoleKey{ID: k.Name, Name: k.Label, Admin: k.Admin, Expired: k.Expired(now),
			Requests: u.Requests, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, Window: u.Window}
		if u.LastUsed != nil {
			ck.LastUsed = u.LastUsed.UnixMilli()
		}
		if r, on := st.policy.rateFor(k); on {
			ck.RateLimit = formatRate(r.Limit, r.Window)
		}
		if k.Models != nil {
			ck.Models = k.Policy.Models
		}
		if k.TokenMax > 0 {
			ck.Tokens = strconv.FormatInt(k.TokenMax, 10) + " tokens / " + k.TokenWindow.String()
		}
		if !k.Expires.IsZero() {
			ck.ExpiresAt = k.Expires.UnixMilli()
		}
		s.Keys = append(s.Keys, ck)
	}
	return s
}

func formatRate(n int, w time.Duration) string {
	return strconv.Itoa(n) + " / " + w.String()
}
