package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// getJSON GETs url (with the test key) and decodes the answer into v,
// returning the status.
func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := httpClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

// modelsByName fetches a {"models":[...]} list and returns each entry,
// decoded field by field, by its name; drop names fields left out.
func modelsByName(t testing.TB, url string, drop ...string) (map[string]map[string]any, []string) {
	t.Helper()
	var list struct {
		Models []map[string]any `json:"models"`
	}
	if status := getJSON(t, url, &list); status != 200 {
		t.Fatalf("GET %s: %d", url, status)
	}
	out := map[string]map[string]any{}
	var order []string
	for _, m := range list.Models {
		for _, d := range drop {
			delete(m, d)
		}
		name, _ := m["name"].(string)
		if _, dup := out[name]; dup {
			t.Errorf("GET %s: %q listed twice", url, name)
		}
		out[name] = m
		order = append(order, name)
	}
	return out, order
}

// threeBackends starts three fakes with different models, one shared, in
// front of a gateway that knows their lists.
func threeBackends(t *testing.T, mutate func(*config.Config)) (*testGateway, []*ollamatest.Server) {
	t.Helper()
	fakes := []*ollamatest.Server{
		ollamatest.New(t, ollamatest.WithModels("llama3.2", "qwen2.5:0.5b")),
		ollamatest.New(t, ollamatest.WithModels("qwen2.5:0.5b", "nomic-embed-text")),
		ollamatest.New(t, ollamatest.WithModels("mistral:7b", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")),
	}
	gw := startGateway(t, mutate, fakes[0].URL, fakes[1].URL, fakes[2].URL)
	waitModels(t, gw)
	return gw, fakes
}

var fleetNames = []string{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "llama3.2:latest",
	"mistral:7b", "nomic-embed-text:latest", "qwen2.5:0.5b"}

// TestMergedViews: with three backends of different models, /api/tags and
// /api/ps list the union, one entry per model, each entry the very one a
// backend serves (Ollama's shape, field by field); /v1/models and
// /v1/models/{model} the same in OpenAI's shape. Before, the gateway
// answered with one backend's list.
func TestMergedViews(t *testing.T) {
	gw, fakes := threeBackends(t, nil)

	for _, v := range []struct {
		path string
		drop []string // fields that change at each answer
	}{
		{"/api/tags", nil},
		{"/api/ps", []string{"expires_at"}},
	} {
		got, order := modelsByName(t, gw.URL+v.path, v.drop...)
		if names := slices.Sorted(func(yield func(string) bool) {
			for n := range got {
				if !yield(n) {
					return
				}
			}
		}); !slices.Equal(names, fleetNames) {
			t.Errorf("%s lists %q; want %q", v.path, names, fleetNames)
		}
		for _, f := range fakes {
			served, _ := modelsByName(t, f.URL+v.path, v.drop...)
			for name, want := range served {
				if !reflect.DeepEqual(got[name], want) {
					t.Errorf("%s entry %q:\n got %v\nwant %v", v.path, name, got[name], want)
				}
			}
		}
		if len(order) != len(fleetNames) {
			t.Errorf("%s: %d entries; want %d", v.path, len(order), len(fleetNames))
		}
	}

	// The real client sees the fleet too.
	c := api.NewClient(mustURL(t, gw.URL), httpClient())
	list, err := c.List(context.Background())
	if err != nil || len(list.Models) != len(fleetNames) {
		t.Fatalf("client List: %v, %d models; want %d", err, len(list.Models), len(fleetNames))
	}

	// OpenAI's shape: each entry as the backend that has the model serves
	// it on its own /v1/models.
	type oaiModel struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	type oaiList struct {
		Object string     `json:"object"`
		Data   []oaiModel `json:"data"`
	}
	var merged oaiList
	if status := getJSON(t, gw.URL+"/v1/models", &merged); status != 200 || merged.Object != "list" {
		t.Fatalf("/v1/models: %d object %q; want 200 list", status, merged.Object)
	}
	byID := map[string]oaiModel{}
	for _, m := range merged.Data {
		byID[m.ID] = m
	}
	if len(byID) != len(fleetNames) || len(merged.Data) != len(fleetNames) {
		t.Errorf("/v1/models: %d entries; want %d", len(merged.Data), len(fleetNames))
	}
	for _, f := range fakes {
		var own oaiList
		getJSON(t, f.URL+"/v1/models", &own)
		for _, want := range own.Data {
			if got := byID[want.ID]; got != want {
				t.Errorf("/v1/models %q: got %+v; want %+v", want.ID, got, want)
			}
		}
	}

	for _, tt := range []struct {
		name   string
		status int
		want   oaiModel
	}{
		{"mistral:7b", 200, oaiModel{ID: "mistral:7b", Object: "model", Created: byID["mistral:7b"].Created, OwnedBy: "library"}},
		{"llama3.2", 200, oaiModel{ID: "llama3.2", Object: "model", Created: byID["llama3.2:latest"].Created, OwnedBy: "library"}},
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", 200, oaiModel{ID: "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
			Object: "model", Created: byID["hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"].Created, OwnedBy: "bartowski"}},
	} {
		var got oaiModel
		if status := getJSON(t, gw.URL+"/v1/models/"+tt.name, &got); status != tt.status || got != tt.want {
			t.Errorf("/v1/models/%s: %d %+v; want %d %+v", tt.name, status, got, tt.status, tt.want)
		}
	}
	var notFound struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if status := getJSON(t, gw.URL+"/v1/models/nope", &notFound); status != 404 ||
		notFound.Error.Message != "model 'nope' not found" || notFound.Error.Type != "api_error" {
		t.Errorf("/v1/models/nope: %d %+v; want 404 model 'nope' not found, api_error", status, notFound)
	}

	// The lists come from the inventory: no request reached a backend's
	// /api/tags or /v1/models for them but the checks'.
	for i, f := range fakes {
		if n := f.RequestsTo("/v1/models"); n != 1 {
			t.Errorf("backend %d: %d /v1/models requests; want the test's own 1", i, n)
		}
	}
}

