package ollamatest

import (
	"encoding/json"
	"net/http"
	"time"
)

// stream writes the chunks of one streamed response: it waits for each
// chunk's turn (delay, pace), writes it, flushes it, and reports a client
// that went away.
type stream struct {
	s    *Server
	w    http.ResponseWriter
	rc   *http.ResponseController
	done <-chan struct{} // the request's context
	n    int             // chunks written
}

// newStream sets the content type of a streamed response. The caller must
// have read the request body to its end, so that net/http watches the
// connection and cancels the request's context when the client leaves.
func (s *Server) newStream(w http.ResponseWriter, r *http.Request, contentType string) *stream {
	w.Header().Set("Content-Type", contentType)
	st := &stream{s: s, w: w, rc: http.NewResponseController(w), done: r.Context().Done()}
	if s.immediateHeaders {
		w.WriteHeader(http.StatusOK)
		_ = st.rc.Flush() // a failure shows on the first chunk
	}
	return st
}

// writeLine writes v as one NDJSON line.
func (st *stream) writeLine(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		panic("ollamatest: " + err.Error()) // the wire types always marshal
	}
	return st.write(append(b, '\n'))
}

// writeEvent writes v as one SSE event, "data: <json>\n\n".
func (st *stream) writeEvent(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		panic("ollamatest: " + err.Error())
	}
	return st.write([]byte("data: " + string(b) + "\n\n"))
}

// write waits for the chunk's turn, then writes and flushes b. It returns
// false if the client went away (the abort is then reported) or the server
// is closing; the handler must stop.
func (st *stream) write(b []byte) bool {
	if st.n > 0 && st.s.delay > 0 && !st.s.sleep(st.done, st.s.delay) {
		return st.fail()
	}
	if st.s.paced && !st.s.pace.acquire(st.done, st.s.closing) {
		return st.fail()
	}
	select {
	case <-st.done:
		return st.fail()
	default:
	}
	if _, err := st.w.Write(b); err != nil {
		return st.fail()
	}
	if err := st.rc.Flush(); err != nil {
		return st.fail()
	}
	st.n++
	return true
}

// fail reports an abort unless the server itself is closing.
func (st *stream) fail() bool {
	select {
	case <-st.s.closing:
	default:
		st.s.reportAbort()
	}
	return false
}

// sleep waits for d, or until done or the server closes. It reports whether
// the whole wait elapsed.
func (s *Server) sleep(done <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	case <-s.closing:
		return false
	}
}

// generate stands for the generation of a non-streamed reply: it waits the
// token delay for every token. It returns false, having reported the
// abort, if the client went away meanwhile.
func (s *Server) generate(r *http.Request) bool {
	if s.sleep(r.Context().Done(), s.delay*time.Duration(len(s.tokens))) {
		return true
	}
	select {
	case <-s.closing:
	default:
		s.reportAbort()
	}
	return false
}
