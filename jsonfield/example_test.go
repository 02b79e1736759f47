package jsonfield_test

import (
	"fmt"

	"github.com/ollamagw/ollama-gateway/jsonfield"
)

func ExampleAppendString() {
	body := []byte(`{"messages":[{"role":"user","content":"say \"model\""}],"MODEL":"llama3.2","model":null}`)
	model, ok := jsonfield.AppendString(nil, body, "model")
	fmt.Printf("%s %v\n", model, ok)

	// A buffer with room: no allocation.
	buf := make([]byte, 0, 64)
	model, ok = jsonfield.AppendString(buf, []byte(`{"model":"caf\u00e9:latest"}`), "model")
	fmt.Printf("%s %v\n", model, ok)

	_, ok = jsonfield.AppendString(buf, []byte(`{"model":"llama3.2",`), "model")
	fmt.Println(ok)
	// Output:
	// llama3.2 true
	// café:latest true
	// false
}
