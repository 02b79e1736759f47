package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollamagw/ollama-gateway/bench/fastollama"
	"github.com/valyala/fasthttp"
)

// result holds one target's figures; names index the table columns.
type result map[string]float64

func run(p plan) error {
	backend, err := start("backend", "", false)
	if err != nil {
		return err
	}
	defer backend.stop()
	targets := []*child{{name: "direct", addr: backend.addr, cmd: backend.cmd}}
	for _, role := range []string{"gateway", "httputil"} {
		if !p.targets[role] {
			continue
		}
		c, err := start(role, backend.addr, p.pin)
		if err != nil {
			return err
		}
		defer c.stop()
		targets = append(targets, c)
	}
	if p.targets["gateway-redis"] {
		c, err := startGatewayRedis(backend.addr, p.pin)
		switch {
		case errors.Is(err, errNoRedis) && os.Getenv("CI") == "":
			fmt.Fprintln(os.Stderr, "loadtest: gateway-redis column skipped:", err)
		case err != nil:
			return fmt.Errorf("gateway-redis: %w", err)
		default:
			defer c.stop()
			targets = append(targets, c)
		}
	}
	if p.targets["nginx"] {
		if ng, err := startNginx(backend.addr, p.pin); err == nil {
			defer ng.stop()
			targets = append(targets, ng)
		} else {
			fmt.Fprintln(os.Stderr, "loadtest: nginx column skipped:", err)
		}
	}

	results := map[string]result{}
	for _, t := range targets {
		results[t.name] = result{}
	}
	var rows []string
	for _, conc := range p.conc {
		if !p.scenarios["short"] {
			break
		}
		for _, t := range targets {
			short(t, conc, p.duration, results[t.name])
		}
		rows = append(rows,
			fmt.Sprintf("short c=%d: req/s", conc), fmt.Sprintf("short c=%d: p50 ms", conc),
			fmt.Sprintf("short c=%d: p99 ms", conc), fmt.Sprintf("short c=%d: p99.9 ms", conc),
			fmt.Sprintf("short c=%d: CPU s/10k req", conc))
		if slices.ContainsFunc(targets, func(t *child) bool { return t.aux != nil }) {
			rows = append(rows, fmt.Sprintf("short c=%d: + redis-server CPU s/10k req", conc))
		}
	}
	if p.scenarios["stream"] {
		for _, t := range targets {
			stream(t, p, results[t.name])
		}
		rows = append(rows, "stream: chunk lag p50 ms", "stream: chunk lag p99 ms", "stream: TTFB p50 ms", "stream: completed", "stream: CPU µs/chunk")
	}
	if p.scenarios["held"] {
		for _, t := range targets {
			holdStreams(t, p.held, results[t.name])
		}
		rows = append(rows, "held streams: KiB RSS/stream")
	}
	rows = append(rows, "peak RSS MiB")
	for _, t := range targets {
		results[t.name]["peak RSS MiB"] = float64(t.peakRSS()) / (1 << 20)
	}
	fmt.Print(formatTable(targets, rows, results))
	if p.scenarios["fleet"] {
		table, err := fleet(p.fleetRequests)
		if err != nil {
			return err
		}
		fmt.Print("\n" + table)
	}
	return nil
}

// short drives GET /api/version from conc clients for d.
func short(t *child, conc int, d time.Duration, r result) {
	hc := &fasthttp.HostClient{Addr: t.addr, MaxConns: conc, ReadTimeout: 30 * time.Second}
	cpu0 := t.cpu()
	var aux0 time.Duration
	if t.aux != nil {
		aux0 = t.aux.cpu()
	}
	var n atomic.Int64
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for i := range conc {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + t.addr + "/api/version")
			req.Header.Set("Authorization", "Bearer "+loadKey)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					continue
				}
				lats[i] = append(lats[i], time.Since(t0))
				n.Add(1)
			}
		})
	}
	wg.Wait()
	cpu := t.cpu() - cpu0
	var auxCPU time.Duration
	if t.aux != nil {
		auxCPU = t.aux.cpu() - aux0
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	key := func(s string) string { return fmt.Sprintf("short c=%d: %s", conc, s) }
	r[key("req/s")] = float64(n.Load()) / d.Seconds()
	r[key("p50 ms")] = ms(pct(all, 0.50))
	r[key("p99 ms")] = ms(pct(all, 0.99))
	r[key("p99.9 ms")] = ms(pct(all, 0.999))
	if n.Load() > 0 {
		r[key("CPU s/10k req")] = cpu.Seconds() * 10000 / float64(n.Load())
		if t.aux != nil {
			r[key("+ redis-server CPU s/10k req")] = auxCPU.Seconds() * 10000 / float64(n.Load())
		}
	}
}

