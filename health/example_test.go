package health_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/ollamagw/ollama-gateway/health"
)

// backend is a minimal health.Target; the gateway uses *proxy.Backend.
type backend struct {
	url     string
	up      atomic.Bool
	checked atomic.Bool
}

func (b *backend) Name() string { return b.url }

// Down reports whether the backend is known down (a new one is not).
func (b *backend) Down() bool { return b.checked.Load() && !b.up.Load() }

func (b *backend) SetHealthy(up bool) bool {
	b.checked.Store(true)
	return b.up.Swap(up) != up
}

func ExampleChecker() {
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "Ollama is running")
	}))
	defer ollama.Close()

	b := &backend{url: ollama.URL + "/"}
	changes := make(chan bool, 4)
	c := health.New([]health.Target{b}, health.Options{
		Interval: time.Second,
		Path:     "/",
		Logger:   slog.New(slog.DiscardHandler),
		OnChange: func(name string, up bool) { changes <- up },
	})
	fmt.Println("down before any check:", b.Down())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	fmt.Println("backend up:", <-changes)

	// The proxy could not connect: down at once.
	c.ReportFailure(b, errors.New("dial tcp: connection refused"))
	fmt.Println("backend up:", <-changes)

	// The next check, an Interval later, brings it back.
	fmt.Println("backend up:", <-changes)
	cancel()
	<-done

	// Output:
	// down before any check: false
	// backend up: true
	// backend up: false
	// backend up: true
}
