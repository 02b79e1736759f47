package atomicfile_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ollamagw/ollama-gateway/internal/atomicfile"
)

// Edit is a read-modify-write that no other Edit of the file, in this
// process or another, can interleave with.
func ExampleEdit() {
	dir, err := os.MkdirTemp("", "atomicfile")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "counter.json")
	os.WriteFile(path, []byte(`{"n": 1}`), 0o600)

	err = atomicfile.Edit(path, json.Valid, func(data []byte) ([]byte, error) {
		var doc struct{ N int }
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, `{"n": %d}`, doc.N+1), nil
	})
	data, _ := os.ReadFile(path)
	fmt.Println(string(bytes.TrimSpace(data)), err)
	// Output:
	// {"n": 2} <nil>
}
