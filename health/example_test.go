package health_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/ollamagw/ollama-gateway/health"
)

// backend is a minimal health.Target; the gateway uses *proxy.Backend.
type backend struct {
	url string
	up  atomic.Bool
}

func (b *backend) Name() string { return b.url }

func (b *backend) SetHealthy(up bool) bool { return b.up.Swap(up) != up }

func ExampleChecker() {
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "Ollama is running")
	}))
	defer ollama.Close()

	b := &backend{url: ollama.URL + "/"}
	c := health.New([]health.Target{b}, health.Options{
		Path:   "/",
		Logger: slog.New(slog.DiscardHandler),
		OnChange: func(name string, up bool) {
			fmt.Println("backend up:", up)
		},
	})
	fmt.Println("ready before any check:", c.Ready())

	// In the gateway: go c.Run(ctx). Here, one synchronous round.
	c.Check(context.Background())
	fmt.Println("ready:", c.Ready())

	// The proxy could not connect: down at once.
	c.ReportFailure(b, fmt.Errorf("dial tcp: connection refused"))
	fmt.Println("ready after a refused connection:", c.Ready())

	// The next successful check brings it back.
	c.Check(context.Background())
	fmt.Println("ready:", c.Ready())

	// Output:
	// ready before any check: false
	// backend up: true
	// ready: true
	// backend up: false
	// ready after a refused connection: false
	// backend up: true
	// ready: true
}
