package gateway_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/gateway"
)

// Build a gateway in front of one Ollama server, serve it, call it with an
// API key, and shut it down.
func Example() {
	// A stand-in for an Ollama server.
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"version":"0.17.4"}`)
	}))
	defer ollama.Close()

	const key = "example-key-0123456789abcdef"
	cfg := config.Default()
	cfg.OllamaAddresses = []string{ollama.URL}
	cfg.APIKeys = config.Keys(key)
	cfg.Logging = false
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	gw, err := gateway.New(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	srv := gw.NewServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	req, err := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/version", nil)
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, string(body))

	// Stop accepting and let requests in flight finish, then stop the
	// gateway's background work and close its backend connections.
	if err := srv.Shutdown(); err != nil {
		log.Fatal(err)
	}
	gw.Close()
	// Output: 200 {"version":"0.17.4"}
}
