package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// fleetLine is one line of a fleet-wide answer.
type fleetLine struct {
	Backend string `json:"backend"`
	Status  string `json:"status"`
	Error   string `json:"error"`
}

// fleetCall sends method path with body and returns the status, the
// content type and the NDJSON lines of the answer.
func fleetCall(t testing.TB, method, url, auth, body string) (int, string, []fleetLine) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := clientWithKey(auth).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []fleetLine
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var l fleetLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("%s %s: line %d: %v", method, url, len(lines), err)
		}
		lines = append(lines, l)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), lines
}

// TestFleetWidePullAndDelete: POST /api/pull?fleet=all pulls on every
// backend, streaming each one's progress in Ollama's NDJSON with its
// backend named, then a final success; afterwards every backend (and the
// merged list) has the model. DELETE /api/delete?fleet=all removes it
// everywhere; once gone everywhere it is 404. Before, the pull reached one
// backend.
func TestFleetWidePullAndDelete(t *testing.T) {
	gw, fakes := threeBackends(t, func(c *config.Config) {
		c.LoadBalancer.HealthCheckIntervalInSeconds = 1
		plainKeysManageModels(c)
	})
	const model = "gemma3:1b"

	status, ct, lines := fleetCall(t, "POST", gw.URL+"/api/pull?fleet=all", "Bearer "+testKey, `{"model":"`+model+`"}`)
	if status != 200 || ct != "application/x-ndjson" {
		t.Fatalf("pull: %d %q; want 200 application/x-ndjson", status, ct)
	}
	if len(lines) == 0 || lines[len(lines)-1] != (fleetLine{Status: "success"}) {
		t.Fatalf("pull: last line %+v; want a final {\"status\":\"success\"}", lines)
	}
	for _, f := range fakes {
		var got []string
		for _, l := range lines {
			if l.Backend == f.URL {
				got = append(got, l.Status+l.Error)
			}
		}
		if strings.Join(got, ",") != "pulling manifest,success" {
			t.Errorf("pull: lines of %s: %q; want pulling manifest, success", f.URL, got)
		}
		if !f.HasModel(model) {
			t.Errorf("pull: %s does not have %s", f.URL, model)
		}
	}
	eventually(t, "the pulled model in the merged list", func() bool {
		got, _ := modelsByName(t, gw.URL+"/api/tags")
		return got[model] != nil
	})

	status, _, lines = fleetCall(t, "DELETE", gw.URL+"/api/delete?fleet=all", "Bearer "+testKey, `{"model":"`+model+`"}`)
	if status != 200 || len(lines) != len(fakes)+1 || lines[len(lines)-1] != (fleetLine{Status: "success"}) {
		t.Fatalf("delete: %d %+v; want 200, a success line per backend and a final one", status, lines)
	}
	for _, f := range fakes {
		if f.HasModel(model) {
			t.Errorf("delete: %s still has %s", f.URL, model)
		}
	}
	// A model only one backend has: deleted there, the others' 404 is no
	// failure.
	status, _, lines = fleetCall(t, "DELETE", gw.URL+"/api/delete?fleet=all", "Bearer "+testKey, `{"model":"mistral:7b"}`)
	if status != 200 || fakes[2].HasModel("mistral:7b") || lines[len(lines)-1].Status != "success" {
		t.Errorf("delete of a model one backend has: %d %+v; want 200 success", status, lines)
	}
	status, _, lines = fleetCall(t, "DELETE", gw.URL+"/api/delete?fleet=all", "Bearer "+testKey, `{"model":"`+model+`"}`)
	if last := lines[len(lines)-1]; status != 404 || last.Error != "model '"+model+"' not found" {
		t.Errorf("delete of a model no backend has: %d %+v; want 404 model not found", status, last)
	}
}

// TestFleetWideNeedsAdmin: a fleet-wide call is an operator's: with
// admin keys, a plain API key is refused and reaches no backend.
func TestFleetWideNeedsAdmin(t *testing.T) {
	const admin = "sk-admin-0123456789abcdef0123456789abcdef"
	gw, fakes := threeBackends(t, func(c *config.Config) { c.AdminKeys = config.Keys(admin) })
	status, _, _ := fleetCall(t, "POST", gw.URL+"/api/pull?fleet=all", "Bearer "+testKey, `{"model":"gemma3:1b"}`)
	if status != http.StatusForbidden {
		t.Errorf("pull?fleet=all with an API key: %d; want 403", status)
	}
	for _, f := range fakes {
		if n := f.RequestsTo("/api/pull"); n != 0 {
			t.Errorf("%s got %d pulls; want 0", f.URL, n)
		}
	}
	status, _, lines := fleetCall(t, "POST", gw.URL+"/api/pull?fleet=all", "Bearer "+admin, `{"model":"gemma3:1b"}`)
	if status != 200 || lines[len(lines)-1].Status != "success" {
		t.Errorf("pull?fleet=all with the admin key: %d %+v; want 200 success", status, lines)
	}
}

// TestFleetWidePullReportsAFailedBackend: a backend that cannot be reached
// gets an error line and makes the final line an error naming it; the
// others still pull.
func TestFleetWidePullReportsAFailedBackend(t *testing.T) {
	live := ollamatest.New(t)
	dead := deadAddress(t)
	gw := startGateway(t, plainKeysManageModels, live.URL, dead)
	status, _, lines := fleetCall(t, "POST", gw.URL+"/api/pull?fleet=all", "Bearer "+testKey, `{"model":"gemma3:1b"}`)
	if status != 200 || len(lines) == 0 {
		t.Fatalf("pull: %d %+v", status, lines)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last.Error, "pull failed on 1 of 2 backends: "+dead) {
		t.Errorf("final line %+v; want pull failed on 1 of 2 backends: %s...", last, dead)
	}
	sawDead := false
	for _, l := range lines {
		sawDead = sawDead || (l.Backend == dead && l.Error != "")
	}
	if !sawDead || !live.HasModel("gemma3:1b") {
		t.Errorf("error line of the dead backend %v, live backend pulled %v; want both", sawDead, live.HasModel("gemma3:1b"))
	}
}
