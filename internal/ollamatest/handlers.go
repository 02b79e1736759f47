package ollamatest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// version is the Ollama version the fake impersonates.
const version = "0.17.4"

// Fixed generation statistics; durations in nanoseconds.
const (
	promptEvalCount    = 26
	loadDuration       = 1_234_567
	promptEvalDuration = 2_345_678
	evalDuration       = 3_456_789
)

// blobsPrefix is the path of the blob routes, before the digest.
const blobsPrefix = "/api/blobs/"

// newRoutes returns the fixed routes: path → method → handler.
func (s *Server) newRoutes() map[string]map[string]http.HandlerFunc {
	getHead := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodGet: h, http.MethodHead: h}
	}
	post := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodPost: h}
	}
	return map[string]map[string]http.HandlerFunc{
		"/":                    getHead(s.handleRoot),
		"/api/version":         getHead(s.handleVersion),
		"/api/tags":            getHead(s.handleTags),
		"/api/ps":              {http.MethodGet: s.handlePs},
		"/api/chat":            post(s.handleChat),
		"/api/generate":        post(s.handleGenerate),
		"/api/embed":           post(s.handleEmbed),
		"/api/show":            post(s.handleShow),
		"/api/pull":            post(s.handlePull),
		"/v1/chat/completions": post(s.handleOpenAIChat),
		"/v1/models":           {http.MethodGet: s.handleOpenAIModels},
		// "/api/blobs/:digest"; lookup maps every digest here.
		blobsPrefix: {http.MethodPost: s.handleBlobPost, http.MethodHead: s.handleBlobHead},
	}
}

// lookup returns the handlers of a path, by method; nil if none.
func (s *Server) lookup(path string) map[string]http.HandlerFunc {
	if m, ok := s.routes[path]; ok && path != blobsPrefix {
		return m
	}
	if d, ok := strings.CutPrefix(path, blobsPrefix); ok && d != "" && !strings.Contains(d, "/") {
		return s.routes[blobsPrefix]
	}
	return nil
}

// route dispatches an Ollama request the way Ollama's gin router does:
// the handler after the access checks; a redirect for a known path with a
// trailing slash (301 for GET, 307 otherwise); 405 for a known path with
// another method; 404 otherwise. The access checks also guard 404 and 405.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	methods := s.lookup(r.URL.Path)
	if h := methods[r.Method]; h != nil {
		if s.admit(w, r) {
			h(w, r)
		}
		return
	}
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") && s.lookup(p[:len(p)-1])[r.Method] != nil {
		u := *r.URL
		u.Path = p[:len(p)-1]
		u.RawPath = ""
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet {
			code = http.StatusTemporaryRedirect
		}
		http.Redirect(w, r, u.String(), code)
		return
	}
	if !s.admit(w, r) {
		return
	}
	if len(methods) > 0 {
		writePlain(w, http.StatusMethodNotAllowed, "405 method not allowed")
		return
	}
	writePlain(w, http.StatusNotFound, "404 page not found")
}

// writePlain writes gin's plain-text router errors.
func writePlain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// writeJSON writes v the way gin's c.JSON does: no trailing newline.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("ollamatest: " + err.Error()) // the wire types always marshal
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeError writes Ollama's error body, {"error":msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// decodeBody decodes the JSON request body into v as gin's ShouldBindJSON
// does, then reads the rest of the body so that net/http starts watching
// the connection (and cancels the request context when the client leaves).
func decodeBody(r *http.Request, v any) error {
	err := json.NewDecoder(r.Body).Decode(v)
	_, _ = io.Copy(io.Discard, r.Body)
	return err
}

// bodyError is Ollama's message for a request body that did not decode.
func bodyError(err error) string {
	if errors.Is(err, io.EOF) {
		return "missing request body"
	}
	return err.Error()
}

// modelNotFound is the 404 message of /api/chat, /api/generate and
// /api/show in Ollama v0.17.4.
func modelNotFound(name string) string {
	return fmt.Sprintf("model '%s' not found", name)
}

// finalMetrics are the statistics of a finished generation that started at
// start: without a scheduler a fixed load_duration, with one the request's
// own wait for its model (which total_duration then holds already).
func (s *Server) finalMetrics(start time.Time, a admission) metrics {
	m := metrics{
		TotalDuration:      loadDuration + promptEvalDuration + evalDuration + int64(time.Since(start)),
		LoadDuration:       loadDuration,
		PromptEvalCount:    promptEvalCount,
		PromptEvalDuration: promptEvalDuration,
		EvalCount:          len(s.tokens),
		EvalDuration:       evalDuration,
	}
	if a.lease != nil {
		m.LoadDuration = int64(a.lease.LoadDuration())
		m.TotalDuration = promptEvalDuration + evalDuration + int64(time.Since(start))
	}
	return m
}

func (s *Server) handleRoot(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "Ollama is running")
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": version})
}

