package keyfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
)

// copySeed copies testdata/seed.json to a new directory and returns its
// path and content.
func copySeed(t *testing.T) (string, []byte) {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join("..", "..", "config", "testdata", "seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, seed
}

func TestAddKeySeed(t *testing.T) {
	path, seed := copySeed(t)
	before := mustParse(t, string(seed))
	key := "k3y-with-\"quote\"-and-\\backslash"
	got, err := AddKey(path, key)
	if err != nil {
		t.Fatalf("AddKey error: %v", err)
	}
	want := *before
	want.APIKeys = append(slices.Clone(before.APIKeys), config.KeyEntry{Key: key})
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("AddKey returned\n %+v\nwant %+v", *got, want)
	}
	loaded, err := config.Load(path)
	if err != nil || !reflect.DeepEqual(loaded, got) {
		t.Errorf("Load after AddKey = %+v, %v; want what AddKey returned", loaded, err)
	}
	// Only the new line differs: field order and formatting are the
	// operator's.
	data, _ := os.ReadFile(path)
	old := `"ahP7DieD7rNpTUa6No--iJpOaXY3TDK8dIjKg0cp-hI"`
	wantFile := strings.Replace(string(seed), old, old+",\n"+`"k3y-with-\"quote\"-and-\\backslash"`, 1)
	if string(data) != wantFile {
		t.Errorf("file after AddKey:\n%s\nwant:\n%s", data, wantFile)
	}
}

