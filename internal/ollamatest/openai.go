package ollamatest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Ollama answers OpenAI-compatible errors in two ways (middleware/openai.go):
// errors found by the middleware (a body that does not decode, no messages)
// are written by gin's c.JSON with a type that follows the status; errors
// of the handler behind it (no model, unknown model) are converted by the
// response writer, always with type "api_error", content type
// "application/json" and a trailing newline.

// writeOpenAIRequestError writes an error found by Ollama's OpenAI
// middleware.
func writeOpenAIRequestError(w http.ResponseWriter, code int, msg string) {
	typ := "api_error"
	switch code {
	case http.StatusBadRequest:
		typ = "invalid_request_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	}
	writeJSON(w, code, oaiError{Error: oaiErrorBody{Message: msg, Type: typ}})
}

// writeOpenAIHandlerError writes an error of the handler behind Ollama's
// OpenAI middleware.
func writeOpenAIHandlerError(w http.ResponseWriter, code int, msg string) {
	writeEncoded(w, code, oaiError{Error: oaiErrorBody{Message: msg, Type: "api_error"}})
}

// writeEncoded writes v the way Ollama's OpenAI writers do: content type
// "application/json" and a trailing newline (json.Encoder).
func writeEncoded(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("ollamatest: " + err.Error()) // the wire types always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// handleOpenAIChat is POST /v1/chat/completions.
func (s *Server) handleOpenAIChat(w http.ResponseWriter, r *http.Request) {
	var req oaiChatRequest
	if err := decodeBody(r, &req); err != nil {
		writeOpenAIRequestError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Messages) == 0 {
		writeOpenAIRequestError(w, http.StatusBadRequest, "[] is too short - 'messages'")
		return
	}
	if req.Model == "" {
		writeOpenAIHandlerError(w, http.StatusBadRequest, "model is required")
		return
	}
	m, ok := s.findModel(req.Model)
	if !ok {
		writeOpenAIHandlerError(w, http.StatusNotFound, modelNotFound(req.Model))
		return
	}
	adm, ok := s.acquire(w, r, m, nil, writeOpenAIHandlerError)
	if !ok {
		return
	}
	defer adm.release()

	id := fmt.Sprintf("chatcmpl-%d", rand.IntN(999))
	usage := oaiUsage{
		PromptTokens:     promptEvalCount,
		CompletionTokens: len(s.tokens),
		TotalTokens:      promptEvalCount + len(s.tokens),
	}
	stop := "stop"

	if !req.Stream {
		if !s.generate(r) {
			return
		}
		writeEncoded(w, http.StatusOK, oaiCompletion{
			ID:                id,
			Object:            "chat.completion",
			Created:           time.Now().Unix(),
			Model:             req.Model,
			SystemFingerprint: "fp_ollama",
			Choices: []oaiChoice{{
				Message:      oaiMessage{Role: "assistant", Content: strings.Join(s.tokens, "")},
				FinishReason: &stop,
			}},
			Usage: usage,
		})
		return
	}

	chunk := func(content string, finish *string) oaiChunk {
		return oaiChunk{
			ID:                id,
			Object:            "chat.completion.chunk",
			Created:           time.Now().Unix(),
			Model:             req.Model,
			SystemFingerprint: "fp_ollama",
			Choices: []oaiChunkChoice{{
				Delta:        oaiMessage{Role: "assistant", Content: content},
				FinishReason: finish,
			}},
		}
	}
	st := s.newStream(w, r, "text/event-stream")
	for _, tok := range s.tokens {
		if !st.writeEvent(chunk(tok, nil)) {
			return
		}
	}
	if !st.writeEvent(chunk("", &stop)) {
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		last := chunk("", &stop)
		last.Choices = []oaiChunkChoice{}
		last.Usage = &usage
		if !st.writeEvent(last) {
			return
		}
	}
	st.write([]byte("data: [DONE]\n\n"))
}

// handleOpenAIModels is GET /v1/models. As in Ollama, "data" is null when
// there is no model.
func (s *Server) handleOpenAIModels(w http.ResponseWriter, _ *http.Request) {
	var data []oaiModel
	for _, m := range s.modelList() {
		data = append(data, oaiModel{
			ID:      m.name,
			Object:  "model",
			Created: m.modified.Unix(),
			OwnedBy: namespaceOf(m.name),
		})
	}
	writeEncoded(w, http.StatusOK, oaiList{Object: "list", Data: data})
}

// namespaceOf is the namespace of a model name, "library" by default.
func namespaceOf(name string) string {
	parts := strings.Split(name, "/")
	if len(parts) >= 2 {
		return parts[len(parts)-2]
	}
	return "library"
}
