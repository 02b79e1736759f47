package ollamatest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
)

func TestParseKeepAlive(t *testing.T) {
	d := func(v time.Duration) *time.Duration { return &v }
	tests := []struct {
		raw  string
		want *time.Duration
	}{
		{``, nil},
		{`null`, nil},
		{`0`, d(0)},
		{`300`, d(5 * time.Minute)},
		{`1.5`, d(1500 * time.Millisecond)},
		{`-1`, d(scheduler.Forever)},
		{`"10m"`, d(10 * time.Minute)},
		{`"0"`, d(0)},
		{`"-5s"`, d(scheduler.Forever)},
		{`"30"`, d(30 * time.Second)},
		{`"soon"`, nil},
		{`true`, nil},
		{`{}`, nil},
	}
	for _, tt := range tests {
		got := parseKeepAlive(json.RawMessage(tt.raw))
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("parseKeepAlive(%s) = %v; want %v", tt.raw, show(got), show(tt.want))
		}
	}
}

func show(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return *d
}

// FuzzParseKeepAlive: any keep_alive is read without a panic and never as a
// negative duration. (keepAliveZero is now read through parseKeepAlive: the
// corpus holds "0.0000000001", on which two separate readers disagreed.)
func FuzzParseKeepAlive(f *testing.F) {
	for _, s := range []string{``, `null`, `0`, `-1`, `"5m"`, `"0s"`, `1e400`, `"-1h"`, `"1.5"`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := parseKeepAlive(raw)
		if got != nil && *got < 0 {
			t.Fatalf("parseKeepAlive(%q) = %v; want >= 0", raw, *got)
		}
	})
}
