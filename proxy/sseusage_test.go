package proxy

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// An OpenAI chat stream as Ollama writes it with include_usage.
const (
	sseToken = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"finish_reason":null}]}` + "\n\n"
	sseStop  = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}` + "\n\n"
	sseUsage = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":26,"completion_tokens":4,"total_tokens":30}}` + "\n\n"
	sseDone  = "data: [DONE]\n\n"
)

// splitReader returns its content in reads of the given sizes, in turn.
type splitReader struct {
	b     []byte
	sizes []int
	i     int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := len(r.b)
	if len(r.sizes) > 0 {
		n = max(1, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	n = copy(p[:min(n, len(p))], r.b)
	r.b = r.b[n:]
	return n, nil
}

// stripped reads src through a usageStrip with buffers of size psize.
func stripped(t testing.TB, src io.Reader, psize int) []byte {
	t.Helper()
	var s usageStrip
	var out []byte
	p := make([]byte, psize)
	for range 1 << 20 {
		n, err := s.read(p, src)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("usageStrip.read never ends")
	return nil
}

// wantStripped is the stream without its usage-only events, decided on
// each event whole.
func wantStripped(in []byte) []byte {
	var out []byte
	for len(in) > 0 {
		ev, complete := in, false
		if k := bytes.Index(in, []byte("\n\n")); k >= 0 {
			ev, complete = in[:k+2], true
		}
		if drop, decided := ollamaapi.IsUsageOnlyChunk(ev, complete); !(drop && decided) {
			out = append(out, ev...)
		}
		in = in[len(ev):]
	}
	return out
}

func TestUsageStrip(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"chat stream", sseToken + sseToken + sseStop + sseUsage + sseDone, sseToken + sseToken + sseStop + sseDone},
		{"no usage chunk", sseToken + sseStop + sseDone, sseToken + sseStop + sseDone},
		{"usage chunk last, no [DONE]", sseStop + sseUsage, sseStop},
		{"unterminated event", sseToken + `data: {"choices":[{"x`, sseToken + `data: {"choices":[{"x`},
		{"error event", `data: {"error":{"message":"boom"}}` + "\n\n", `data: {"error":{"message":"boom"}}` + "\n\n"},
		{"event longer than the carry", "data: " + strings.Repeat("x", 3000) + "\n\n" + sseUsage + sseDone,
			"data: " + strings.Repeat("x", 3000) + "\n\n" + sseDone},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		for _, sizes := range [][]int{nil, {1}, {2, 3}, {7}, {100}, {len(sseToken) - 1}} {
			for _, psize := range []int{4096, usageCarrySize + 1} {
				got := stripped(t, &splitReader{b: []byte(tt.in), sizes: sizes}, psize)
				if string(got) != tt.want {
					t.Errorf("%s, reads of %v into %d bytes: got\n%q\nwant\n%q", tt.name, sizes, psize, got, tt.want)
				}
			}
		}
	}
	// A read buffer smaller than the carry (fasthttp's are 4 KiB): what
	// cannot be decided is passed on, nothing is lost or repeated.
	for _, psize := range []int{1, 2, 64} {
		in := sseToken + sseStop + sseDone
		if got := stripped(t, &splitReader{b: []byte(in), sizes: []int{3}}, psize); string(got) != in {
			t.Errorf("reads into %d bytes: got %q; want %q", psize, got, in)
		}
	}
	// One byte at a time, from a reader that also ends with its last bytes.
	in := sseToken + sseStop + sseUsage + sseDone
	if got := stripped(t, iotest.DataErrReader(iotest.OneByteReader(strings.NewReader(in))), 4096); string(got) != sseToken+sseStop+sseDone {
		t.Errorf("one byte at a time: got %q", got)
	}
}

// TestUsageStripAllocs: cutting the usage out allocates nothing per read.
func TestUsageStripAllocs(t *testing.T) {
	in := []byte(sseToken + sseToken + sseStop + sseUsage + sseDone)
	var s usageStrip
	p := make([]byte, 4096)
	r := &splitReader{sizes: []int{50}}
	allocs := testing.AllocsPerRun(100, func() {
		s.reset()
		r.b, r.i = in, 0
		for {
			if _, err := s.read(p, r); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per stream = %v; want 0", allocs)
	}
}

// FuzzUsageStrip: whatever the stream and however it is split across
// reads, what passes is the stream without the events a whole-event
// decision drops, with read buffers that hold the carry; with smaller
// ones, it ends and passes on at most what came in.
func FuzzUsageStrip(f *testing.F) {
	f.Add([]byte(sseToken+sseStop+sseUsage+sseDone), uint8(5), uint8(3), uint16(4096))
	f.Add([]byte("\n\n\n"+sseUsage+"\n"), uint8(1), uint8(1), uint16(2))
	f.Add([]byte(`"choices":[]`+"\n\n"+`"choices":[`), uint8(11), uint8(2), uint16(13))
	f.Fuzz(func(t *testing.T, in []byte, a, b uint8, psize uint16) {
		for ev := range bytes.SplitSeq(in, []byte("\n\n")) {
			if len(ev) >= usageCarrySize-2 {
				t.Skip("an event longer than the carry is passed on undecided")
			}
		}
		want := wantStripped(in)
		size := int(psize) % 5000
		if size <= usageCarrySize {
			if got := stripped(t, &splitReader{b: in, sizes: []int{int(a), int(b)}}, max(size, 1)); len(got) > len(in) {
				t.Fatalf("reads into %d bytes: %d bytes out of %d", size, len(got), len(in))
			}
			size += usageCarrySize + 1
		}
		got := stripped(t, &splitReader{b: in, sizes: []int{int(a), int(b)}}, size)
		if !bytes.Equal(got, want) {
			t.Fatalf("reads of %d and %d into %d bytes: got\n%q\nwant\n%q", a, b, size, got, want)
		}
	})
}