func (s *Server) handleTags(w http.ResponseWriter, _ *http.Request) {
	served := s.modelList()
	models := make([]listModel, 0, len(served))
	for _, m := range served {
		models = append(models, listModel{
			Name:       m.name,
			Model:      m.name,
			ModifiedAt: m.modified,
			Size:       modelSize,
			Digest:     m.digest,
			Details:    m.details(),
		})
	}
	writeJSON(w, http.StatusOK, struct {
		Models []listModel `json:"models"`
	}{models})
}

// handlePs is GET /api/ps: with a scheduler the loaded models, else every
// served model, expiring in 5 minutes.
func (s *Server) handlePs(w http.ResponseWriter, _ *http.Request) {
	if s.sched != nil {
		writeJSON(w, http.StatusOK, struct {
			Models []processModel `json:"models"`
		}{s.psModels()})
		return
	}
	expires := time.Now().Add(5 * time.Minute)
	served := s.modelList()
	models := make([]processModel, 0, len(served))
	for _, m := range served {
		models = append(models, processModel{
			Name:          m.name,
			Model:         m.name,
			Size:          modelSize,
			Digest:        m.digest,
			Details:       m.details(),
			ExpiresAt:     expires,
			SizeVRAM:      modelSize,
			ContextLength: 4096,
		})
	}
	writeJSON(w, http.StatusOK, struct {
		Models []processModel `json:"models"`
	}{models})
}

// handleChat is POST /api/chat.
func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req chatRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	m, ok := s.findModel(req.Model)
	if !ok {
		writeError(w, http.StatusNotFound, modelNotFound(req.Model))
		return
	}
	if len(req.Messages) == 0 {
		reason, ok := s.loadOnly(w, r, m, req.KeepAlive)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, chatResponse{
			Model:      req.Model,
			CreatedAt:  time.Now().UTC(),
			Message:    message{Role: "assistant"},
			Done:       true,
			DoneReason: reason,
		})
		return
	}

	adm, ok := s.acquire(w, r, m, req.KeepAlive, writeError)
	if !ok {
		return
	}
	defer adm.release()
	final := chatResponse{
		Model:      req.Model,
		Message:    message{Role: "assistant"},
		Done:       true,
		DoneReason: "stop",
	}
	if req.Stream != nil && !*req.Stream {
		if !s.generate(r) {
			return
		}
		final.CreatedAt = time.Now().UTC()
		final.Message.Content = strings.Join(s.tokens, "")
		final.metrics = s.finalMetrics(start, adm)
		writeJSON(w, http.StatusOK, final)
		return
	}

	st := s.newStream(w, r, "application/x-ndjson")
	for _, tok := range s.tokens {
		if !st.writeLine(chatResponse{
			Model:     req.Model,
			CreatedAt: time.Now().UTC(),
			Message:   message{Role: "assistant", Content: tok},
		}) {
			return
		}
	}
	final.CreatedAt = time.Now().UTC()
	final.metrics = s.finalMetrics(start, adm)
	st.writeLine(final)
}

// handleGenerate is POST /api/generate. As in Ollama v0.17.4, an empty
// model gets the 404 of an unknown model here, not 400.
func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req generateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	m, ok := s.findModel(req.Model)
	if !ok {
		writeError(w, http.StatusNotFound, modelNotFound(req.Model))
		return
	}
	if req.Prompt == "" {
		reason, ok := s.loadOnly(w, r, m, req.KeepAlive)
		if !ok {
			return
		}
		writeJSON(w, http.StatusOK, generateResponse{
			Model:      req.Model,
			CreatedAt:  time.Now().UTC(),
			Done:       true,
			DoneReason: reason,
		})
		return
	}

	adm, ok := s.acquire(w, r, m, req.KeepAlive, writeError)
	if !ok {
		return
	}
	defer adm.release()
	final := generateResponse{
		Model:      req.Model,
		Done:       true,
		DoneReason: "stop",
		Context:    []int{1, 2, 3},
	}
	if req.Stream != nil && !*req.Stream {
		if !s.generate(r) {
			return
		}
		final.CreatedAt = time.Now().UTC()
		final.Response = strings.Join(s.tokens, "")
		final.metrics = s.finalMetrics(start, adm)
		writeJSON(w, http.StatusOK, final)
		return
	}

	st := s.newStream(w, r, "application/x-ndjson")
	for _, tok := range s.tokens {
		if !st.writeLine(generateResponse{
			Model:     req.Model,
			CreatedAt: time.Now().UTC(),
			Response:  tok,
		}) {
			return
		}
	}
	final.CreatedAt = time.Now().UTC()
	final.metrics = s.finalMetrics(start, adm)
	st.writeLine(final)
}

