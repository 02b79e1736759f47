package gateway

import (
	"sort"
	"sync/atomic"
	"time"
)

// trafficModels is how many model names the traffic ring counts apart:
// the first that answers name, for the life of the process; answers for
// any other model count as "other".
const trafficModels = 8

// otherModel names the requests for models past the first trafficModels.
const otherModel = "other"

// trafficSeconds is how far back the console's traffic ring reaches.
const trafficSeconds = 15 * 60

// ttftBounds are the upper bounds, in milliseconds, of the time-to-first-
// token histogram kept per second; a last bucket holds the rest.
var ttftBounds = [...]int64{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// trafficBucket is one second of traffic. Every field is an atomic, so the
// request path records with a handful of atomic adds and no lock.
type trafficBucket struct {
	sec      atomic.Int64 // the Unix second the counts are of
	requests atomic.Int64
	errors   atomic.Int64 // answers with a 5xx status, or cut short
	tokens   atomic.Int64 // completion tokens
	ttft     [len(ttftBounds) + 1]atomic.Int64
	models   [trafficModels + 1]atomic.Int64 // requests by model slot; the last is "other"
}

// traffic is a ring of the last 15 minutes of requests, one bucket per
// second, fed by the request's Finish. It is safe for concurrent use. A
// bucket is reused when its second comes round again: the request that
// first sees the new second resets it, so a request recorded during the
// reset by another goroutine of the same instant may be lost; the console
// shows rates, which this does not visibly change.
type traffic struct {
	ring  [trafficSeconds]trafficBucket
	names [trafficModels]atomic.Pointer[string] // the model of each slot, claimed once
}

// modelSlot returns model's slot: the one holding its name, else a free
// one it claims (the only allocation, at most trafficModels times in a
// process's life), else the "other" slot.
func (t *traffic) modelSlot(model string) int {
	for i := range t.names {
		p := t.names[i].Load()
		if p == nil {
			s := model
			if t.names[i].CompareAndSwap(nil, &s) {
				return i
			}
			p = t.names[i].Load()
		}
		if *p == model {
			return i
		}
	}
	return trafficModels
}

// record adds one finished request at now, for model (as the backend's
// answer named it; empty when it did not: counted in no model's row).
func (t *traffic) record(now time.Time, model string, failed bool, firstByte time.Duration, tokens int) {
	sec := now.Unix()
	b := &t.ring[sec%trafficSeconds]
	if old := b.sec.Load(); old != sec && b.sec.CompareAndSwap(old, sec) {
		b.requests.Store(0)
		b.errors.Store(0)
		b.tokens.Store(0)
		for i := range b.ttft {
			b.ttft[i].Store(0)
		}
		for i := range b.models {
			b.models[i].Store(0)
		}
	}
	b.requests.Add(1)
	if len(model) > 0 {
		b.models[t.modelSlot(model)].Add(1)
	}
	if failed {
		b.errors.Add(1)
	}
	if tokens > 0 {
		b.tokens.Add(int64(tokens))
	}
	if firstByte > 0 {
		ms := firstByte.Milliseconds()
		i := 0
		for i < len(ttftBounds) && ms > ttftBounds[i] {
			i++
		}
		b.ttft[i].Add(1)
	}
}

// trafficPoint is one step of the console's traffic series.
type trafficPoint struct {
	// Start is the step's first second, Unix milliseconds.
	Start int64 `json:"start"`
	// Requests and Errors count the step's requests; Tokens its
	// completion tokens.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	Tokens   int64 `json:"tokens"`
	// TTFTp50 and TTFTp95 are the step's time-to-first-token quantiles in
	// milliseconds (the upper bound of the histogram bucket they fall in),
	// 0 without data.
	TTFTp50 int64 `json:"ttftP50Ms"`
	TTFTp95 int64 `json:"ttftP95Ms"`
}

// series sums the ring into steps of step seconds ending at now, oldest
// first, covering the whole 15 minutes.
func (t *traffic) series(now time.Time, step int) []trafficPoint {
	end := now.Unix()
	n := trafficSeconds / step
	out := make([]trafficPoint, n)
	for i := range out {
		first := end - int64((n-i)*step) + 1
		var hist [len(ttftBounds) + 1]int64
		p := &out[i]
		p.Start = first * 1000
		for s := first; s < first+int64(step); s++ {
			b := &t.ring[s%trafficSeconds]
			if b.sec.Load() != s {
				continue
			}
			p.Requests += b.requests.Load()
			p.Errors += b.errors.Load()
			p.Tokens += b.tokens.Load()
			for j := range hist {
				hist[j] += b.ttft[j].Load()
			}
		}
		p.TTFTp50, p.TTFTp95 = quantile(hist[:], 0.50), quantile(hist[:], 0.95)
	}
	return out
}

// modelTraffic is one model's requests in the whole ring.
type modelTraffic struct {
	Model    string `json:"model"`
	Requests int64  `json:"requests"`
}

// byModel sums the ring's requests by model at now: the models with
// requests, most first, "other" last.
func (t *traffic) byModel(now time.Time) []modelTraffic {
	var sums [trafficModels + 1]int64
	end := now.Unix()
	for s := end - trafficSeconds + 1; s <= end; s++ {
		b := &t.ring[s%trafficSeconds]
		if b.sec.Load() != s {
			continue
		}
		for i := range sums {
			sums[i] += b.models[i].Load()
		}
	}
	out := []modelTraffic{}
	for i := range t.names {
		if p := t.names[i].Load(); p != nil && sums[i] > 0 {
			out = append(out, modelTraffic{*p, sums[i]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Requests > out[j].Requests })
	if n := sums[trafficModels]; n > 0 {
		out = append(out, modelTraffic{otherModel, n})
	}
	return out
}

// quantile returns the upper bound in milliseconds of the histogram bucket
// holding quantile q, 0 for an empty histogram; the open last bucket
// reports twice the last bound.
func quantile(hist []int64, q float64) int64 {
	var total int64
	for _, c := range hist {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range hist {
		if seen += c; seen >= rank {
			if i < len(ttftBounds) {
				return ttftBounds[i]
			}
			break
		}
	}
	return 2 * ttftBounds[len(ttftBounds)-1]
}
