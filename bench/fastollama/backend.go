package fastollama

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
	"github.com/ollamagw/ollama-gateway/jsonfield"
	"github.com/valyala/fasthttp"
)

// BackendConfig configures a [Backend].
type BackendConfig struct {
	// Models are the models served, listed by /api/tags. A name without a
	// tag is served as name+":latest", and a request's model is read the
	// same way; no other folding.
	Models []string
	// Loaded are models loaded at start (they count for no load).
	Loaded []string
	// Scheduler is Ollama's scheduler configuration: parallel slots,
	// loaded models, queue, keep-alive, load delay (keyed by the name with
	// its tag). Start from scheduler.DefaultConfig().
	Scheduler scheduler.Config
}

// Backend is a fast fake Ollama with Ollama's scheduler
// (internal/ollamatest/scheduler) in front of its chat stream: for the
// fleet-scheduling benchmarks, where a request lands must cost what it
// costs on Ollama (a load, a wait for a slot), while the serving itself
// stays cheap. It serves
//   - GET/HEAD /: "Ollama is running"; /api/version: VersionBody;
//   - /api/tags: Models, in Ollama's shape;
//   - /api/ps: the loaded models, in Ollama's shape (expires_at, size_vram);
//   - /api/chat: the stream of [Handler] for the body's "model" (query
//     tokens, gap, hold as there), once the scheduler gives it a slot. Its
//     final line carries load_duration and total_duration; a full pending
//     queue answers 503 with Ollama's body before any other byte; a model
//     not served, 404;
//   - /api/generate with no prompt: Ollama's load request, answered
//     {"done":true,"done_reason":"load"} once the model is loaded (it takes
//     no slot); with a prompt, 400 (not served by this fake);
//   - GET /fastollama/loads: the scheduler's LoadCount, as a decimal
//     number (not Ollama's: for a harness that runs the backend in
//     another process).
//
// A client that leaves while its request waits is not seen (fasthttp gives
// no per-request cancel): the request keeps its place until served. Create
// it with [NewBackend]; it is safe for concurrent use.
type Backend struct {
	models []string
	sched  *scheduler.Scheduler
	tags   []byte
}

// NewBackend returns a Backend; it fails if a Loaded model is not served
// or too many are loaded.
func NewBackend(cfg BackendConfig) (*Backend, error) {
	b := &Backend{sched: scheduler.New(cfg.Scheduler)}
	for _, m := range cfg.Models {
		b.models = append(b.models, withTag(m))
	}
	for _, m := range cfg.Loaded {
		if !b.serves(withTag(m)) {
			return nil, errors.New("fastollama: loaded model " + strconv.Quote(m) + " is not served")
		}
		if err := b.sched.Preload(withTag(m)); err != nil {
			return nil, err
		}
	}
	tags := make([]tagModel, 0, len(b.models))
	for _, m := range b.models {
		tags = append(tags, tagModel{Name: m, Model: m, ModifiedAt: modifiedAt, Size: modelSize, Digest: digest(m), Details: details})
	}
	var err error
	if b.tags, err = json.Marshal(struct {
		Models []tagModel `json:"models"`
	}{tags}); err != nil {
		return nil, err
	}
	return b, nil
}

// Scheduler returns the backend's scheduler: its counters (Loads,
// LoadCount, Running, Queued, Pending, Loaded) and WaitFor.
func (b *Backend) Scheduler() *scheduler.Scheduler { return b.sched }

// Close ends every wait of the scheduler.
func (b *Backend) Close() { b.sched.Close() }

// Handler serves the backend's requests.
func (b *Backend) Handler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("Ollama is running")
	case "/api/version":
		ctx.SetContentType("application/json; charset=utf-8")
		ctx.SetBodyString(VersionBody)
	case "/api/tags":
		ctx.SetContentType("application/json; charset=utf-8")
		ctx.SetBody(b.tags)
	case "/api/ps":
		b.ps(ctx)
	case "/api/chat":
		b.chat(ctx)
	case "/api/generate":
		b.generate(ctx)
	case "/fastollama/loads":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(strconv.Itoa(b.sched.LoadCount()))
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

// chat is /api/chat behind the scheduler.
func (b *Backend) chat(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	raw, _ := jsonfield.AppendString(nil, ctx.PostBody(), "model")
	model := withTag(string(raw))
	if !b.serves(model) {
		writeError(ctx, fasthttp.StatusNotFound, "model '"+string(raw)+"' not found")
		return
	}
	lease, err := b.sched.Acquire(ctx, model, nil)
	if err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	args := ctx.QueryArgs()
	tokens, err := strconv.Atoi(string(args.Peek("tokens")))
	if err != nil || tokens < 1 {
		tokens = 1
	}
	gap, _ := time.ParseDuration(string(args.Peek("gap")))
	hold := string(args.Peek("hold")) == "1"
	ctx.SetContentType("application/x-ndjson")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer lease.Release()
		var line []byte
		for i := 0; hold || i < tokens; i++ {
			if !hold && i == tokens-1 {
				line = appendFinal(line[:0], model, tokens, lease.LoadDuration(), time.Since(start))
			} else {
				line = appendLine(line[:0], false, tokens)
			}
			if _, err := w.Write(line); err != nil || w.Flush() != nil {
				return
			}
			switch {
			case hold:
				time.Sleep(time.Second)
			case gap > 0 && i < tokens-1:
				time.Sleep(gap)
			}
		}
	})
}

