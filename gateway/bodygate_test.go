package gateway

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/access"
)

// TestBodyGateNoAllocs: gating a body (reserve, paced reads with their
// deadline, release) allocates nothing per request.
func TestBodyGateNoAllocs(t *testing.T) {
	ln := listen(t)
	accepted := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
		}
		<-accepted
	}()
	defer close(accepted)
	conn := dialTCP(t, ln.Addr().String())
	var ctx fasthttp.RequestCtx
	ctx.Init2(conn, nil, false)

	g := &Gateway{bodyGrace: time.Second}
	st := &Snapshot{body: bodyLimits{total: 1 << 30, perKey: 1 << 30, maxBody: 1 << 20, minRate: 1, idle: time.Minute}}
	key := &access.Key{ID: [16]byte{1}}
	data := bytes.Repeat([]byte("x"), 100_000)
	src := bytes.NewReader(data)
	buf := make([]byte, 16<<10)
	r := &request{}
	for _, size := range []int64{int64(len(data)), -1} {
		allocs := testing.AllocsPerRun(200, func() {
			*r = request{g: g, st: st, key: key}
			src.Reset(data)
			rd := r.GateBody(&ctx, src, size)
			for {
				if _, err := rd.Read(buf); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
			}
			r.gate.release()
		})
		if allocs != 0 {
			t.Errorf("size %d: %v allocations per gated body; want 0", size, allocs)
		}
	}
	if g.BufferedBodyBytes() != 0 {
		t.Errorf("bytes held after release: %d", g.BufferedBodyBytes())
	}
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
