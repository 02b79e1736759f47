package gateway

import (
	"reflect"
	"testing"
	"time"
)

// TestTrafficSeries: requests land in their second's bucket, steps sum
// them, and a bucket reused 15 minutes later starts from zero.
func TestTrafficSeries(t *testing.T) {
	var tr traffic
	t0 := time.Unix(1_800_000_000, 0)
	tr.record(t0, "", false, 20*time.Millisecond, 5)
	tr.record(t0.Add(500*time.Millisecond), "", true, 0, 0)
	tr.record(t0.Add(3*time.Second), "", false, 2*time.Second, 7)

	pts := tr.series(t0.Add(9*time.Second), 10)
	if len(pts) != trafficSeconds/10 {
		t.Fatalf("len(series) = %d; want %d", len(pts), trafficSeconds/10)
	}
	last := pts[len(pts)-1]
	want := trafficPoint{Start: t0.UnixMilli(), Requests: 3, Errors: 1, Tokens: 12, TTFTp50: 25, TTFTp95: 2500}
	if last != want {
		t.Errorf("last step = %+v; want %+v", last, want)
	}
	for _, p := range pts[:len(pts)-1] {
		if p.Requests != 0 {
			t.Errorf("step %d has %d requests; want 0", p.Start, p.Requests)
		}
	}

	// The same bucket, a ring's turn later: the old counts are gone.
	later := t0.Add(trafficSeconds * time.Second)
	tr.record(later, "", false, 0, 0)
	pts = tr.series(later.Add(9*time.Second), 10)
	if got := pts[len(pts)-1].Requests; got != 1 {
		t.Errorf("requests after the ring turned = %d; want 1", got)
	}
	if got := pts[0].Requests; got != 0 {
		t.Errorf("oldest step = %d requests; want 0 (15 minutes ago is outside the window)", got)
	}
}

func TestQuantile(t *testing.T) {
	n := len(ttftBounds) + 1
	hist := func(kv ...int64) []int64 {
		h := make([]int64, n)
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	tests := []struct {
		name string
		h    []int64
		q    float64
		want int64
	}{
		{"empty", hist(), 0.5, 0},
		{"one", hist(0, 1), 0.95, 10},
		{"median low", hist(0, 6, 5, 4), 0.5, 10},
		{"p95 high", hist(0, 90, 5, 10), 0.95, 500},
		{"open bucket", hist(int64(len(ttftBounds)), 3), 0.5, 60000},
	}
	for _, tt := range tests {
		if got := quantile(tt.h, tt.q); got != tt.want {
			t.Errorf("%s: quantile(%v, %v) = %d; want %d", tt.name, tt.h, tt.q, got, tt.want)
		}
	}
}

// TestTrafficRecordAllocs: the request path's part costs no allocation.
func TestTrafficRecordAllocs(t *testing.T) {
	var tr traffic
	now := time.Now()
	model := "llama3.2:latest"
	tr.record(now, model, false, time.Millisecond, 3) // claims the model's slot
	if n := testing.AllocsPerRun(100, func() { tr.record(now, model, false, time.Millisecond, 3) }); n != 0 {
		t.Errorf("record allocates %v times; want 0", n)
	}
}

func BenchmarkTrafficRecord(b *testing.B) {
	var tr traffic
	model := "llama3.2:latest"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.record(time.Now(), model, false, 30*time.Millisecond, 10)
		}
	})
}

// TestTrafficByModel: requests count by model for the first trafficModels
// names, the rest as "other", most first; answers naming no model and
// those older than the ring count in no row.
func TestTrafficByModel(t *testing.T) {
	var tr traffic
	t0 := time.Unix(1_700_000_000, 0)
	tr.record(t0.Add(-trafficSeconds*time.Second), "old", false, 0, 0) // claims a slot, leaves the ring
	for i := range trafficModels - 1 {
		tr.record(t0, string([]byte{'m', byte('a' + i)}), false, 0, 0)
	}
	tr.record(t0, "ma", false, 0, 0)
	tr.record(t0, "late-1", false, 0, 0)
	tr.record(t0, "late-2", false, 0, 0)
	tr.record(t0, "", false, 0, 0)
	got := tr.byModel(t0)
	want := []modelTraffic{{"ma", 2}}
	for i := 1; i < trafficModels-1; i++ {
		want = append(want, modelTraffic{string([]byte{'m', byte('a' + i)}), 1})
	}
	want = append(want, modelTraffic{otherModel, 2})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("byModel = %v; want %v", got, want)
	}
}
