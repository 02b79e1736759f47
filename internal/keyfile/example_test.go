package keyfile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/keyfile"
)

func ExampleAddKey() {
	dir, err := os.MkdirTemp("", "gateway")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.json")
	os.WriteFile(path, []byte(`{
  "ollamaAddresses": ["http://localhost:11434"],
  "apiKeys": [
    "first-key-0123456789"
  ]
}
`), 0o600)

	key, err := config.GenerateKey()
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := keyfile.AddKey(path, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(cfg.APIKeys), "keys")
	data, _ := os.ReadFile(path)
	fmt.Print(strings.Replace(string(data), key, "<new key>", 1))

	// Revoke the first key by its public id.
	cfg, n, err := keyfile.RemoveKey(path, config.KeyID(config.KeyDigest("first-key-0123456789")), keyfile.RemoveOptions{})
	fmt.Println(n, "removed,", len(cfg.APIKeys), "left", err)
	// Output:
	// 2 keys
	// {
	//   "ollamaAddresses": ["http://localhost:11434"],
	//   "apiKeys": [
	//     "first-key-0123456789",
	//     "<new key>"
	//   ]
	// }
	// 1 removed, 1 left <nil>
}
