package ollamaapi_test

import (
	"fmt"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

func ExampleLookup() {
	r := ollamaapi.Lookup([]byte("POST"), []byte("/api/chat"))
	fmt.Println(r.Class(), r.Buffered, r.ModelField, r.ByModel, r.Usage)
	r = ollamaapi.Lookup([]byte("POST"), []byte("/api/blobs/sha256:29fdb92e"))
	fmt.Println(r.Class(), r.Upload, r.ChangesFleet)
	r = ollamaapi.Lookup([]byte("GET"), []byte("/v1/models/llama3.2"))
	fmt.Println(r.Class(), r.Buffered)
	fmt.Println(ollamaapi.Lookup([]byte("GET"), []byte("/no/such/route")).Class())
	// Output:
	// /api/chat false model true ollama
	// /api/blobs/:digest true true
	// /v1/models/:model true
	// other
}
