package bench

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/gateway"
)

// chatAnswer is a non-streamed /api/chat answer of Ollama.
const chatAnswer = `{"model":"llama3.2","created_at":"2026-11-24T10:00:00Z","message":{"role":"assistant","content":"The sky is blue."},"done":true,"done_reason":"stop"}`

// startChatBackend runs a fasthttp server that answers like an Ollama with
// llama3.2: its health check, a non-streamed chat and, if tags, its model
// list (else 404, and its models stay unknown to the gateway).
func startChatBackend(b *testing.B, tags bool) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/api/tags":
			if !tags {
				ctx.SetStatusCode(fasthttp.StatusNotFound)
				return
			}
			ctx.SetContentType("application/json; charset=utf-8")
			ctx.SetBodyString(`{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest"}]}`)
		case "/api/chat":
			ctx.SetContentType("application/json; charset=utf-8")
			ctx.SetBodyString(chatAnswer)
		default:
			ctx.SetBodyString("Ollama is running")
		}
	}}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Shutdown(); ln.Close() })
	return ln.Addr().String()
}

// startModelGateway runs the gateway in front of backends, as
// startGateway does, and if lists, waits until it knows every backend's
// model list.
func startModelGateway(b *testing.B, lists bool, backends ...string) string {
	b.Helper()
	cfg := benchConfig(backends...)
	var ready func(*gateway.Gateway)
	if lists {
		ready = func(gw *gateway.Gateway) {
			deadline := time.Now().Add(10 * time.Second)
			for _, be := range gw.Snapshot().Proxy.Pool().Backends() {
				for be.Models() == nil {
					if time.Now().After(deadline) {
						b.Fatal("model lists not fetched within 10s")
					}
					time.Sleep(5 * time.Millisecond)
				}
			}

		}
	}
	return serveGateway(b, &cfg, ready)
}

// chatBody is an /api/chat body of about size bytes for llama3.2, the
// model last (the whole body is scanned).
func chatBody(size int) []byte {
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	var msgs []message
	for n := 0; n < size-120; n += 140 {
		msgs = append(msgs, message{"user", "Why is the sky blue? Explain it in a \"short\" paragraph,\nthen in one sentence; no lists, no headings."})
	}
	m, _ := json.Marshal(msgs)
	return []byte(`{"messages":` + string(m) + `,"stream":false,"model":"llama3.2"}`)
}

// warm posts body to /api/chat of addr a few thousand times, from as many
// clients as the benchmark uses.
func warm(b *testing.B, addr string, body []byte) {
	b.Helper()
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: 1024}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/api/chat")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.Set("Authorization", "Bearer "+benchKey)
	req.SetBody(body)
	for range 2000 {
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("warm-up: %v %d", err, resp.StatusCode())
		}
	}
}

// driveChat posts body to /api/chat of addr from parallel clients and
// checks every answer.
func driveChat(b *testing.B, addr string, body []byte) {
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: 1024}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + "/api/chat")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.Set("Authorization", "Bearer "+benchKey)
		req.Header.SetContentType("application/json")
		req.SetBody(body)
		for pb.Next() {
			if err := hc.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 || string(resp.Body()) != chatAnswer {
				b.Errorf("answer %d %q", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
}

// BenchmarkProxyModel posts chats through the gateway in front of one
// backend (no model routing), of two whose model lists are unknown (no
// routing either) and of two that list the model (the model is read from
// every body and a backend with it picked): the difference between the
// last two is the cost of model-aware routing, allocations included.
func BenchmarkProxyModel(b *testing.B) {
	one, two := startChatBackend(b, true), startChatBackend(b, true)
	gw1 := startModelGateway(b, false, one)
	gw2 := startModelGateway(b, true, one, two)
	gw2u := startModelGateway(b, false, startChatBackend(b, false), startChatBackend(b, false))
	sizes := []int{200, 100 << 10}
	// fasthttp's buffer pools size themselves on the first requests:
	// warm them all first, so no variant pays for it.
	for _, gw := range []string{gw1, gw2u, gw2} {
		for _, size := range sizes {
			warm(b, gw, chatBody(size))
		}
	}
	for _, size := range sizes {
		body := chatBody(size)
		name := fmt.Sprintf("%dB", size)
		if size >= 1<<10 {
			name = fmt.Sprintf("%dKB", size>>10)
		}
		if !strings.Contains(string(body), `"model":"llama3.2"`) {
			b.Fatal("bad body")
		}
		b.Run("one-backend/"+name, func(b *testing.B) { driveChat(b, gw1, body) })
		b.Run("two-backends-unknown/"+name, func(b *testing.B) { driveChat(b, gw2u, body) })
		b.Run("two-backends-routed/"+name, func(b *testing.B) { driveChat(b, gw2, body) })
	}
}
