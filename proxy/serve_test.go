package proxy_test

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// serveBackends serves a Proxy over bs with opts on loopback until the
// test ends, every request finished by fin (nil: none), and returns its
// address.
func serveBackends(t *testing.T, opts proxy.Options, fin proxy.Finisher, bs ...*proxy.Backend) string {
	t.Helper()
	pool, err := proxy.NewPool(bs)
	if err != nil {
		t.Fatal(err)
	}
	p := proxy.New(pool, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { p.Handle(ctx, nil, fin) }, StreamRequestBody: true}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-served
		pool.Close()
	})
	return ln.Addr().String()
}

// backendAt returns a Backend for the host:port addr.
func backendAt(t *testing.T, addr string, opts proxy.BackendOptions) *proxy.Backend {
	t.Helper()
	b, err := proxy.NewBackend("http://"+addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveProxy puts a Proxy over one backend at backendAddr on a loopback
// listener and returns its address.
func serveProxy(t *testing.T, backendAddr string, opts proxy.BackendOptions, fin proxy.Finisher) string {
	t.Helper()
	return serveBackends(t, proxy.Options{}, fin, backendAt(t, backendAddr, opts))
}

// serveProxyOpts is serveProxy with proxy options (and a 5 s first-byte
// timeout).
func serveProxyOpts(t *testing.T, backendAddr string, popts proxy.Options, fin proxy.Finisher) string {
	t.Helper()
	return serveBackends(t, popts, fin, backendAt(t, backendAddr, proxy.BackendOptions{FirstByteTimeout: 5 * time.Second}))
}
