package main

import (
	"strings"
	"testing"
)

// TestFormatTableRatios checks each cell's ratios: to direct for every
// proxy, to httputil for the others, and to gateway for gateway-redis.
func TestFormatTableRatios(t *testing.T) {
	targets := []*child{{name: "direct"}, {name: "gateway"}, {name: "httputil"}, {name: "gateway-redis"}}
	results := map[string]result{
		"direct":        {"req/s": 100},
		"gateway":       {"req/s": 50},
		"httputil":      {"req/s": 25},
		"gateway-redis": {"req/s": 20, "+ redis-server CPU": 0.5},
	}
	got := formatTable(targets, []string{"req/s", "+ redis-server CPU"}, results)
	for _, want := range []string{
		"| req/s | 100.0 | 50.0 (0.50× direct, 2.00× httputil) | 25.0 (0.25× direct) | 20.0 (0.20× direct, 0.80× httputil, 0.40× gateway) |",
		"| + redis-server CPU | n/a | n/a | n/a | 0.500 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks row\n%s\ngot:\n%s", want, got)
		}
	}
}

// TestFormatFleetTable: each gateway figure carries its ratio to
// round-robin's, none when round-robin's is 0.
func TestFormatFleetTable(t *testing.T) {
	got := formatFleetTable(map[string]result{
		"gateway":     {"TTFT p99 ms": 200, "failed": 0},
		"round-robin": {"TTFT p99 ms": 1600, "failed": 3},
	})
	for _, want := range []string{
		"| TTFT p99 ms | 200.0 (0.12× round-robin) | 1600 |",
		"| failed | 0.000 (0.00× round-robin) | 3.000 |",
		"| model loads | 0.000 | 0.000 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("fleet table lacks row\n%s\ngot:\n%s", want, got)
		}
	}
}