// TestMergedViewDeadBackend: a backend that stops answering leaves the
// union at its failed check; the others' models stay.
func TestMergedViewDeadBackend(t *testing.T) {
	gw, fakes := threeBackends(t, func(c *config.Config) {
		c.LoadBalancer.HealthCheckIntervalInSeconds = 1
		c.LoadBalancer.FailThreshold = 1
	})
	fakes[2].Close()
	eventually(t, "the dead backend's models gone from /api/tags", func() bool {
		got, _ := modelsByName(t, gw.URL+"/api/tags")
		return len(got) == 3
	})
	got, _ := modelsByName(t, gw.URL+"/api/tags")
	for _, name := range []string{"llama3.2:latest", "qwen2.5:0.5b", "nomic-embed-text:latest"} {
		if got[name] == nil {
			t.Errorf("/api/tags lost %q of a live backend", name)
		}
	}
	ps, _ := modelsByName(t, gw.URL+"/api/ps")
	if ps["mistral:7b"] != nil || len(ps) != 3 {
		t.Errorf("/api/ps lists %d models, mistral:7b %v; want 3, gone", len(ps), ps["mistral:7b"] != nil)
	}
	var oai struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	getJSON(t, gw.URL+"/v1/models", &oai)
	if len(oai.Data) != 3 {
		t.Errorf("/v1/models lists %d models; want 3", len(oai.Data))
	}
	if status := getJSON(t, gw.URL+"/v1/models/mistral:7b", new(map[string]any)); status != http.StatusNotFound {
		t.Errorf("/v1/models/mistral:7b of the dead backend: %d; want 404", status)
	}
}

// TestSingleBackendViewsPassThrough: with one backend the lists are its
// own answers, forwarded.
func TestSingleBackendViewsPassThrough(t *testing.T) {
	fake := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	gw := startGateway(t, nil, fake.URL)
	for _, path := range []string{"/api/tags", "/api/ps", "/v1/models"} {
		before := fake.RequestsTo(path)
		if status, _, body := get(t, gw.URL+path); status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		if fake.RequestsTo(path) != before+1 {
			t.Errorf("%s did not reach the single backend", path)
		}
	}
}

