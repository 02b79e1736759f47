package redisstore

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/ollamagw/ollama-gateway/internal/redistest"
)

// TestPasswordNeverShown: a wrong password, an unreachable server and a
// bad URL give errors and log lines without the password.
func TestPasswordNeverShown(t *testing.T) {
	srv := redistest.Start(t)
	if got := srv.Command("CONFIG SET requirepass right-pw"); got != "+OK" {
		t.Fatalf("CONFIG SET requirepass: %s", got)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var errs []string
	for _, o := range []Options{
		{URL: "redis://u:wrong-pw@" + srv.Addr()},
		{URL: srv.URL(), Password: "wrong-pw"},
		{URL: "redis://u:wrong-pw@127.0.0.1:1"},
		{URL: "redis://u:wrong-pw@[::1"},
	} {
		o.Logger, o.Timeout = log, 200*time.Millisecond
		c, err := New(o)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_, err = c.Do("rate", func(b rueidis.Builder) rueidis.Completed { return b.Ping().Build() })
		if err == nil {
			t.Errorf("PING with a wrong password succeeded")
		} else {
			errs = append(errs, err.Error())
		}
		c.Close()
	}
	all := strings.Join(errs, "\n") + logs.String()
	if strings.Contains(all, "wrong-pw") {
		t.Errorf("the password shows:\n%s", all)
	}
}

// TestBreaker: after a failure calls fail at once with ErrUnavailable for
// the backoff, then go to Redis again.
func TestBreaker(t *testing.T) {
	srv := redistest.Start(t)
	var ops []string
	c, err := New(Options{URL: srv.URL(), Timeout: 100 * time.Millisecond, Backoff: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Observe: func(op string, _ time.Duration, _ error) { ops = append(ops, op) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ping := func() error {
		_, err := c.Do("ping", func(b rueidis.Builder) rueidis.Completed { return b.Ping().Build() })
		return err
	}
	if err := ping(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := ping(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with Redis down: %v; want ErrUnavailable", err)
	}
	n := len(ops)
	if err := ping(); !errors.Is(err, ErrUnavailable) || len(ops) != n || c.Available() {
		t.Errorf("within the backoff: err %v, calls observed %d -> %d, Available %v; want skipped", err, n, len(ops), c.Available())
	}
	srv.Restart()
	time.Sleep(60 * time.Millisecond) // the backoff
	if err := ping(); err != nil {
		t.Errorf("after the backoff with Redis back: %v", err)
	}
}
