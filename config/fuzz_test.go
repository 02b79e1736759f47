package config

import (
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, s := range []string{
		`{"ollamaAddresses":["http://localhost:11434"]}`,
		`{"ollamaAddresses":[" http://a:1/ ","https://b"],"proxy":{"maxConnsPerBackend":1e3}}`,
		`{"ollamaAddresses":["http://u:p@h:0/?q#f"],"gatewayAddress":"",` +
			`"apiKeys":["sha256:00"],"adminKeys":["a b"],"security":{"allowIps":["::1/129"]},` +
			`"metrics":{"endpoint":"/api/x","namespace":"9"},"rateLimit":{"enabled":true,"maxRequests":-1}}`,
		`{"OLLAMAADDRESSES":["http://x"],"rateLimit":{"maxRequest":1},"logging":null}`,
		"\xef\xbb\xbf{\"ollamaAddresses\":[\"http://[::1]:11434\"]} x",
		`[[[[]]]]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			_ = err.Error()
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse succeeded but Validate() = %v", err)
		}
		if len(c.OllamaAddresses) < 1 {
			t.Fatalf("Parse succeeded with no Ollama address")
		}
	})
}
