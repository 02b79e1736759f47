package proxy_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/proxy"
)

func ExampleProxy() {
	// A stand-in for an Ollama server.
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"version":"0.17.4"}`)
	}))
	defer ollama.Close()

	backend, err := proxy.NewBackend(ollama.URL, proxy.BackendOptions{})
	if err != nil {
		log.Fatal(err)
	}
	pool, err := proxy.NewPool([]*proxy.Backend{backend})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	p := proxy.New(pool, proxy.Options{})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) { p.Handle(ctx, nil, nil) },
		// Model uploads stream through instead of sitting in memory.
		StreamRequestBody: true,
	}
	go srv.Serve(ln)
	defer srv.Shutdown()

	resp, err := http.Get("http://" + ln.Addr().String() + "/api/version")
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"version":"0.17.4"}
}
