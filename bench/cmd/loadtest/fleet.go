package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ollamagw/ollama-gateway/bench/fleetload"
)

// The fleet scenario: the workload of bench/fleetload (several models and
// keys, more requests than slots) over three fake Ollamas with Ollama's
// scheduler, each in its own process, through the gateway (fleet
// scheduling, told what the backends run) and through round-robin
// (httputil.ReverseProxy taking the backends in turn), each over fresh
// backends. It prints its own table: time to first token, requests per
// second, model loads and failed requests, with the gateway's ratio to
// round-robin.

// fleetTargets are the scenario's columns: the name shown, and the role.
var fleetTargets = []struct{ name, role string }{{"gateway", "gateway-fleet"}, {"round-robin", "round-robin"}}

// fleetRows are the rows of the fleet table, in order.
var fleetRows = []string{"TTFT p50 ms", "TTFT p99 ms", "TTFT max ms", "req/s", "model loads", "failed"}

// fleet runs the scenario with n requests and returns its table.
func fleet(n int) (string, error) {
	results := map[string]result{}
	for _, t := range fleetTargets {
		r, err := fleetRun(t.role, n)
		if err != nil {
			return "", fmt.Errorf("fleet %s: %w", t.name, err)
		}
		results[t.name] = r
	}
	return formatFleetTable(results), nil
}

// fleetRun starts fresh backends and the target role over them, sends the
// workload, and returns its figures.
func fleetRun(role string, n int) (result, error) {
	var backends []*child
	defer func() {
		for _, b := range backends {
			b.stop()
		}
	}()
	var addrs []string
	for i := range fleetload.Backends {
		b, err := start("fleet-backend", strconv.Itoa(i), false)
		if err != nil {
			return nil, err
		}
		backends = append(backends, b)
		addrs = append(addrs, b.addr)
	}
	t, err := start(role, strings.Join(addrs, ","), false)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	if role == "gateway-fleet" {
		if err := fleetReady(t.addr); err != nil {
			return nil, err
		}
	}
	before, err := fleetLoads(addrs)
	if err != nil {
		return nil, err
	}
	res := fleetload.Run(t.addr, fleetload.Workload{Requests: n, Concurrency: 12, Keys: fleetKeys})
	after, err := fleetLoads(addrs)
	if err != nil {
		return nil, err
	}
	return result{
		"TTFT p50 ms": ms(res.Quantile(0.50)),
		"TTFT p99 ms": ms(res.Quantile(0.99)),
		"TTFT max ms": ms(res.Quantile(1)),
		"req/s":       res.PerSecond(),
		"model loads": float64(after - before),
		"failed":      float64(res.Failed),
	}, nil
}

// fleetReady waits until the gateway knows every backend's loaded model:
// its merged /api/ps lists the three (one loaded on each at start).
func fleetReady(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/ps", nil)
		req.Header.Set("Authorization", "Bearer "+loadKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Count(string(body), `"size_vram"`) == len(fleetload.Models) {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("gateway at %s: the backends' loaded models not known within 15s", addr)
}

// fleetLoads returns the model loads of the backends so far.
func fleetLoads(addrs []string) (int, error) {
	total := 0
	for _, a := range addrs {
		resp, err := http.Get("http://" + a + "/fastollama/loads")
		if err != nil {
			return 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, err := strconv.Atoi(strings.TrimSpace(string(body)))
		if err != nil {
			return 0, fmt.Errorf("%s: load count %q", a, body)
		}
		total += n
	}
	return total, nil
}

// formatFleetTable renders the fleet results as markdown, the gateway's
// figures with their ratio to round-robin's.
func formatFleetTable(results map[string]result) string {
	var b strings.Builder
	b.WriteString("| fleet | gateway | round-robin |\n|---|---|---|\n")
	for _, row := range fleetRows {
		g, rr := results["gateway"][row], results["round-robin"][row]
		fmt.Fprintf(&b, "| %s | %s", row, num(g))
		if rr != 0 {
			fmt.Fprintf(&b, " (%.2f× round-robin)", g/rr)
		}
		fmt.Fprintf(&b, " | %s |\n", num(rr))
	}
	return b.String()
}
