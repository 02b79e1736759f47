package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/proxy"
)

// Fleet-wide model management. POST /api/pull?fleet=all and DELETE
// /api/delete?fleet=all (the routes with ollamaapi.Route.FleetWide) are
// sent to every backend at once, by an admin (the scope of /config/*),
// instead of to one: a pull streams every backend's progress as NDJSON in
// Ollama's format, each line with a "backend" member naming its backend,
// then a final {"status":"success"} or {"error":...}; a delete answers
// one line per backend, then the final one, once all have answered.

// Bounds of a fleet-wide call.
const (
	// maxFleetBody bounds the request body (a model name and options).
	maxFleetBody = 64 << 10
	// maxFleetLine bounds one progress line of a backend's stream.
	maxFleetLine = 1 << 20
	// fleetDeleteTimeout bounds a fleet-wide delete on each backend.
	fleetDeleteTimeout = 30 * time.Second
)

// fleetAll reports whether the request asks to reach every backend.
func fleetAll(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.QueryArgs().Peek("fleet")) == "all"
}

// serveFleetWide sends the request to every backend of st. r is the
// request's record; it is finished here (delete, refusals) or when the
// stream ends (pull).
func (g *Gateway) serveFleetWide(ctx *fasthttp.RequestCtx, st *Snapshot, r *request) {
	body, err := readFleetBody(ctx, r)
	if err != nil {
		var se proxy.StatusError
		status, msg := fasthttp.StatusBadRequest, "request body could not be read"
		if errors.As(err, &se) {
			status, msg = se.HTTPStatus()
		}
		proxy.WriteError(ctx, status, msg)
		r.ModifyResponse(ctx)
		r.finishHere(ctx)
		return
	}
	backends := st.Proxy.Pool().Backends()
	if ctx.IsDelete() {
		g.fleetDelete(ctx, backends, body)
		r.ModifyResponse(ctx)
		r.finishHere(ctx)
		return
	}
	fs := g.fleetPull(backends, body, r, ctx, st.Config.Proxy.StreamIdleTimeout())
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/x-ndjson")
	ctx.Response.ImmediateHeaderFlush = true
	r.ModifyResponse(ctx)
	ctx.SetBodyStream(fs, -1)
}

// errFleetBody is a request body over maxFleetBody.
var errFleetBody = statusErr{fasthttp.StatusRequestEntityTooLarge, "request body too large"}

type statusErr struct {
	status int
	msg    string
}

func (e statusErr) Error() string                        { return e.msg }
func (e statusErr) HTTPStatus() (status int, msg string) { return e.status, e.msg }

