package keyfile

import (
	"os"
	"strings"
	"testing"

	"github.com/ollamagw/ollama-gateway/config"
)

// TestAddEntryAndRemoveObjectEntries: an entry with a policy is added as
// one object, the rest of the file byte for byte; RemoveKey finds object
// entries by id, by "key" and by "sha256", beside string ones.
func TestAddEntryAndRemoveObjectEntries(t *testing.T) {
	digestKey := "digest-key-0123456789"
	digest := strings.TrimPrefix(config.DigestEntry(digestKey), "sha256:")
	doc := "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n" +
		"  \"apiKeys\": [\n    \"plain-key-0123456789\",\n" +
		"    {\"sha256\": \"" + digest + "\", \"name\": \"by-digest\"}\n  ]\n}\n"
	path := writeConfig(t, doc)

	e := config.KeyEntry{Key: "team-key-0123456789", KeyPolicy: config.KeyPolicy{Name: "team-a", Models: []string{"llama3.2", "qwen2.5:*"},
		RateLimit: &config.RateOverride{MaxRequests: 600, TimeWindowSeconds: 60},
		Tokens:    &config.TokenBudget{Max: 200000, WindowSeconds: 86400}, ExpiresAt: "2027-01-31T00:00:00Z"}}
	c, err := AddEntry(path, e)
	if err != nil {
		t.Fatalf("AddEntry error: %v", err)
	}
	want := "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n" +
		"  \"apiKeys\": [\n    \"plain-key-0123456789\",\n" +
		"    {\"sha256\": \"" + digest + "\", \"name\": \"by-digest\"},\n" +
		`    {"key":"team-key-0123456789","name":"team-a","models":["llama3.2","qwen2.5:*"],` +
		`"rateLimit":{"maxRequests":600,"timeWindowSeconds":60},"tokens":{"max":200000,"windowSeconds":86400},` +
		`"expiresAt":"2027-01-31T00:00:00Z"}` + "\n  ]\n}\n"
	if data, _ := os.ReadFile(path); string(data) != want {
		t.Fatalf("file after AddEntry:\n%s\nwant:\n%s", data, want)
	}
	if got := c.APIKeys[2]; got.Name != "team-a" || got.Tokens == nil || got.Tokens.Max != 200000 {
		t.Errorf("AddEntry returned entry %+v; want the policy written", got)
	}

	for _, k := range []string{"team-key-0123456789", digestKey} {
		id := config.KeyID(config.KeyDigest(k))
		c, n, err := RemoveKey(path, id, RemoveOptions{})
		if err != nil || n != 1 {
			t.Fatalf("RemoveKey(%s) = %d, %v; want 1, nil", id, n, err)
		}
		for _, left := range c.APIKeys {
			if left.ID() == id {
				t.Errorf("key %s still in the file", id)
			}
		}
	}
	want = "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n" +
		"  \"apiKeys\": [\n    \"plain-key-0123456789\"\n  ]\n}\n"
	if data, _ := os.ReadFile(path); string(data) != want {
		t.Errorf("file after RemoveKey:\n%s\nwant:\n%s", data, want)
	}
}