// handleEmbed is POST /api/embed: every input gets [0.1, 0.2, 0.3].
func (s *Server) handleEmbed(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req embedRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	var inputs []string
	switch in := req.Input.(type) {
	case nil:
	case string:
		if in != "" {
			inputs = append(inputs, in)
		}
	case []any:
		for _, v := range in {
			str, ok := v.(string)
			if !ok {
				writeError(w, http.StatusBadRequest, "invalid input type")
				return
			}
			inputs = append(inputs, str)
		}
	default:
		writeError(w, http.StatusBadRequest, "invalid input type")
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	m, ok := s.findModel(req.Model)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", req.Model))
		return
	}
	// Without input Ollama loads the model and answers: no slot.
	adm, ok := s.schedule(w, r, m, req.KeepAlive, len(inputs) > 0, writeError)
	if !ok {
		return
	}
	defer adm.release()
	resp := embedResponse{Model: req.Model, Embeddings: [][]float32{}}
	if len(inputs) > 0 {
		for range inputs {
			resp.Embeddings = append(resp.Embeddings, []float32{0.1, 0.2, 0.3})
		}
		resp.TotalDuration = loadDuration + int64(time.Since(start))
		resp.LoadDuration = loadDuration
		if adm.lease != nil {
			resp.LoadDuration = int64(adm.lease.LoadDuration())
			resp.TotalDuration = int64(time.Since(start))
		}
		resp.PromptEvalCount = len(inputs)
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleShow is POST /api/show.
func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	var req showRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	name := cmp.Or(req.Model, req.Name)
	if name == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	m, ok := s.findModel(name)
	if !ok {
		writeError(w, http.StatusNotFound, modelNotFound(name))
		return
	}
	writeJSON(w, http.StatusOK, showResponse{
		License:    "fake license",
		Modelfile:  fmt.Sprintf("# Modelfile generated by \"ollama show\"\nFROM %s\nTEMPLATE \"\"\"{{ .Prompt }}\"\"\"\n", m.name),
		Parameters: `stop                           "<|eot_id|>"`,
		Template:   "{{ .Prompt }}",
		Details:    m.details(),
		ModelInfo: map[string]any{
			"general.architecture":       m.family,
			"general.parameter_count":    3212749888,
			m.family + ".context_length": 131072,
		},
		Capabilities: []string{"completion"},
		ModifiedAt:   m.modified,
	})
}

// handlePull is POST /api/pull: any valid name "pulls" at once, with the
// statuses "pulling manifest" and "success", and is then served and listed
// (first, as the most recently modified) like the models given to New.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	var req pullRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	name := cmp.Or(req.Model, req.Name)
	if name == "" {
		writeError(w, http.StatusBadRequest, "invalid model name")
		return
	}
	s.addModel(name)
	statuses := []string{"pulling manifest", "success"}
	if req.Stream != nil && !*req.Stream {
		writeJSON(w, http.StatusOK, progressResponse{Status: statuses[len(statuses)-1]})
		return
	}
	st := s.newStream(w, r, "application/x-ndjson")
	for _, status := range statuses {
		if !st.writeLine(progressResponse{Status: status}) {
			return
		}
	}
}

// digestPattern is the digest Ollama accepts in /api/blobs/:digest.
var digestPattern = regexp.MustCompile(`^sha256[:-][0-9a-fA-F]{64}$`)

// blobDigest returns the digest of a blob route and the key it is stored
// under ("sha256:<hex>"; Ollama stores "sha256-<hex>" files, so both
// spellings name the same blob). ok is false, after a 400 answer, for a
// malformed digest.
func blobDigest(w http.ResponseWriter, r *http.Request) (digest, key string, ok bool) {
	digest = strings.TrimPrefix(r.URL.Path, blobsPrefix)
	if !digestPattern.MatchString(digest) {
		writeError(w, http.StatusBadRequest, "invalid digest format")
		return "", "", false
	}
	return digest, "sha256:" + digest[len("sha256:"):], true
}

// handleBlobHead is HEAD /api/blobs/:digest.
func (s *Server) handleBlobHead(w http.ResponseWriter, r *http.Request) {
	digest, key, ok := blobDigest(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	have := s.blobs[key]
	s.mu.Unlock()
	if !have {
		writeError(w, http.StatusNotFound, fmt.Sprintf("blob %q not found", digest))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// handleBlobPost is POST /api/blobs/:digest. The body is hashed while it is
// read and never stored. As in Ollama, a blob that already exists is
// answered 200 without reading the body.
func (s *Server) handleBlobPost(w http.ResponseWriter, r *http.Request) {
	digest, key, ok := blobDigest(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	have := s.blobs[key]
	s.mu.Unlock()
	if have {
		w.WriteHeader(http.StatusOK)
		return
	}
	h := sha256.New()
	if _, err := io.Copy(h, &countingReader{r: r.Body, n: &s.blobBytes}); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if got != digest {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("digest mismatch, expected %q, got %q", digest, got))
		return
	}
	s.mu.Lock()
	s.blobs[key] = true
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// countingReader adds the bytes it reads to n as they are read.
type countingReader struct {
	r io.Reader
	n interface{ Add(int64) int64 }
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
