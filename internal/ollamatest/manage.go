package ollamatest

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Model management beyond pull: POST /api/create from uploaded blobs,
// POST /api/copy and DELETE /api/delete, as Ollama v0.17.4 answers them
// (server/create.go, server/routes.go).

// addManageRoutes registers the model management routes.
func (s *Server) addManageRoutes() {
	s.routes["/api/create"] = map[string]http.HandlerFunc{http.MethodPost: s.handleCreate}
	s.routes["/api/delete"] = map[string]http.HandlerFunc{http.MethodDelete: s.handleDelete}
	s.routes["/api/copy"] = map[string]http.HandlerFunc{http.MethodPost: s.handleCopy}
}

// handleCopy is POST /api/copy {"source","destination"}: 200 with an empty
// body, the destination then served and listed; 400 without both names,
// 404 for a source not served.
func (s *Server) handleCopy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Source      string `json:"source"`
		Destination string `json:"destination"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	if req.Source == "" || req.Destination == "" {
		writeError(w, http.StatusBadRequest, "source and destination are required")
		return
	}
	if _, ok := s.findModel(req.Source); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Source))
		return
	}
	s.addModel(req.Destination)
	w.WriteHeader(http.StatusOK)
}

// createRequest is the part of api.CreateRequest the fake reads.
type createRequest struct {
	Model    string            `json:"model"`
	Name     string            `json:"name"`
	Stream   *bool             `json:"stream,omitempty"`
	From     string            `json:"from,omitempty"`
	Files    map[string]string `json:"files,omitempty"`
	Adapters map[string]string `json:"adapters,omitempty"`
}

// deleteRequest is the part of api.DeleteRequest the fake reads.
type deleteRequest struct {
	Model string `json:"model"`
	Name  string `json:"name"`
}

// handleCreate is POST /api/create: a model from blobs uploaded before
// (files and adapters name them by digest) or from a served model (from).
// As in Ollama, it streams its progress, and a missing blob or base model
// is an error line in the stream. The model is then served and listed.
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	name := cmp.Or(req.Model, req.Name)
	if name == "" {
		writeError(w, http.StatusBadRequest, "invalid model name")
		return
	}
	var digests []string
	for _, m := range []map[string]string{req.Files, req.Adapters} {
		for _, d := range m {
			digests = append(digests, d)
		}
	}
	slices.Sort(digests)
	var failure string
	for _, d := range digests {
		key := "sha256:" + strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(d, "sha256:"), "sha256-"))
		s.mu.Lock()
		have := s.blobs[key]
		s.mu.Unlock()
		if !have {
			failure = fmt.Sprintf("open /root/.ollama/models/blobs/%s: no such file or directory", strings.Replace(key, ":", "-", 1))
			break
		}
	}
	if failure == "" && len(digests) == 0 {
		if _, ok := s.findModel(req.From); !ok {
			failure = fmt.Sprintf("model '%s' not found", req.From)
		}
	}
	if failure == "" {
		s.addModel(name)
	}
	if req.Stream != nil && !*req.Stream {
		if failure != "" {
			writeError(w, http.StatusBadRequest, failure)
			return
		}
		writeJSON(w, http.StatusOK, progressResponse{Status: "success"})
		return
	}
	st := s.newStream(w, r, "application/x-ndjson")
	if !st.writeLine(progressResponse{Status: "parsing GGUF"}) {
		return
	}
	if failure != "" {
		st.writeLine(map[string]string{"error": failure})
		return
	}
	for _, d := range digests {
		if !st.writeLine(progressResponse{Status: "using existing layer " + d}) {
			return
		}
	}
	for _, status := range []string{"writing manifest", "success"} {
		if !st.writeLine(progressResponse{Status: status}) {
			return
		}
	}
}

// handleDelete is DELETE /api/delete: 200 with an empty body, or 404.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	var req deleteRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, bodyError(err))
		return
	}
	name := cmp.Or(req.Model, req.Name)
	if name == "" {
		writeError(w, http.StatusBadRequest, `name "" is invalid`)
		return
	}
	key := canonicalName(name)
	s.modelsMu.Lock()
	kept := make([]modelInfo, 0, len(s.models))
	for _, m := range s.models {
		if m.key != key {
			kept = append(kept, m)
		}
	}
	found := len(kept) < len(s.models)
	if found {
		s.models = kept
	}
	s.modelsMu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", name))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// HasModel reports whether the server serves the model name now (given
// to New, pulled, or created, and not deleted).
func (s *Server) HasModel(name string) bool {
	_, ok := s.findModel(name)
	return ok
}

// HasBlob reports whether a blob of digest ("sha256:<hex>") was uploaded.
func (s *Server) HasBlob(digest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blobs[digest]
}
