package ollamatest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// serveTest serves the paths under /_test/, which are not Ollama's. They
// take any method and skip Ollama's access checks.
func (s *Server) serveTest(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_test/echo":
		s.handleEcho(w, r)
	case "/_test/bytes":
		handleBytes(w, r)
	case "/_test/status":
		handleStatus(w, r)
	default:
		writePlain(w, http.StatusNotFound, "404 page not found")
	}
}

// handleEcho answers a description of the request as received: method,
// request URI (path and query exactly as sent), Host, protocol, headers,
// declared Content-Length (-1 if unknown), transfer encodings, and the
// length and SHA-256 of the body, which is hashed while it is read.
func (s *Server) handleEcho(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	te := r.TransferEncoding
	if te == nil {
		te = []string{}
	}
	writeJSON(w, http.StatusOK, echoResponse{
		Method:           r.Method,
		RequestURI:       r.RequestURI,
		Host:             r.Host,
		Proto:            r.Proto,
		Headers:          r.Header,
		ContentLength:    r.ContentLength,
		TransferEncoding: te,
		BodyLen:          n,
		BodySHA256:       hex.EncodeToString(h.Sum(nil)),
	})
}

// handleBytes answers ?n=N bytes of DeterministicBytes with a
// Content-Length, generated as they are written.
func handleBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, "n must be a non-negative integer")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 32<<10)
	for i := int64(0); i < n; {
		m := min(int64(len(buf)), n-i)
		for j := range m {
			buf[j] = deterministicByte(i + j)
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return
		}
		i += m
	}
}

// handleStatus answers ?code=N (200–599) with body {"error":"status N"}.
func handleStatus(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("code"))
	if err != nil || code < 200 || code > 599 {
		writeError(w, http.StatusBadRequest, "code must be an HTTP status from 200 to 599")
		return
	}
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code) // no body allowed
		return
	}
	writeError(w, code, fmt.Sprintf("status %d", code))
}

// DeterministicBytes returns the n bytes that GET /_test/bytes?n=n answers:
// byte i is byte(i*7 + i>>8).
func DeterministicBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = deterministicByte(int64(i))
	}
	return b
}

func deterministicByte(i int64) byte { return byte(i*7 + i>>8) }