// stream runs p.streams concurrent chats and measures each chunk's lag from
// its write at the backend to its arrival here.
func stream(t *child, p plan, r result) {
	hc := &fasthttp.HostClient{Addr: t.addr, MaxConns: p.streams + 16, StreamResponseBody: true}
	var mu sync.Mutex
	var lags, ttfbs []time.Duration
	var completed atomic.Int64
	var wg sync.WaitGroup
	uri := fmt.Sprintf("http://%s/api/chat?tokens=%d&gap=%s", t.addr, p.tokens, p.gap)
	cpu0 := t.cpu()
	for range p.streams {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(uri)
			req.Header.SetMethod("POST")
			req.Header.Set("Authorization", "Bearer "+loadKey)
			req.SetBodyString(`{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}`)
			t0 := time.Now()
			if err := hc.Do(req, resp); err != nil {
				return
			}
			br := bufio.NewReader(resp.BodyStream())
			var local []time.Duration
			first, done := true, false
			for {
				line, err := br.ReadSlice('\n')
				if len(line) > 0 {
					now := time.Now()
					if first {
						mu.Lock()
						ttfbs = append(ttfbs, now.Sub(t0))
						mu.Unlock()
						first = false
					}
					local = append(local, now.Sub(fastollama.SentAt(line)))
					done = done || bytes.Contains(line, []byte(`"done":true`))
				}
				if err != nil {
					break
				}
			}
			_ = resp.CloseBodyStream()
			if done {
				completed.Add(1)
			}
			mu.Lock()
			lags = append(lags, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	cpu := t.cpu() - cpu0
	slices.Sort(lags)
	slices.Sort(ttfbs)
	r["stream: chunk lag p50 ms"] = ms(pct(lags, 0.50))
	r["stream: chunk lag p99 ms"] = ms(pct(lags, 0.99))
	r["stream: TTFB p50 ms"] = ms(pct(ttfbs, 0.50))
	r["stream: completed"] = float64(completed.Load())
	if n := len(lags); n > 0 {
		r["stream: CPU µs/chunk"] = float64(cpu.Microseconds()) / float64(n)
	}
}

// holdStreams opens n streams the backend keeps open and reports the
// target's resident memory per stream.
func holdStreams(t *child, n int, r result) {
	before := t.rss()
	conns := make([]*fasthttp.Response, 0, n)
	hc := &fasthttp.HostClient{Addr: t.addr, MaxConns: n + 16, StreamResponseBody: true}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			req.SetRequestURI("http://" + t.addr + "/api/chat?hold=1")
			req.Header.SetMethod("POST")
			req.Header.Set("Authorization", "Bearer "+loadKey)
			req.SetBodyString(`{"model":"llama3.2"}`)
			if err := hc.Do(req, resp); err != nil {
				return
			}
			line := make([]byte, 512)
			if _, err := resp.BodyStream().Read(line); err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, resp)
			mu.Unlock()
		})
	}
	wg.Wait()
	after := t.rss()
	if len(conns) > 0 {
		r["held streams: KiB RSS/stream"] = float64(after-before) / 1024 / float64(len(conns))
	}
	for _, resp := range conns {
		_ = resp.CloseBodyStream()
	}
	hc.CloseIdleConnections()
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// formatTable renders the results as markdown, each figure with its ratio to
// direct and to httputil, and a gateway variant's (gateway-redis) also to
// gateway.
func formatTable(targets []*child, rows []string, results map[string]result) string {
	var b strings.Builder
	b.WriteString("| metric |")
	for _, t := range targets {
		fmt.Fprintf(&b, " %s |", t.name)
	}
	b.WriteString("\n|---|")
	for range targets {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s |", row)
		base, hu, gw := results["direct"][row], results["httputil"][row], results["gateway"][row]
		for _, t := range targets {
			v, ok := results[t.name][row]
			if !ok {
				b.WriteString(" n/a |")
				continue
			}
			fmt.Fprintf(&b, " %s", num(v))
			if t.name != "direct" && base != 0 {
				fmt.Fprintf(&b, " (%.2f× direct", v/base)
				if t.name != "httputil" && hu != 0 {
					fmt.Fprintf(&b, ", %.2f× httputil", v/hu)
				}
				if strings.HasPrefix(t.name, "gateway-") && gw != 0 {
					fmt.Fprintf(&b, ", %.2f× gateway", v/gw)
				}
				b.WriteString(")")
			}
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// startGatewayRedis starts a private redis-server and the gateway with its
// limits there; the server is the target's aux process.
func startGatewayRedis(backend string, pin bool) (*child, error) {
	rs, err := startRedis()
	if err != nil {
		return nil, err
	}
	c, err := start("gateway-redis", backend, pin, "-redis", "redis://"+rs.addr+"/0")
	if err != nil {
		rs.stop()
		return nil, err
	}
	c.aux = rs
	return c, nil
}

// startNginx runs nginx (when on PATH) as a streaming reverse proxy in
// front of backend: keep-alive upstream, no buffering, a worker per core
// (one, on the proxy's CPU, with pin).
func startNginx(backend string, pin bool) (*child, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "loadtest-nginx")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	workers := "auto"
	if pin {
		workers = "1"
	}
	conf := fmt.Sprintf(`worker_processes %[4]s;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 30000; }
http {
  access_log off;
  upstream ollama { server %[2]s; keepalive 512; }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://ollama;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`, dir, backend, port, workers)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	argv := onProxyCPU(pin, bin, "-p", dir, "-c", path, "-g", "daemon off;")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for range 100 {
		if c, err := fasthttp.DialTimeout(addr, 50*time.Millisecond); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// CPU and RSS sum the master and its workers (child.pids).
	return &child{name: "nginx", addr: addr, cmd: cmd}, nil
}

func freePort() (int, error) {
	ln, err := netListen()
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	_, p, _ := strings.Cut(ln.Addr().String(), ":")
	return strconv.Atoi(p)
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
