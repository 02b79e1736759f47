package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest"
)

// TestCreateFromLocalGGUFThroughTwoBackends is `ollama create` of a model
// from a local GGUF file through a two-backend gateway, with the real Go
// client: the blob upload and the create that names its digest reach the
// same backend. Before, round-robin sent the create to the backend
// without the blob, which answered that the file does not exist.
func TestCreateFromLocalGGUFThroughTwoBackends(t *testing.T) {
	a := ollamatest.New(t, ollamatest.WithModels("llama3.2"))
	b := ollamatest.New(t, ollamatest.WithModels("qwen2.5:0.5b"))
	gw := startGateway(t, plainKeysManageModels, a.URL, b.URL)
	waitModels(t, gw)

	dir := t.TempDir()
	c := api.NewClient(mustURL(t, gw.URL), httpClient())
	ctx := context.Background()
	// Two creates in a row: round-robin would split each pair of requests.
	for i, name := range []string{"mine", "mine-too"} {
		path := filepath.Join(dir, name+".gguf")
		data := append([]byte("GGUF\x03\x00\x00\x00"), make([]byte, 64<<10+i)...)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// As the CLI does (cmd/cmd.go createBlob): hash the file, then
		// upload it.
		sum := sha256.Sum256(data)
		digest := "sha256:" + hex.EncodeToString(sum[:])
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		err = c.CreateBlob(ctx, digest, f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: CreateBlob: %v", name, err)
		}
		var last api.ProgressResponse
		err = c.Create(ctx, &api.CreateRequest{Model: name, Files: map[string]string{"model.gguf": digest}},
			func(p api.ProgressResponse) error { last = p; return nil })
		if err != nil || last.Status != "success" {
			t.Fatalf("%s: Create: %v, last status %q; want success", name, err, last.Status)
		}
		holder, other := a, b
		if !a.HasBlob(digest) {
			holder, other = b, a
		}
		if !holder.HasBlob(digest) || !holder.HasModel(name) || other.HasModel(name) {
			t.Errorf("%s: blob on the holder %v, model on the holder %v, on the other %v; want true, true, false",
				name, holder.HasBlob(digest), holder.HasModel(name), other.HasModel(name))
		}
	}
}
