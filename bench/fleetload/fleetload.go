// Package fleetload is the fleet-scheduling workload of the benchmarks
// (BenchmarkFleet in bench, the fleet scenario of bench/cmd/loadtest): three
// fake Ollamas with Ollama's scheduler, 2 parallel requests per model and 2
// models loaded at most, a 400 ms load, each serving the three models and
// starting with a different one loaded; chat streams of 20 tokens 10 ms
// apart from 12 concurrent clients over several API keys, half for m1,
// 30 % for m2, 20 % for m3. More requests than slots for some model at
// almost every moment, so where a request goes decides whether it waits,
// loads or answers at once.
package fleetload

import (
	"bufio"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollamagw/ollama-gateway/bench/fastollama"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
)

// The fleet's shape.
const (
	// Backends is the number of fake Ollamas.
	Backends = 3
	// Parallel is each backend's OLLAMA_NUM_PARALLEL.
	Parallel = 2
	// MaxLoaded is each backend's OLLAMA_MAX_LOADED_MODELS.
	MaxLoaded = 2
	// LoadDelay is how long a model takes to load.
	LoadDelay = 400 * time.Millisecond
	// Query makes each chat 20 tokens, 10 ms apart (fastollama).
	Query = "?tokens=20&gap=10ms"
)

// Models are the models every backend serves.
var Models = []string{"m1:latest", "m2:latest", "m3:latest"}

// Backend returns the configuration of backend i (0 <= i < Backends): the
// three models, Models[i] loaded at start.
func Backend(i int) fastollama.BackendConfig {
	cfg := scheduler.DefaultConfig()
	cfg.Parallel, cfg.MaxLoaded = Parallel, MaxLoaded
	cfg.LoadDelay = func(string) time.Duration { return LoadDelay }
	return fastollama.BackendConfig{Models: Models, Loaded: []string{Models[i%len(Models)]}, Scheduler: cfg}
}

// AddressOptions are what the gateway is told about each backend: what
// it runs (numParallel, maxLoadedModels) and a cap of both multiplied.
func AddressOptions() config.AddressOptions {
	return config.AddressOptions{MaxConcurrent: Parallel * MaxLoaded, NumParallel: Parallel, MaxLoadedModels: MaxLoaded}
}

// Workload is one run's load.
type Workload struct {
	Requests    int      // chats in all
	Concurrency int      // clients, each sending its next chat when the last ends
	Keys        []string // API keys, taken in turn (Bearer)
}

// Result is what a run measured.
type Result struct {
	TTFT    []time.Duration // time to the first NDJSON line of each chat, sorted; a failed one counts as 0
	Elapsed time.Duration
	Failed  int // chats that failed or did not end with "done":true
}

// Quantile returns the q-quantile (0..1) of the times to first token.
func (r *Result) Quantile(q float64) time.Duration {
	if len(r.TTFT) == 0 {
		return 0
	}
	return r.TTFT[min(len(r.TTFT)-1, int(q*float64(len(r.TTFT))))]
}

// PerSecond returns completed chats per second.
func (r *Result) PerSecond() float64 {
	return float64(len(r.TTFT)-r.Failed) / r.Elapsed.Seconds()
}

// model returns the model of chat i: 5 in 10 m1, 3 m2, 2 m3.
func model(i int) string {
	switch i % 10 {
	case 5, 6, 7:
		return Models[1]
	case 8, 9:
		return Models[2]
	}
	return Models[0]
}

// Run sends w to the host:port addr (POST /api/chat) and measures it.
func Run(addr string, w Workload) Result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: w.Concurrency}, Timeout: time.Minute}
	defer client.CloseIdleConnections()
	ttft := make([]time.Duration, w.Requests)
	var failed atomic.Int64
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range w.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= w.Requests {
					return
				}
				d, ok := chat(client, addr, model(i), w.Keys[i%len(w.Keys)])
				ttft[i] = d
				if !ok {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(ttft)
	return Result{TTFT: ttft, Elapsed: time.Since(start), Failed: int(failed.Load())}
}

// chat streams one chat and returns its time to first token and whether
// it completed.
func chat(client *http.Client, addr, model, key string) (time.Duration, bool) {
	body := `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/chat"+Query, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	_, err = br.ReadBytes('\n')
	ttft := time.Since(t0)
	last := ""
	for err == nil {
		var line []byte
		line, err = br.ReadBytes('\n')
		if len(line) > 0 {
			last = string(line)
		}
	}
	return ttft, resp.StatusCode == 200 && strings.Contains(last, `"done":true`)
}

// RoundRobin returns the baseline: httputil.ReverseProxy taking the
// backends (host:port) in turn, flushing every write.
func RoundRobin(backends []string) *httputil.ReverseProxy {
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse("http://" + backends[(next.Add(1)-1)%uint64(len(backends))])
			r.SetURL(u)
		},
		FlushInterval: -1,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 1024},
	}
}
