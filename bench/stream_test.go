package bench

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// chunks is the length of the benchmarked chat stream, and tokenGap the
// pause between two chunks: the backend is paced like a (very fast) model
// so the lag measures latency, not a backlog of unread chunks.
const (
	chunks   = 200
	tokenGap = 250 * time.Microsecond
)

// startStreamBackend runs a fasthttp server answering /api/chat with a
// chunked NDJSON stream of `chunks` lines, each carrying the time it was
// written (UnixNano) and flushed on its own, as Ollama does per token.
func startStreamBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/x-ndjson")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			var line []byte
			for i := range chunks {
				line = append(line[:0], `{"model":"llama3.2","message":{"role":"assistant","content":"tok"},"sent":`...)
				line = strconv.AppendInt(line, time.Now().UnixNano(), 10)
				if i == chunks-1 {
					line = append(line, `,"done":true,"done_reason":"stop","eval_count":200}`...)
				} else {
					line = append(line, `,"done":false}`...)
				}
				line = append(line, '\n')
				w.Write(line)
				if w.Flush() != nil {
					return
				}
				time.Sleep(tokenGap)
			}
		})
	}}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Shutdown(); ln.Close() })
	return ln.Addr().String()
}

// streamLag reads one chat stream from addr and returns the mean delay
// between a chunk's write at the backend and its arrival at the client.
func streamLag(b *testing.B, c net.Conn, br *bufio.Reader, addr string) time.Duration {
	req := "POST /api/chat HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + benchKey +
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
			now := time.Now().UnixNano()
			i := bytes.Index(line, []byte(`"sent":`))
			j := bytes.IndexByte(line[i+7:], ',')
			sent, _ := strconv.ParseInt(string(line[i+7:i+7+j]), 10, 64)
			total += time.Duration(now - sent)
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
	backend := startStreamBackend(b)
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