// generate is /api/generate: only Ollama's load request (no prompt).
func (b *Backend) generate(ctx *fasthttp.RequestCtx) {
	raw, _ := jsonfield.AppendString(nil, ctx.PostBody(), "model")
	model := withTag(string(raw))
	if !b.serves(model) {
		writeError(ctx, fasthttp.StatusNotFound, "model '"+string(raw)+"' not found")
		return
	}
	if prompt, _ := jsonfield.AppendString(nil, ctx.PostBody(), "prompt"); len(prompt) > 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "fastollama: only the load request (no prompt) is served")
		return
	}
	lease, err := b.sched.Load(ctx, model, nil)
	if err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	lease.Release()
	body, _ := json.Marshal(struct {
		Model      string `json:"model"`
		CreatedAt  string `json:"created_at"`
		Response   string `json:"response"`
		Done       bool   `json:"done"`
		DoneReason string `json:"done_reason"`
	}{model, time.Now().UTC().Format(time.RFC3339Nano), "", true, "load"})
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(body)
}

// appendFinal appends the last NDJSON chat line, with Ollama's statistics.
func appendFinal(dst []byte, model string, tokens int, load, total time.Duration) []byte {
	dst = append(dst, `{"model":`...)
	dst = strconv.AppendQuote(dst, model)
	dst = append(dst, `,"message":{"role":"assistant","content":""},"sent":`...)
	dst = strconv.AppendInt(dst, time.Now().UnixNano(), 10)
	dst = append(dst, `,"done":true,"done_reason":"stop","total_duration":`...)
	dst = strconv.AppendInt(dst, int64(total), 10)
	dst = append(dst, `,"load_duration":`...)
	dst = strconv.AppendInt(dst, int64(load), 10)
	dst = append(dst, `,"eval_count":`...)
	dst = strconv.AppendInt(dst, int64(tokens), 10)
	return append(dst, "}\n"...)
}

// ps is /api/ps: the loaded models, the latest expiry first.
func (b *Backend) ps(ctx *fasthttp.RequestCtx) {
	loaded := b.sched.Loaded()
	models := make([]psModel, 0, len(loaded))
	for _, m := range loaded {
		models = append(models, psModel{
			Name: m.Name, Model: m.Name, Size: modelSize, Digest: digest(m.Name), Details: details,
			ExpiresAt: m.ExpiresAt, SizeVRAM: modelSize, ContextLength: 4096,
		})
	}
	body, _ := json.Marshal(struct {
		Models []psModel `json:"models"`
	}{models})
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(body)
}

// psModel is an entry of /api/ps (api.ProcessModelResponse).
type psModel struct {
	Name          string       `json:"name"`
	Model         string       `json:"model"`
	Size          int64        `json:"size"`
	Digest        string       `json:"digest"`
	Details       modelDetails `json:"details"`
	ExpiresAt     time.Time    `json:"expires_at"`
	SizeVRAM      int64        `json:"size_vram"`
	ContextLength int          `json:"context_length"`
}

// tagModel is an entry of /api/tags (api.ListModelResponse).
type tagModel struct {
	Name       string       `json:"name"`
	Model      string       `json:"model"`
	ModifiedAt time.Time    `json:"modified_at"`
	Size       int64        `json:"size"`
	Digest     string       `json:"digest"`
	Details    modelDetails `json:"details"`
}

// modelDetails is api.ModelDetails.
type modelDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// modelSize is the size of every model, on disk and in VRAM.
const modelSize = 2019393189

// modifiedAt is the modification time of every model.
var modifiedAt = time.Date(2025, time.November, 24, 10, 0, 0, 0, time.UTC)

var details = modelDetails{Format: "gguf", Family: "llama", Families: []string{"llama"}, ParameterSize: "3.2B", QuantizationLevel: "Q4_K_M"}

// digest is a stable stand-in for a model's digest.
func digest(model string) string {
	sum := sha256.Sum256([]byte(model))
	return hex.EncodeToString(sum[:])
}

// serves reports whether the backend serves model (with its tag).
func (b *Backend) serves(model string) bool {
	for _, m := range b.models {
		if m == model {
			return true
		}
	}
	return false
}

// withTag adds ":latest" to a name without a tag.
func withTag(name string) string {
	if strings.Contains(name[strings.LastIndexByte(name, '/')+1:], ":") {
		return name
	}
	return name + ":latest"
}

// writeError writes Ollama's {"error":msg} with status code.
func writeError(ctx *fasthttp.RequestCtx, code int, msg string) {
	body, _ := json.Marshal(map[string]string{"error": msg})
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(body)
}
