package keyfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
)

const (
	oldDoc = "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n  \"apiKeys\": [\n    \"old-key-0123456789\"\n  ]\n}\n"
	newDoc = "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n  \"apiKeys\": [\n    \"old-key-0123456789\",\n    \"new-key-0123456789\"\n  ]\n}\n"
)

// writeConfig writes content to a config.json, mode 0640, in a new
// directory and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

func mustParse(t *testing.T, doc string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// entries lists the names in the directory of path.
func entries(t *testing.T, path string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}
