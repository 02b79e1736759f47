package gateway

import (
	"sync/atomic"
	"time"

	"github.com/ollamagw/ollama-gateway/keyusage"
)

// usageStore is the per-key usage of the request path and GET
// /config/keys. It outlives snapshots: without a redis block it is this
// process's Memory; with one, the counters shared through Redis, with the
// Memory counting while Redis cannot be reached.
type usageStore struct {
	local  *keyusage.Memory
	shared atomic.Pointer[keyusage.Redis] // nil without Redis
}

var _ keyusage.Store = (*usageStore)(nil)

func newUsageStore() *usageStore { return &usageStore{local: new(keyusage.Memory)} }

// Charge implements keyusage.Store.
func (u *usageStore) Charge(id [16]byte, window time.Duration, prompt, completion int64, now time.Time) {
	if s := u.shared.Load(); s != nil {
		s.Charge(id, window, prompt, completion, now)
		return
	}
	u.local.Charge(id, window, prompt, completion, now)
}

// WindowTokens implements keyusage.Store.
func (u *usageStore) WindowTokens(id [16]byte, window time.Duration, now time.Time) (int64, time.Time) {
	if s := u.shared.Load(); s != nil {
		return s.WindowTokens(id, window, now)
	}
	return u.local.WindowTokens(id, window, now)
}

// Budget is WindowTokens with the error of a shared store that cannot be
// reached in closed mode (keyusage.ErrUnavailable).
func (u *usageStore) Budget(id [16]byte, window time.Duration, now time.Time) (int64, time.Time, error) {
	if s := u.shared.Load(); s != nil {
		return s.Budget(id, window, now)
	}
	tokens, ends := u.local.WindowTokens(id, window, now)
	return tokens, ends, nil
}

// Usage implements keyusage.Store.
func (u *usageStore) Usage(id [16]byte, window time.Duration, now time.Time) keyusage.Usage {
	if s := u.shared.Load(); s != nil {
		return s.Usage(id, window, now)
	}
	return u.local.Usage(id, window, now)
}
