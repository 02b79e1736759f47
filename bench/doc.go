// Package bench holds the gateway's end-to-end benchmarks: each runs the
// same load against the gateway and against baselines measured in the same
// run (straight to the backend, and through net/http/httputil.ReverseProxy),
// over real loopback sockets, so results can be read as ratios on noisy,
// shared machines.
//
//	go test -run '^$' -bench . -benchmem ./bench
package bench
