package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/config"
)

// bodyLimits are the limits on buffered request bodies of a snapshot.
type bodyLimits struct {
	total, perKey int64 // budgets, bytes
	maxBody       int64 // proxy.maxRequestBodyBytes
	minRate       int64 // bytes per second; 0 = no check
	idle          time.Duration
}

func newBodyLimits(p config.Proxy) bodyLimits {
	return bodyLimits{
		total:   p.BufferedBodyBudget(),
		perKey:  p.BufferedBodyBudgetPerKey(),
		maxBody: p.MaxRequestBodyBytes,
		minRate: p.MinRequestBodyBytesPerSecond,
		idle:    p.StreamIdleTimeout(),
	}
}

// defaultBodyGrace is how long a body may take before the minimum rate
// applies: connection set-up and TCP slow start.
const defaultBodyGrace = 10 * time.Second

// chunkedStep is how far ahead of the bytes read a chunked body, of unknown
// length, reserves its budget.
const chunkedStep = 64 << 10

// prefetched is how much of a body the fasthttp server reads with the
// headers (readBodyWithStreaming): a body this small is in memory already
// and is never slow.
const prefetched = 8 << 10

// bodyGate is the reader a buffered request body is read through (the
// request's proxy.BodyGate). It reserves the body's bytes in the gateway's
// budget (the announced length at once, a chunked body step by step ahead
// of its reads) and cuts a body that falls below the minimum average rate.
// It lives in the pooled request; the reservation is given back when the
// proxy is done with the body (request.handled).
type bodyGate struct {
	g        *Gateway
	ctx      *fasthttp.RequestCtx
	r        io.Reader
	id       [16]byte
	lim      bodyLimits
	size     int64 // announced, < 0 if chunked
	reserved int64
	n        int64 // bytes read
	start    time.Time
	grace    time.Duration
	err      *bodyRefusal // once refused
}

// GateBody implements proxy.BodyGate.
func (r *request) GateBody(ctx *fasthttp.RequestCtx, body io.Reader, size int64) io.Reader {
	gt := &r.gate
	*gt = bodyGate{g: r.g, ctx: ctx, r: body, lim: r.st.body, size: size, start: time.Now(), grace: r.g.bodyGrace}
	if r.key != nil {
		gt.id = r.key.ID
	}
	if size > 0 {
		gt.take(size)
	}
	return gt
}

// take reserves n more bytes, recording a refusal in gt.err.
func (gt *bodyGate) take(n int64) {
	if err := gt.g.bodies.reserve(gt.id, n, gt.lim.total, gt.lim.perKey); err != nil {
		gt.err = err
		return
	}
	gt.reserved += n
}

// release gives the reservation back.
func (gt *bodyGate) release() {
	if gt.g != nil {
		gt.g.bodies.release(gt.id, gt.reserved)
	}
	*gt = bodyGate{}
}

func (gt *bodyGate) Read(p []byte) (int, error) {
	if gt.err != nil {
		return 0, gt.err
	}
	if gt.size < 0 {
		// Chunked: reserve ahead and read no further than reserved. Past
		// the largest body the proxy's own limit stops the read.
		ahead := gt.reserved - gt.n
		if ahead <= 0 && gt.reserved < gt.lim.maxBody {
			gt.take(min(chunkedStep, gt.lim.maxBody-gt.reserved))
			if gt.err != nil {
				return 0, gt.err
			}
			ahead = gt.reserved - gt.n
		}
		if ahead > 0 && int64(len(p)) > ahead {
			p = p[:ahead]
		}
	}
	var due time.Time
	if gt.lim.minRate > 0 && (gt.size < 0 || gt.size > prefetched) {
		// The body must keep an average of minRate from its start, after
		// the grace: the read must bring more before due.
		due = gt.start.Add(gt.grace + time.Duration(float64(gt.n)/float64(gt.lim.minRate)*float64(time.Second)))
		now := time.Now()
		if !now.Before(due) {
			gt.err = errBodyTooSlow
			return 0, gt.err
		}
		deadline := due
		if gt.lim.idle > 0 && now.Add(gt.lim.idle).Before(due) {
			deadline = now.Add(gt.lim.idle)
		}
		_ = gt.ctx.SetReadDeadline(deadline)
	}
	n, err := gt.r.Read(p)
	gt.n += int64(n)
	// (EOF, the common end, first: isTimeout allocates.)
	if err != nil && err != io.EOF && !due.IsZero() && !time.Now().Before(due) && isTimeout(err) {
		gt.err = errBodyTooSlow
		return n, gt.err
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// withBodyGrace sets the grace before the minimum body rate applies
// (default 10 s): for tests.
func withBodyGrace(d time.Duration) Option { return func(g *Gateway) { g.bodyGrace = d } }
