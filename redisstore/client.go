package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/rueidis"
)

// ErrUnavailable is returned, wrapping the cause when there is one, by
// calls made while Redis cannot be reached: the call failed (connection,
// timeout) or the breaker skipped it.
var ErrUnavailable = errors.New("redisstore: redis unavailable")

// Options configure a Client.
type Options struct {
	// URL is "redis://[user[:password]@]host[:port][/db]" or rediss:// for
	// TLS. Required.
	URL string
	// Password, when not empty, replaces the URL's password.
	Password string
	// KeyPrefix starts every key built by Key.
	KeyPrefix string
	// Timeout bounds one call. Default 100ms.
	Timeout time.Duration
	// Backoff is how long calls are skipped after a failure. Default
	// 10 × Timeout, between 100ms and 1s.
	Backoff time.Duration
	// Observe, if set, is called after every call that reached (or tried
	// to reach) Redis with the operation's name, its duration and its
	// error; it must be cheap and safe for concurrent use.
	Observe func(op string, d time.Duration, err error)
	// Logger receives the outage warnings; nil means slog.Default().
	Logger *slog.Logger
	// LogEvery is the least time between two outage warnings. Default 10s.
	LogEvery time.Duration
}

// Client is a connection to Redis. Create it with New; Close it when done.
type Client struct {
	c       rueidis.Client
	prefix  string
	timeout time.Duration
	backoff time.Duration
	observe func(string, time.Duration, error)
	log     *slog.Logger
	every   time.Duration

	downUntil atomic.Int64 // Unix ns before which calls are skipped
	failures  atomic.Int64 // since the last warning
	logMu     sync.Mutex
	lastLog   time.Time // guarded by logMu
}

// New returns a client for opts.URL. It does not wait for Redis: a server
// that is down at start is retried by the calls, after the backoff.
func New(opts Options) (*Client, error) {
	o, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		// The parser's message may quote the URL: never pass it on.
		return nil, errors.New("redisstore: the redis URL cannot be parsed")
	}
	if opts.Password != "" {
		o.Password = opts.Password
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.Backoff <= 0 {
		opts.Backoff = min(max(10*opts.Timeout, 100*time.Millisecond), time.Second)
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// One server, no cluster probing, no client-side cache: the state
	// kept here changes on every call.
	o.ForceSingleClient = true
	o.DisableCache = true
	o.Dialer.Timeout = opts.Timeout
	o.ConnWriteTimeout = max(opts.Timeout, time.Second)
	// Scripts that write are not retried on a network error: a retry
	// could take a token twice.
	o.DisableRetry = true
	c, err := rueidis.NewClient(o)
	if c == nil {
		return nil, fmt.Errorf("redisstore: %w", scrub(err, opts))
	}
	return &Client{
		c: c, prefix: opts.KeyPrefix, timeout: opts.Timeout, backoff: opts.Backoff,
		observe: opts.Observe, log: opts.Logger, every: opts.LogEvery,
	}, nil
}

// Close closes the connections.
func (c *Client) Close() { c.c.Close() }

// Prefix returns the key prefix.
func (c *Client) Prefix() string { return c.prefix }

// Timeout returns the timeout of one call.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Do runs one command built with B, under the timeout and the breaker.
func (c *Client) Do(op string, build func(b rueidis.Builder) rueidis.Completed) (rueidis.RedisMessage, error) {
	if err := c.gate(); err != nil {
		return rueidis.RedisMessage{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	msg, err := c.c.Do(ctx, build(c.c.B())).ToMessage()
	for i := 0; i < staleRetries && stale(ctx, err); i++ {
		msg, err = c.c.Do(ctx, build(c.c.B())).ToMessage()
	}
	return msg, c.done(op, start, err)
}

// Available reports whether calls go to Redis (the breaker is closed, or
// its backoff is over); false after a failure, for the backoff.
func (c *Client) Available() bool { return c.gate() == nil }

// staleRetries bounds the immediate retries of a call that met a dead
// connection: the client may need a few to notice and redial.
const staleRetries = 3

// stale reports whether err is what a connection that died while idle
// (a Redis restart) gives on its first use: the client redials on the
// next call, so one immediate retry, within the same timeout, spares the
// request. A command whose reply was lost could run twice: for the rate
// script that takes a second token, erring on the strict side.
func stale(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if _, ok := rueidis.IsRedisErr(err); ok {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// gate returns ErrUnavailable while the breaker is open.
func (c *Client) gate() error {
	if until := c.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return ErrUnavailable
	}
	return nil
}

// done records a call's outcome and returns its error, an outage wrapped
// as ErrUnavailable.
func (c *Client) done(op string, start time.Time, err error) error {
	d := time.Since(start)
	if c.observe != nil {
		c.observe(op, d, err)
	}
	if err == nil || rueidis.IsRedisNil(err) {
		if c.downUntil.Load() != 0 {
			c.downUntil.Store(0)
			c.log.Info("redis reachable again: shared limits apply")
		}
		return err
	}
	if _, ok := rueidis.IsRedisErr(err); ok {
		return err // the server answered: not an outage
	}
	c.downUntil.Store(time.Now().Add(c.backoff).UnixNano())
	c.failures.Add(1)
	c.warn(op, err)
	return fmt.Errorf("%w: %s", ErrUnavailable, op)
}

// warn logs an outage at most once per interval, with the number of
// failed calls since the last warning.
func (c *Client) warn(op string, err error) {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if now := time.Now(); now.Sub(c.lastLog) >= c.every {
		c.lastLog = now
		c.log.Warn("redis unreachable: failMode applies until it is back",
			"op", op, "failed_calls", c.failures.Swap(0), "err", errKind(err))
	}
}

// errKind describes a failure without quoting anything the server or the
// URL could carry.
func errKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, rueidis.ErrClosing):
		return "client closed"
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "no such host", "i/o timeout", "broken pipe", "connection reset", "EOF"} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	return "connection error"
}

// scrub drops a password from an error message.
func scrub(err error, opts Options) error {
	if err == nil {
		return errors.New("no client")
	}
	msg := err.Error()
	if opts.Password != "" {
		msg = strings.ReplaceAll(msg, opts.Password, "xxxxx")
	}
	if o, perr := rueidis.ParseURL(opts.URL); perr == nil && o.Password != "" {
		msg = strings.ReplaceAll(msg, o.Password, "xxxxx")
	}
	return errors.New(msg)
}