func TestAddKeyKeepsEditsOnDisk(t *testing.T) {
	// AddKey reads the file as it is now, not as it was loaded.
	path, seed := copySeed(t)
	edited := strings.Replace(string(seed), `"logging": true`, `"logging": false`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := AddKey(path, "another-key")
	if err != nil {
		t.Fatal(err)
	}
	if c.Logging {
		t.Errorf("AddKey lost the edit on disk: logging = true")
	}
}

func TestAddKeyConcurrent(t *testing.T) {
	path, seed := copySeed(t)
	var mu sync.Mutex // as the gateway serializes calls
	var wg sync.WaitGroup
	keys := make([]string, 30)
	errs := make([]error, 30)
	for i := range keys {
		wg.Go(func() {
			k, err := config.GenerateKey()
			if err != nil {
				errs[i] = err
				return
			}
			keys[i] = k
			mu.Lock()
			defer mu.Unlock()
			_, errs[i] = AddKey(path, k)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("Load after concurrent AddKey: %v", err)
	}
	want := append(config.Credentials(mustParse(t, string(seed)).APIKeys), keys...)
	if !sameElements(config.Credentials(c.APIKeys), want) {
		t.Errorf("APIKeys = %q; want the seed's and the 30 new ones %q", config.Credentials(c.APIKeys), want)
	}
	distinct := map[string]bool{}
	for _, k := range keys {
		distinct[k] = true
	}
	if len(distinct) != 30 {
		t.Errorf("%d distinct keys; want 30", len(distinct))
	}
}

func sameElements(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestAddKeyInvalidWritesNothing(t *testing.T) {
	path, seed := copySeed(t)
	for _, key := range []string{"", "has space", "sha256:nothex", "tab\t"} {
		c, err := AddKey(path, key)
		if err == nil {
			t.Errorf("AddKey(%q) = %+v; want an error", key, c)
			continue
		}
		if !strings.Contains(err.Error(), "apiKeys[1]") || strings.Contains(err.Error(), key) && key != "" {
			t.Errorf("AddKey(%q) error = %v; want one naming apiKeys[1] and not the key", key, err)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != string(seed) {
		t.Errorf("file changed:\n%s", data)
	}
	if e := entries(t, path); !slices.Equal(e, []string{"config.json"}) {
		t.Errorf("directory holds %q; want only config.json", e)
	}
}

func TestAddKeyBrokenFile(t *testing.T) {
	// A file that does not load is not made worse; the error says why.
	path := writeConfig(t, `{"ollamaAddresses": ["http://a"], "apiKeys": [`)
	if _, err := AddKey(path, "k"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("AddKey error = %v; want the file's syntax error", err)
	}
	if _, err := AddKey(filepath.Join(t.TempDir(), "missing.json"), "k"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AddKey(missing) error = %v; want ErrNotExist", err)
	}
}

func TestAddKeyReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which writes to read-only directories anyway")
	}
	path, seed := copySeed(t)
	dir := filepath.Dir(path)
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if c, err := AddKey(path, "new-key-0123456789"); err == nil {
		t.Fatalf("AddKey in a read-only directory = %+v; want an error", c)
	} else if !errors.Is(err, os.ErrPermission) {
		t.Errorf("AddKey error = %v; want a permission error", err)
	}
	if data, _ := os.ReadFile(path); string(data) != string(seed) {
		t.Errorf("file changed:\n%s", data)
	}
	if e := entries(t, path); !slices.Equal(e, []string{"config.json"}) {
		t.Errorf("directory holds %q; want only config.json", e)
	}
}

func TestRemoveKey(t *testing.T) {
	doc := "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n" +
		"  \"apiKeys\": [\n    \"key-one-0123456789\",\n    \"key-two-0123456789\"\n  ],\n" +
		"  \"adminKeys\": [\"key-two-0123456789\"]\n}\n"
	path := writeConfig(t, doc)
	id := config.KeyID(config.KeyDigest("key-two-0123456789"))
	c, n, err := RemoveKey(path, strings.ToUpper(id), RemoveOptions{})
	if err != nil {
		t.Fatalf("RemoveKey error: %v", err)
	}
	if n != 2 || !slices.Equal(config.Credentials(c.APIKeys), []string{"key-one-0123456789"}) || len(c.AdminKeys) != 0 {
		t.Errorf("RemoveKey = %q, %q, %d; want [key-one] [], 2", config.Credentials(c.APIKeys), config.Credentials(c.AdminKeys), n)
	}
	want := "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n" +
		"  \"apiKeys\": [\n    \"key-one-0123456789\"\n  ],\n" +
		"  \"adminKeys\": []\n}\n"
	if data, _ := os.ReadFile(path); string(data) != want {
		t.Errorf("file after RemoveKey:\n%s\nwant:\n%s", data, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v; want 0640", fi.Mode().Perm())
	}

	// Again: no such key any more; nothing is written.
	for _, bad := range []string{id, "not-an-id", ""} {
		if _, n, err := RemoveKey(path, bad, RemoveOptions{}); !errors.Is(err, ErrNoSuchKey) || n != 0 {
			t.Errorf("RemoveKey(%q) = %d, %v; want ErrNoSuchKey", bad, n, err)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != want {
		t.Errorf("file changed by a failed RemoveKey:\n%s", data)
	}
}

func TestRemoveKeyWithPerKeyOverride(t *testing.T) {
	// A key with a rate override can be removed: its override goes too.
	id := config.KeyID(config.KeyDigest("premium-key-0123"))
	doc := `{"ollamaAddresses": ["http://a"], "apiKeys": ["premium-key-0123", "basic-key-01234"],
  "rateLimit": {"enabled": true, "maxRequests": 1, "timeWindowSeconds": 1,
    "perKey": {"` + id + `": {"maxRequests": 100, "timeWindowSeconds": 1}}}}`
	path := writeConfig(t, doc)
	c, n, err := RemoveKey(path, id, RemoveOptions{})
	if err != nil {
		t.Fatalf("RemoveKey error: %v", err)
	}
	if n != 1 || len(c.RateLimit.PerKey) != 0 {
		t.Errorf("RemoveKey = %d, perKey %v; want 1, no override", n, c.RateLimit.PerKey)
	}
}

// TestAddFirstKeyOnce: gateways starting at once on a file without keys
// each try to mint the first key; exactly one is added, decided under the
// lock, and a file that already has a key is left alone.
func TestAddFirstKeyOnce(t *testing.T) {
	path := writeConfig(t, `{"ollamaAddresses": ["http://a"]}`)
	const n = 10
	var added atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, ok, err := AddFirstKey(path, fmt.Sprintf("first-key-%02d-0123456789", i))
			if err != nil || len(c.APIKeys) != 1 {
				t.Errorf("AddFirstKey = %v, %v; want a config with one key", c, err)
			}
			if ok {
				added.Add(1)
			}
		})
	}
	wg.Wait()
	if got := added.Load(); got != 1 {
		t.Errorf("%d first keys added; want 1", got)
	}
	if c, err := config.Load(path); err != nil || len(c.APIKeys) != 1 {
		t.Errorf("file after the race: %v, %v; want one key", c, err)
	}

	before, _ := os.ReadFile(path)
	if _, ok, err := AddFirstKey(path, "another-key-0123456789"); ok || err != nil {
		t.Errorf("AddFirstKey on a file with a key = %v, %v; want not added", ok, err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("file changed:\n%s", after)
	}
}

// TestAddFirstKeyPublicKeyOnly: a file whose only key is an Ollama public
// key has a key; no shared secret is minted into it.
func TestAddFirstKeyPublicKeyOnly(t *testing.T) {
	path := writeConfig(t, `{"ollamaAddresses": ["http://a"], "apiKeys": [{"publicKey": `+
		`"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS alice@laptop"}]}`)
	before, _ := os.ReadFile(path)
	if _, ok, err := AddFirstKey(path, "another-key-0123456789"); ok || err != nil {
		t.Errorf("AddFirstKey on a file with a public key = %v, %v; want not added", ok, err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("file changed:\n%s", after)
	}
}

// TestRemovePublicKey: a publicKey entry is removed by its id (KeyID of
// its fingerprint), with its policy, the rest of the file byte for byte;
// the last admin entry, a public key, is kept unless forced.
func TestRemovePublicKey(t *testing.T) {
	alice := `{"publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS alice@laptop", "name": "alice", "models": ["llama3.2"]}`
	id := config.KeyID(config.PublicKey{PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt6h8Xnc4+6ZcJ1aYfI3cUSWJx5nWNRBhUkE4B3vVvS"}.Fingerprint())
	tests := []struct {
		name, doc, want string
		opts            RemoveOptions
		n               int
		err             error
	}{
		{name: "api key",
			doc:  "{\"ollamaAddresses\": [\"http://a\"],\n  \"apiKeys\": [\"key-one-0123456789\",\n    " + alice + "]}\n",
			want: "{\"ollamaAddresses\": [\"http://a\"],\n  \"apiKeys\": [\"key-one-0123456789\"]}\n", n: 1},
		{name: "last admin key kept",
			doc:  "{\"ollamaAddresses\": [\"http://a\"], \"apiKeys\": [\"k-0123456789\"], \"adminKeys\": [" + alice + "]}\n",
			opts: RemoveOptions{KeepLastAdminKey: true}, err: ErrLastAdminKey},
		{name: "last admin key forced",
			doc:  "{\"ollamaAddresses\": [\"http://a\"], \"apiKeys\": [\"k-0123456789\"], \"adminKeys\": [" + alice + "]}\n",
			want: "{\"ollamaAddresses\": [\"http://a\"], \"apiKeys\": [\"k-0123456789\"], \"adminKeys\": []}\n", n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.doc)
			c, n, err := RemoveKey(path, id, tt.opts)
			data, _ := os.ReadFile(path)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || string(data) != tt.doc {
					t.Errorf("RemoveKey = %v, file\n%s; want %v, file unchanged", err, data, tt.err)
				}
				return
			}
			if err != nil || n != tt.n || len(c.APIPublicKeys)+len(c.AdminPublicKeys) != 0 {
				t.Fatalf("RemoveKey = %d, %v; want %d, no public key left", n, err, tt.n)
			}
			if string(data) != tt.want {
				t.Errorf("file after RemoveKey:\n%s\nwant:\n%s", data, tt.want)
			}
		})
	}
}
