package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	json "github.com/goccy/go-json"
)

// ModelTarget is a Target that also keeps the list of models its backend
// has, for model-aware routing. *proxy.Backend implements it. See
// Options.Models.
type ModelTarget interface {
	Target
	// SetModelList records the model names the backend lists (each
	// entry's "name", and its "model" when that differs) and the raw
	// entries of its list, each a JSON object as Ollama wrote it, and
	// reports whether its list changed. Calls for one target are made one
	// at a time, from the Checker's goroutines.
	SetModelList(names []string, entries []json.RawMessage) (changed bool)
	// ForgetModels makes the backend's model list unknown and reports
	// whether it was known.
	ForgetModels() (changed bool)
}

// Bounds on model list fetches.
const (
	// forgetModelsAfter failed fetches in a row make a model list unknown:
	// a list that cannot be refreshed for that long may be wrong (a model
	// removed since), and an unknown list only loses the preference.
	forgetModelsAfter = 3
	// maxModelsBody bounds the answer read: about 500 bytes per model
	// (with its details) for 1,000 models, with room to spare. A larger
	// answer is a failed fetch.
	maxModelsBody = 8 << 20
)

// errModelsList is wrapped by fetch failures that are not network errors.
var errModelsList = errors.New("health: bad model list")

// refreshModels fetches the model list of ts and records it, or counts the
// failure. It is called after a successful check.
func (c *Checker) refreshModels(ctx context.Context, ts *target) {
	names, entries, err := c.fetchModels(ctx, ts.modelsURL)
	if ctx.Err() != nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err != nil {
		ts.modelFails = min(ts.modelFails+1, forgetModelsAfter)
		if ts.modelFails == forgetModelsAfter && ts.mt.ForgetModels() {
			c.log.Warn("backend model list unknown", "backend", ts.name, "failures", forgetModelsAfter, "err", err)
		}
		return
	}
	ts.modelFails = 0
	if ts.mt.SetModelList(names, entries) {
		c.log.Info("backend models", "backend", ts.name, "models", len(names))
	}
}

// fetchModels requests url (a backend's ollamaapi.LocalModelsPath),
// bounded by c.timeout, and returns the names it lists (each entry's
// "name", and its "model" when that differs) and its raw entries.
func (c *Checker) fetchModels(ctx context.Context, url string) (names []string, entries []json.RawMessage, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, nil, errors.New(failureReason(err, c.timeout))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return nil, nil, errors.New("status " + strconv.Itoa(resp.StatusCode))
	}
	var list struct {
		Models *[]json.RawMessage `json:"models"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxModelsBody)).Decode(&list); err != nil {
		if ctx.Err() != nil {
			return nil, nil, errors.New(failureReason(ctx.Err(), c.timeout))
		}
		return nil, nil, fmt.Errorf("%w: %w", errModelsList, err)
	}
	if list.Models == nil {
		return nil, nil, fmt.Errorf(`%w: no "models" member`, errModelsList)
	}
	// Read what may follow the value, so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	entries = *list.Models
	names = make([]string, 0, len(entries))
	for _, raw := range entries {
		var m struct {
			Name  string `json:"name"`
			Model string `json:"model"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			// Not an object: Ollama never lists one; skip it, as an
			// entry without a name.
			continue
		}
		if m.Name != "" {
			names = append(names, m.Name)
		}
		if m.Model != "" && m.Model != m.Name {
			names = append(names, m.Model)
		}
	}
	return names, entries, nil
}
