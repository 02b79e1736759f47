package config_test

import (
	"fmt"

	"github.com/ollamagw/ollama-gateway/config"
)

func ExampleParse() {
	c, err := config.Parse([]byte(`{
  "ollamaAddresses": ["http://localhost:11434"],
  "rateLimit": {"maxRequests": 10, "timeWindowSeconds": 15, "enabled": true}
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.OllamaAddresses, c.GatewayAddress, c.AuthHeaderName)
	fmt.Println(c.RateLimit.MaxRequests, c.RateLimit.TimeWindowSeconds)
	fmt.Println(c.HealthCheckInterval(), c.Proxy.FirstByteTimeout())

	// Every problem is reported at once, each naming its field.
	_, err = config.Parse([]byte(`{
  "ollamaAddresses": ["htp://localhost:11434"],
  "rateLimit": {"maxRequest": 10}
}`))
	fmt.Println(err)
	_, err = config.Parse([]byte(`{
  "ollamaAddresses": ["htp://localhost:11434"],
  "rateLimit": {"enabled": true}
}`))
	fmt.Println(err)
	// Output:
	// [http://localhost:11434] 0.0.0.0:8080 Authorization
	// 10 15
	// 30s 10m0s
	// rateLimit.maxRequest: unknown field
	// ollamaAddresses[0]: "htp://localhost:11434" is not an http(s) URL
	// rateLimit.maxRequests: must be > 0 when enabled
	// rateLimit.timeWindowSeconds: must be > 0 when enabled
}
