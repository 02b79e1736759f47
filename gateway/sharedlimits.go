package gateway

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/keyusage"
	"github.com/ollamagw/ollama-gateway/limiter"
	"github.com/ollamagw/ollama-gateway/redisstore"
)

// limits is the rate limiter and concurrency cap of the request path. It
// outlives snapshots: without a redis block it is this process's Local
// and Concurrency (their buckets survive reloads); with one, the limits
// shared through Redis, rebuilt when a reload changes the block, with the
// local ones as the fail-open fallback.
type limits struct {
	local     *limiter.Local
	localConc *limiter.Concurrency
	shared    atomic.Pointer[sharedLimits] // nil without Redis
}

var (
	_ limiter.Limiter  = (*limits)(nil)
	_ limiter.Acquirer = (*limits)(nil)
)

// sharedLimits are the limiters and the key usage store of one redis
// block (the usage store is wired into Gateway.usage, see sharedusage.go).
type sharedLimits struct {
	cfg      config.Redis
	password string
	store    *redisstore.Client
	rate     *limiter.Redis
	conc     *limiter.RedisConcurrency
	usage    *keyusage.Redis
	keys     *sharedKeys
	stop     context.CancelFunc
	done     chan struct{}
}

func newLimits() *limits {
	return &limits{local: limiter.NewLocal(limiter.Options{}), localConc: limiter.NewConcurrency(limiter.Options{})}
}

// Allow implements limiter.Limiter.
func (l *limits) Allow(key limiter.ClientKey, r limiter.Rate, now time.Time) limiter.Decision {
	if s := l.shared.Load(); s != nil {
		return s.rate.Allow(key, r, now)
	}
	return l.local.Allow(key, r, now)
}

// Acquire implements limiter.Acquirer.
func (l *limits) Acquire(key limiter.ClientKey, max int) (*limiter.Slot, bool) {
	if s := l.shared.Load(); s != nil {
		return s.conc.Acquire(key, max)
	}
	return l.localConc.Acquire(key, max)
}

// Len returns the number of clients holding a local slot plus the leases
// this replica holds in Redis.
func (l *limits) Len() int {
	n := l.localConc.Len()
	if s := l.shared.Load(); s != nil {
		n += s.conc.Held()
	}
	return n
}

// configureRedis makes the redis block of cfg the one in use, building new
// shared limiters only when the block (or its password) changed. The
// previous ones are closed once their leases are released. Called under
// reloadMu (or from New).
func (g *Gateway) configureRedis(cfg *config.Config) error {
	old := g.conc.shared.Load()
	rc := cfg.Redis
	if rc == nil {
		if old != nil {
			g.conc.shared.Store(nil)
			g.usage.shared.Store(nil)
			g.retireShared(old)
			g.log.Info("redis removed: limits are this replica's own again")
		}
		return nil
	}
	pw := rc.Password()
	if old != nil && reflect.DeepEqual(old.cfg, *rc) && old.password == pw {
		return nil
	}
	store, err := redisstore.New(redisstore.Options{
		URL:       rc.URL,
		Password:  pw,
		KeyPrefix: rc.KeyPrefix,
		Timeout:   rc.Timeout(),
		Logger:    g.log,
		Observe: func(op string, d time.Duration, err error) {
			if m := g.metrics.Load(); m != nil {
				m.RedisCall(op, d, err)
			}
		},
	})
	if err != nil {
		return err
	}
	mode := limiter.FailOpen
	if rc.FailMode == "closed" {
		mode = limiter.FailClosed
	}
	s := &sharedLimits{
		cfg: *rc, password: pw, store: store,
		rate:  limiter.NewRedis(store, mode, g.conc.local),
		conc:  limiter.NewRedisConcurrency(store, mode, g.conc.localConc, rc.Lease()),
		usage: keyusage.NewRedis(store, g.usage.local, mode == limiter.FailClosed),
		keys:  newSharedKeys(store),
		done:  make(chan struct{}),
	}
	// The shared keys before the first request (bounded by the timeout;
	// Run retries when Redis is down).
	_ = s.keys.sync()
	var ctx context.Context
	ctx, s.stop = context.WithCancel(g.ctx)
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		wg.Go(func() { s.keys.Run(ctx) })
		s.conc.Run(ctx)
		wg.Wait()
	}()
	g.conc.shared.Store(s)
	g.usage.shared.Store(s.usage)
	if old != nil {
		g.retireShared(old)
	}
	g.log.Info("redis configured: rate limits, concurrency caps and key usage are shared", "failMode", rc.FailMode, "keyPrefix", rc.KeyPrefix)
	return nil
}

// retireShared stops s once the requests holding its leases are done (it
// keeps renewing them until then), or when the gateway closes.
func (g *Gateway) retireShared(s *sharedLimits) {
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for s.conc.Held() > 0 {
			select {
			case <-g.ctx.Done():
			case <-t.C:
				continue
			}
			break
		}
		s.stop()
		<-s.done
		s.store.Close()
	}()
}

// sharedKeySet returns the keys shared through Redis, nil without a redis
// block.
func (g *Gateway) sharedKeySet() *sharedKeys {
	if s := g.conc.shared.Load(); s != nil {
		return s.keys
	}
	return nil
}

// closeShared stops the shared limiters at Close.
func (g *Gateway) closeShared() {
	g.usage.shared.Store(nil)
	if s := g.conc.shared.Swap(nil); s != nil {
		s.stop()
		<-s.done
		s.store.Close()
	}
}
