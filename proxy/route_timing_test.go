package proxy

import "testing"

// BenchmarkRouteParallel is the model-aware selection of one small chat
// request (read the model, pick a backend that has it) in a pool of four
// backends of which two have the model; BenchmarkRoundRobinParallel is the
// plain selection beside it.
func BenchmarkRouteParallel(b *testing.B) {
	p := modelPool(b, "llama3.2", "qwen2.5", "llama3.2 qwen2.5", "phi3")
	body := []byte(`{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}],"stream":false}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var r route
		for pb.Next() {
			r.set(p, chatRoute, body)
			if got, _ := r.next(p, new(queue)); got == nil {
				b.Error("no backend for the model")
				return
			}
			r.reset()
		}
	})
}
