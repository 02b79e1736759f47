// Package fastollama is a fast fake Ollama for benchmarks: a fasthttp
// handler answering the two requests the benchmarks send, cheaply enough
// that the backend is never what is measured. (internal/ollamatest is the
// faithful fake for tests; this one trades fidelity for speed.)
package fastollama

import (
	"bufio"
	"bytes"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// VersionBody is Ollama's answer to GET /api/version: the smallest real
// response.
const VersionBody = `{"version":"0.17.4"}`

// Handler serves
//   - /api/version: VersionBody;
//   - /api/chat: a chunked NDJSON chat stream of ?tokens=N lines (default
//     1), ?gap=D apart (a time.ParseDuration string, default none), each
//     flushed on its own as Ollama does per token and stamped with its
//     write time (field "sent", UnixNano; see SentAt), the last one with
//     "done":true. With ?hold=1 it sends a line a second until the client
//     leaves: a paused generation.
//
// Anything else is 404.
func Handler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/api/version":
		ctx.SetContentType("application/json; charset=utf-8")
		ctx.SetBodyString(VersionBody)
	case "/api/chat":
		args := ctx.QueryArgs()
		tokens, err := strconv.Atoi(string(args.Peek("tokens")))
		if err != nil || tokens < 1 {
			tokens = 1
		}
		gap, _ := time.ParseDuration(string(args.Peek("gap")))
		hold := string(args.Peek("hold")) == "1"
		ctx.SetContentType("application/x-ndjson")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			var line []byte
			for i := 0; hold || i < tokens; i++ {
				line = appendLine(line[:0], !hold && i == tokens-1, tokens)
				if _, err := w.Write(line); err != nil || w.Flush() != nil {
					return
				}
				switch {
				case hold:
					time.Sleep(time.Second)
				case gap > 0:
					time.Sleep(gap)
				}
			}
		})
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

// appendLine appends one NDJSON chat line stamped with the time now.
func appendLine(dst []byte, last bool, tokens int) []byte {
	dst = append(dst, `{"model":"llama3.2","message":{"role":"assistant","content":"tok"},"sent":`...)
	dst = strconv.AppendInt(dst, time.Now().UnixNano(), 10)
	if last {
		dst = append(dst, `,"done":true,"done_reason":"stop","eval_count":`...)
		dst = strconv.AppendInt(dst, int64(tokens), 10)
		return append(dst, "}\n"...)
	}
	return append(dst, `,"done":false}`+"\n"...)
}

// SentAt returns the write time stamped on a chat line by Handler, or 0.
func SentAt(line []byte) time.Time {
	i := bytes.Index(line, []byte(`"sent":`))
	if i < 0 {
		return time.Time{}
	}
	rest := line[i+len(`"sent":`):]
	j := bytes.IndexAny(rest, ",}")
	if j < 0 {
		return time.Time{}
	}
	v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, v)
}