// readFleetBody reads the request body through the request's body gate,
// up to maxFleetBody.
func readFleetBody(ctx *fasthttp.RequestCtx, r *request) ([]byte, error) {
	size := ctx.Request.Header.ContentLength()
	src := ctx.RequestBodyStream()
	if size == 0 || src == nil {
		return nil, nil
	}
	if size > maxFleetBody {
		return nil, errFleetBody
	}
	b, err := io.ReadAll(io.LimitReader(r.GateBody(ctx, src, int64(size)), maxFleetBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFleetBody {
		return nil, errFleetBody
	}
	if err := r.CheckBody(b); err != nil { // the key's model allowlist
		return nil, err
	}
	return b, nil
}

// backendLine returns line (a JSON object) with a first member "backend"
// naming b.
func backendLine(b *proxy.Backend, line []byte) []byte {
	name, _ := json.Marshal(b.Name())
	out := make([]byte, 0, len(line)+len(name)+16)
	out = append(out, `{"backend":`...)
	out = append(out, name...)
	rest := bytes.TrimSpace(line)
	if len(rest) >= 2 && rest[0] == '{' {
		if inner := bytes.TrimSpace(rest[1:]); len(inner) > 0 && inner[0] != '}' {
			out = append(out, ',')
			out = append(out, inner...)
		} else {
			out = append(out, '}')
		}
	} else {
		out = append(out, '}')
	}
	return append(out, '\n')
}

// errorLine is Ollama's error line of a stream, {"error":msg}, with the
// backend member when b is not nil.
func errorLine(b *proxy.Backend, msg string) []byte {
	m, _ := json.Marshal(msg)
	line := append(append([]byte(`{"error":`), m...), '}')
	if b == nil {
		return append(line, '\n')
	}
	return backendLine(b, line)
}

// backendError returns the message of a backend's error answer: its
// {"error":...}, else its status.
func backendErrorOf(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	return fmt.Sprintf("status %d", resp.StatusCode)
}

// fleetDelete deletes on every backend at once and answers one line per
// backend, then the final one: 200 {"status":"success"} when it was
// deleted wherever it was, 404 when no backend had it, 502 with
// {"error":...} when a backend failed.
func (g *Gateway) fleetDelete(ctx *fasthttp.RequestCtx, backends []*proxy.Backend, body []byte) {
	type result struct {
		line     []byte
		notFound bool
		failed   string
	}
	results := make([]result, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		wg.Go(func() {
			if !b.Available() {
				results[i] = result{line: errorLine(b, "backend is down"), failed: "backend is down"}
				return
			}
			c, cancel := context.WithTimeout(g.ctx, fleetDeleteTimeout)
			defer cancel()
			resp, err := g.fleet.do(c, b, http.MethodDelete, "/api/delete", body)
			if err != nil {
				g.reportRefused(b, err)
				results[i] = result{line: errorLine(b, "backend unreachable"), failed: "backend unreachable"}
				return
			}
			defer resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				results[i] = result{line: backendLine(b, []byte(`{"status":"success"}`))}
			case resp.StatusCode == http.StatusNotFound:
				results[i] = result{line: errorLine(b, backendErrorOf(resp)), notFound: true}
			default:
				msg := backendErrorOf(resp)
				results[i] = result{line: errorLine(b, msg), failed: msg}
			}
		})
	}
	wg.Wait()
	var out bytes.Buffer
	notFound, failed := 0, []string{}
	var lastNotFound []byte
	for i, res := range results {
		out.Write(res.line)
		if res.notFound {
			notFound++
			lastNotFound = res.line
		}
		if res.failed != "" {
			failed = append(failed, backends[i].Name()+": "+res.failed)
		}
	}
	status := fasthttp.StatusOK
	switch {
	case len(failed) > 0:
		status = fasthttp.StatusBadGateway
		out.Write(errorLine(nil, fmt.Sprintf("delete failed on %d of %d backends: %s", len(failed), len(backends), strings.Join(failed, "; "))))
	case notFound == len(backends):
		status = fasthttp.StatusNotFound
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(lastNotFound, &e)
		out.Write(errorLine(nil, e.Error))
	default:
		out.WriteString(`{"status":"success"}` + "\n")
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/x-ndjson")
	ctx.SetBody(out.Bytes())
}

// fleetStream is the body of a fleet-wide pull: the backends' progress
// lines as they come, then the final line. The server reads it on the
// request's goroutine and closes it when done (or when the client left),
// which stops the pulls still running and finishes the request.
type fleetStream struct {
	lines   chan []byte
	done    chan struct{} // closed once every pull has ended and lines is closed
	cancel  context.CancelFunc
	pending []byte
	r       *request
	ctx     *fasthttp.RequestCtx
	idle    time.Duration
	bytes   int64
	closed  bool
}

// fleetPull starts the pull on every backend and returns the stream of
// their progress.
func (g *Gateway) fleetPull(backends []*proxy.Backend, body []byte, r *request, ctx *fasthttp.RequestCtx, idle time.Duration) *fleetStream {
	c, cancel := context.WithCancel(g.ctx)
	fs := &fleetStream{lines: make(chan []byte, 16), done: make(chan struct{}), cancel: cancel, r: r, ctx: ctx, idle: idle}
	send := func(line []byte) bool {
		select {
		case fs.lines <- line:
			return true
		case <-c.Done():
			return false
		}
	}
	failures := make([]string, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		wg.Go(func() { failures[i] = g.pullOn(c, b, body, send) })
	}
	go func() {
		wg.Wait()
		var failed []string
		for i, f := range failures {
			if f != "" {
				failed = append(failed, backends[i].Name()+": "+f)
			}
		}
		if len(failed) == 0 {
			send([]byte(`{"status":"success"}` + "\n"))
		} else {
			send(errorLine(nil, fmt.Sprintf("pull failed on %d of %d backends: %s", len(failed), len(backends), strings.Join(failed, "; "))))
		}
		close(fs.lines)
		close(fs.done)
	}()
	return fs
}

// pullOn pulls on one backend, passing its progress lines on through send,
// and returns "" on success or what failed.
func (g *Gateway) pullOn(ctx context.Context, b *proxy.Backend, body []byte, send func([]byte) bool) string {
	fail := func(msg string) string {
		send(errorLine(b, msg))
		return msg
	}
	if !b.Available() {
		return fail("backend is down")
	}
	resp, err := g.fleet.do(ctx, b, http.MethodPost, "/api/pull", body)
	if err != nil {
		if ctx.Err() != nil {
			return "canceled"
		}
		g.reportRefused(b, err)
		return fail("backend unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(backendErrorOf(resp))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4<<10), maxFleetLine)
	var last struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		last.Status, last.Error = "", ""
		_ = json.Unmarshal(line, &last)
		if !send(backendLine(b, line)) {
			return "canceled"
		}
		if last.Error != "" {
			return last.Error
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return "canceled"
		}
		return fail("stream cut: " + err.Error())
	}
	if last.Status != "success" {
		return fail("stream ended without success")
	}
	return ""
}

// Read passes the next lines on; io.EOF after the final one.
func (fs *fleetStream) Read(p []byte) (int, error) {
	if len(fs.pending) == 0 {
		line, ok := <-fs.lines
		if !ok {
			return 0, io.EOF
		}
		fs.pending = line
	}
	n := copy(p, fs.pending)
	fs.pending = fs.pending[n:]
	fs.bytes += int64(n)
	if fs.idle > 0 {
		// A client that stops reading cannot hold the pulls forever.
		_ = fs.ctx.SetWriteDeadline(time.Now().Add(fs.idle))
	}
	return n, nil
}

// Close stops the pulls still running (the client left, or all is
// written), waits for them and finishes the request.
func (fs *fleetStream) Close() error {
	if fs.closed {
		return nil
	}
	fs.closed = true
	fs.cancel()
	for range fs.lines { // unblocks nothing: senders select on the cancel
	}
	<-fs.done
	fs.r.Finish(&proxy.Result{Status: fasthttp.StatusOK, Start: fs.r.start, BytesOut: fs.bytes})
	return nil
}
