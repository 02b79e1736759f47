package bench

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/bench/fastollama"
	"github.com/valyala/fasthttp"
)

// chunks is the length of the benchmarked chat stream, and tokenGap the
// pause between two chunks: the backend is paced like a (very fast) model
// so the lag measures latency, not a backlog of unread chunks.
const (
	chunks   = 200
	tokenGap = 250 * time.Microsecond
)

// streamLag reads one chat stream from addr and returns the mean delay
// between a chunk's write at the backend and its arrival at the client.
func streamLag(b *testing.B, c net.Conn, br *bufio.Reader, addr string) time.Duration {
	req := "POST /api/chat?tokens=" + strconv.Itoa(chunks) + "&gap=" + tokenGap.String() + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + benchKey +
		"\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"model\":\"llama\"}"
	if _, err := c.Write([]byte(req)); err != nil {
		b.Fatal(err)
	}
	var resp fasthttp.Response
	resp.StreamBody = true
	if err := resp.Read(br); err != nil {
		b.Fatal(err)
	}
	body := bufio.NewReader(resp.BodyStream())
	var total time.Duration
	n := 0
	for {
		line, err := body.ReadSlice('\n')
		if len(line) > 0 {
			total += time.Since(fastollama.SentAt(line))
			n++
		}
		if err != nil {
			break
		}
	}
	resp.CloseBodyStream()
	if n != chunks {
		b.Fatalf("got %d chunks; want %d", n, chunks)
	}
	return total / time.Duration(n)
}

// BenchmarkStream measures a 200-chunk NDJSON chat stream straight from
// the backend and through the gateway; the custom metric lag-ns/chunk is
// the mean time from a chunk's write at the backend to its arrival at the
// client. The gateway's added latency per chunk is the difference of the
// two sub-benchmarks, measured in the same run.
func BenchmarkStream(b *testing.B) {
	backend := startBackend(b)
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		b.ReportAllocs()
		b.ResetTimer()
		var lag time.Duration
		for range b.N {
			lag += streamLag(b, c, br, addr)
		}
		b.ReportMetric(float64(lag.Nanoseconds())/float64(b.N), "lag-ns/chunk")
	}
	b.Run("direct", func(b *testing.B) { run(b, backend) })
	b.Run("gateway", func(b *testing.B) { run(b, startGateway(b, backend, true)) })
}
