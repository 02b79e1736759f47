package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
)

// LoadedTarget is a Target that also keeps what its backend has loaded in
// memory, for fleet scheduling and the merged GET /api/ps. *proxy.Backend
// implements it. See Options.Loaded.
type LoadedTarget interface {
	Target
	// SetLoaded records the entries of the backend's GET /api/ps (each
	// one JSON object of its "models" array, as sent) whose fetch began
	// at fetched. Calls for one target are made one at a time, from the
	// Checker's goroutines.
	SetLoaded(entries []json.RawMessage, fetched time.Time)
	// ForgetLoaded makes the backend's loaded models unknown.
	ForgetLoaded()
}

// refreshLoaded fetches the /api/ps list of ts and records it; after
// forgetModelsAfter failures in a row it makes the list unknown. It is
// called after a successful check, never on the request path.
func (c *Checker) refreshLoaded(ctx context.Context, ts *target) {
	fetched := time.Now()
	entries, err := c.fetchLoaded(ctx, ts.psURL)
	if ctx.Err() != nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err != nil {
		ts.psFails = min(ts.psFails+1, forgetModelsAfter)
		if ts.psFails == forgetModelsAfter {
			ts.lt.ForgetLoaded()
		}
		return
	}
	ts.psFails = 0
	ts.lt.SetLoaded(entries, fetched)
}

// fetchLoaded requests url (a backend's ollamaapi.RunningModelsPath),
// bounded by c.timeout and maxModelsBody, and returns the entries of its
// "models" array as sent.
func (c *Checker) fetchLoaded(ctx context.Context, url string) ([]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, errors.New(failureReason(err, c.timeout))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return nil, errors.New("status " + strconv.Itoa(resp.StatusCode))
	}
	var list struct {
		Models *[]json.RawMessage `json:"models"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxModelsBody)).Decode(&list); err != nil {
		if ctx.Err() != nil {
			return nil, errors.New(failureReason(ctx.Err(), c.timeout))
		}
		return nil, fmt.Errorf("%w: %w", errModelsList, err)
	}
	if list.Models == nil {
		return nil, fmt.Errorf(`%w: no "models" member`, errModelsList)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return *list.Models, nil
}
