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
