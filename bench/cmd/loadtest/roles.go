package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/gateway"
)

// loadKey is the API key the load sends to every target (only the gateway
// checks it).
const loadKey = "loadtest-key-0123456789abcdefghijklmnopqrstu"

// versionBody is Ollama's /api/version answer: the short request.
const versionBody = `{"version":"0.17.4"}`

// runRole serves one process of the harness and prints its address on
// stdout once it listens.
func runRole(role, listen, upstream string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	switch role {
	case "backend":
		srv := &fasthttp.Server{Handler: backendHandler, Concurrency: 1 << 20}
		return srv.Serve(ln)
	case "gateway":
		cfg := config.Default()
		cfg.OllamaAddresses = []string{"http://" + upstream}
		cfg.APIKeys = []string{loadKey}
		cfg.Logging = false
		cfg.Proxy.MaxConnsPerBackend = 20000
		// Features on, as in production: a rate no client reaches.
		cfg.RateLimit = config.RateLimit{Enabled: true, MaxRequests: 1 << 30, TimeWindowSeconds: 1, AuthFailuresPerMinute: 10}
		gw, err := gateway.New(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		return gw.NewServer().Serve(gateway.KeepAccepting(ln, slog.Default()))
	case "httputil":
		target, _ := url.Parse("http://" + upstream)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 20000}
		rp.FlushInterval = -1 // flush every write: streams pass unbuffered
		return (&http.Server{Handler: rp}).Serve(ln)
	}
	return fmt.Errorf("unknown role %q", role)
}

// backendHandler is a fast fake Ollama: /api/version, and /api/chat
// streaming ?tokens=N lines ?gap apart, each stamped with its write time
// (UnixNano, field "sent"); ?hold=1 sends one line and then holds the
// stream open until the client leaves.
func backendHandler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/api/version":
		ctx.SetContentType("application/json; charset=utf-8")
		ctx.SetBodyString(versionBody)
	case "/api/chat":
		args := ctx.QueryArgs()
		tokens, _ := strconv.Atoi(string(args.Peek("tokens")))
		gap, _ := time.ParseDuration(string(args.Peek("gap")))
		hold := string(args.Peek("hold")) == "1"
		ctx.SetContentType("application/x-ndjson")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			var line []byte
			for i := 0; hold || i < tokens; i++ {
				line = append(line[:0], `{"model":"llama3.2","message":{"role":"assistant","content":"tok"},"sent":`...)
				line = strconv.AppendInt(line, time.Now().UnixNano(), 10)
				if !hold && i == tokens-1 {
					line = append(line, `,"done":true,"done_reason":"stop","eval_count":`...)
					line = strconv.AppendInt(line, int64(tokens), 10)
					line = append(line, "}\n"...)
				} else {
					line = append(line, `,"done":false}`+"\n"...)
				}
				if _, err := w.Write(line); err != nil || w.Flush() != nil {
					return
				}
				if hold {
					time.Sleep(time.Second) // a paused model: a line now and then
					continue
				}
				time.Sleep(gap)
			}
		})
	default:
		ctx.SetStatusCode(404)
	}
}