// TestMergedViewLiveWhileUnknown: a backend whose list is not known (not
// fetched yet, or forgotten) is asked live, once per listing, so its models
// are not missing from the union.
func TestMergedViewLiveWhileUnknown(t *testing.T) {
	gw, fakes := threeBackends(t, nil)
	backendOf(t, gw, fakes[1].URL).ForgetModels()
	before := []int64{fakes[0].RequestsTo("/api/tags"), fakes[1].RequestsTo("/api/tags")}
	got, _ := modelsByName(t, gw.URL+"/api/tags")
	if len(got) != len(fleetNames) || got["nomic-embed-text:latest"] == nil {
		t.Errorf("/api/tags lists %d models, nomic-embed-text %v; want %d, listed", len(got), got["nomic-embed-text:latest"] != nil, len(fleetNames))
	}
	if d0, d1 := fakes[0].RequestsTo("/api/tags")-before[0], fakes[1].RequestsTo("/api/tags")-before[1]; d0 != 0 || d1 != 1 {
		t.Errorf("/api/tags requests: known backend %d, unknown one %d; want 0, 1", d0, d1)
	}
}

// waitLoaded waits until the gateway knows the /api/ps list of every
// backend (the first health check fetches it).
func waitLoaded(t testing.TB, gw *testGateway) {
	t.Helper()
	eventually(t, "loaded lists fetched", func() bool {
		for _, b := range gw.gw.Snapshot().Proxy.Pool().Backends() {
			if b.Loaded() == nil {
				return false
			}
		}
		return true
	})
}

// TestMergedPsFromInventory: with three backends the merged /api/ps comes
// from the loaded lists the health checks keep, each entry as its backend
// lists it: no request reaches a backend's /api/ps on the request path.
// Before, every GET /api/ps fanned out to every backend. A backend whose
// list is unknown (forgotten) is asked live, once per listing.
func TestMergedPsFromInventory(t *testing.T) {
	gw, fakes := threeBackends(t, nil)
	waitLoaded(t, gw)
	before := make([]int64, len(fakes))
	for i, f := range fakes {
		before[i] = f.RequestsTo("/api/ps")
	}
	const listings = 3
	for range listings {
		// The fake's expires_at is now + keep-alive at each answer:
		// the gateway's is the one its check was given.
		got, _ := modelsByName(t, gw.URL+"/api/ps", "expires_at")
		if len(got) != len(fleetNames) {
			t.Errorf("/api/ps lists %d models; want %d", len(got), len(fleetNames))
		}
		for i, f := range fakes {
			served, _ := modelsByName(t, f.URL+"/api/ps", "expires_at")
			for name, want := range served {
				if !reflect.DeepEqual(got[name], want) {
					t.Errorf("/api/ps entry %q of backend %d:\n got %v\nwant %v", name, i, got[name], want)
				}
			}
		}
	}
	for i, f := range fakes {
		// Each listing above also asked each fake once, directly.
		if d := f.RequestsTo("/api/ps") - before[i]; d != listings {
			t.Errorf("backend %d: %d /api/ps requests during %d listings; want only the test's own %d", i, d, listings, listings)
		}
	}

	backendOf(t, gw, fakes[1].URL).ForgetLoaded()
	before[0], before[1] = fakes[0].RequestsTo("/api/ps"), fakes[1].RequestsTo("/api/ps")
	got, _ := modelsByName(t, gw.URL+"/api/ps")
	if len(got) != len(fleetNames) || got["nomic-embed-text:latest"] == nil {
		t.Errorf("/api/ps lists %d models, nomic-embed-text %v; want %d, listed", len(got), got["nomic-embed-text:latest"] != nil, len(fleetNames))
	}
	if d0, d1 := fakes[0].RequestsTo("/api/ps")-before[0], fakes[1].RequestsTo("/api/ps")-before[1]; d0 != 0 || d1 != 1 {
		t.Errorf("/api/ps requests: known backend %d, unknown one %d; want 0, 1", d0, d1)
	}
}
