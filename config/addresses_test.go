package config

import (
	"reflect"
	"strings"
	"testing"
)

// The spec's list of strings loads as before; objects carry options; both
// forms mix in one list.
func TestParseAddressForms(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		urls    []string
		options []AddressOptions
	}{
		{"strings", `["http://a:1/", "http://b:2"]`, []string{"http://a:1/", "http://b:2"}, nil},
		{"mixed", `["http://a:1/", {"url": " http://b:2 ", "maxConcurrent": 4}, {"url": "http://c:3"}]`,
			[]string{"http://a:1/", "http://b:2", "http://c:3"},
			[]AddressOptions{{}, {MaxConcurrent: 4}, {}}},
		{"key case", `[{"URL": "http://a:1", "MaxConcurrent": 2}]`, []string{"http://a:1"}, []AddressOptions{{MaxConcurrent: 2}}},
		{"ollama's settings", `[{"url": "http://a:1", "numParallel": 2, "maxLoadedModels": 3}, {"url": "http://b:1", "NUMPARALLEL": 4, "maxConcurrent": null}]`,
			[]string{"http://a:1", "http://b:1"}, []AddressOptions{{NumParallel: 2, MaxLoadedModels: 3}, {NumParallel: 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(`{"ollamaAddresses": ` + tt.in + `}`))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(c.OllamaAddresses, tt.urls) {
				t.Errorf("OllamaAddresses = %q; want %q", c.OllamaAddresses, tt.urls)
			}
			if !reflect.DeepEqual(c.AddressOptions, tt.options) {
				t.Errorf("AddressOptions = %+v; want %+v", c.AddressOptions, tt.options)
			}
			for i := range tt.urls {
				var wantOpts AddressOptions
				if i < len(tt.options) {
					wantOpts = tt.options[i]
				}
				if got := c.Address(i); got != wantOpts {
					t.Errorf("Address(%d) = %+v; want %+v", i, got, wantOpts)
				}
			}
		})
	}
}

func TestParseAddressErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"zero cap", `["http://a:1", "http://b:1", {"url": "http://c:1", "maxConcurrent": 0}]`,
			"ollamaAddresses[2].maxConcurrent: must be >= 1"},
		{"negative cap", `[{"url": "http://c:1", "maxConcurrent": -3}]`, "ollamaAddresses[0].maxConcurrent: must be >= 1"},
		{"fraction", `[{"url": "http://c:1", "maxConcurrent": 1.5}]`, "ollamaAddresses[0].maxConcurrent: expected a whole number, got 1.5"},
		{"string cap", `[{"url": "http://c:1", "maxConcurrent": "4"}]`, "ollamaAddresses[0].maxConcurrent: expected a number, got string"},
		{"no url", `[{"maxConcurrent": 4}]`, "ollamaAddresses[0].url: is required"},
		{"zero parallel", `[{"url": "http://c:1", "numParallel": 0}]`, "ollamaAddresses[0].numParallel: must be >= 1"},
		{"negative loaded", `["http://a:1", {"url": "http://c:1", "maxLoadedModels": -1}]`, "ollamaAddresses[1].maxLoadedModels: must be >= 1"},
		{"fraction parallel", `[{"url": "http://c:1", "numParallel": 2.5}]`, "ollamaAddresses[0].numParallel: expected a whole number, got 2.5"},
		{"string loaded", `[{"url": "http://c:1", "MaxLoadedModels": "3"}]`, "ollamaAddresses[0].maxLoadedModels: expected a number, got string"},
		{"url type", `[{"url": 7}]`, "ollamaAddresses[0].url: expected a string, got number"},
		{"unknown", `[{"url": "http://c:1", "weight": 2}]`, "ollamaAddresses[0].weight: unknown field"},
		{"number entry", `[7]`, "ollamaAddresses[0]: expected a string or an object, got number"},
		{"bad url in object", `[{"url": "ftp://x"}]`, `ollamaAddresses[0]: "ftp://x" is not an http(s) URL`},
		{"duplicate across forms", `["http://a:1", {"url": "http://a:1/"}]`, "ollamaAddresses[1]: duplicate of ollamaAddresses[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(`{"ollamaAddresses": ` + tt.in + `}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%s) error = %v; want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseSchedulingFields(t *testing.T) {
	c, err := Parse([]byte(`{"ollamaAddresses": ["http://a:1"], "loadBalancer": {"strategy": "least-connections", "queueSize": 0, "queueTimeoutSeconds": 5}}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.LoadBalancer.Strategy != StrategyLeastConnections || c.LoadBalancer.QueueSize != 0 || c.LoadBalancer.QueueTimeout().Seconds() != 5 {
		t.Errorf("LoadBalancer = %+v; want least-connections, queue 0, 5 s", c.LoadBalancer)
	}
	for _, tt := range []struct{ in, want string }{
		{`{"strategy": "random"}`, `loadBalancer.strategy: must be "round-robin" or "least-connections"`},
		{`{"queueSize": -1}`, "loadBalancer.queueSize: must be >= 0"},
		{`{"queueTimeoutSeconds": 0}`, "loadBalancer.queueTimeoutSeconds: must be >= 1"},
	} {
		_, err := Parse([]byte(`{"ollamaAddresses": ["http://a:1"], "loadBalancer": ` + tt.in + `}`))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) error = %v; want %q", tt.in, err, tt.want)
		}
	}
}
