package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
	"github.com/ollamagw/ollama-gateway/proxy"
)

// gatedResults is a Finisher that is a BodyGate refusing every body.
type gatedResults struct {
	results
	sizes chan int64
}

func (g *gatedResults) GateBody(_ *fasthttp.RequestCtx, _ io.Reader, size int64) io.Reader {
	g.sizes <- size
	return refusingReader{}
}

type refusingReader struct{}

func (refusingReader) Read([]byte) (int, error) { return 0, refusal{} }

type refusal struct{}

func (refusal) Error() string             { return "test: refused" }
func (refusal) HTTPStatus() (int, string) { return http.StatusServiceUnavailable, "busy body" }

// TestBodyGateRefusal: a Finisher that is a BodyGate reads buffered bodies
// through its reader, and its StatusError is the client's answer. Streamed
// uploads are not gated.
func TestBodyGateRefusal(t *testing.T) {
	fake := ollamatest.New(t)
	fin := &gatedResults{results: results{done: make(chan struct{}, 4)}, sizes: make(chan int64, 4)}
	addr := serveProxy(t, fake.Addr(), proxy.BackendOptions{}, fin)

	body := `{"model":"llama3.2","messages":[]}`
	resp, err := http.Post("http://"+addr+"/api/chat", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	<-fin.done
	if resp.StatusCode != 503 || !strings.Contains(string(b), "busy body") {
		t.Errorf("gated body: %d %s; want 503 busy body", resp.StatusCode, b)
	}
	if got := <-fin.sizes; got != int64(len(body)) {
		t.Errorf("GateBody size %d; want %d", got, len(body))
	}
	resp, err = http.Post("http://"+addr+"/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2", "application/octet-stream", strings.NewReader("GGUF"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	<-fin.done
	if len(fin.sizes) != 0 {
		t.Errorf("a streamed upload (/api/blobs) went through the gate")
	}
	if fake.RequestsTo("/api/chat") != 0 {
		t.Error("a refused body reached the backend")
	}
}
