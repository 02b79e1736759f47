package scheduler_test

import (
	"context"
	"fmt"

	"github.com/ollamagw/ollama-gateway/internal/ollamatest/scheduler"
)

// A handler acquires a slot before its first byte and releases it when the
// response is done; a model that was not loaded is loaded (and counted).
func ExampleScheduler() {
	cfg := scheduler.DefaultConfig()
	cfg.MaxLoaded = 1
	s := scheduler.New(cfg)
	defer s.Close()
	ctx := context.Background()

	for _, model := range []string{"a", "a", "b"} {
		lease, err := s.Acquire(ctx, model, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		lease.Release()
	}
	fmt.Println("loads of a:", s.Loads("a"), "of b:", s.Loads("b"))
	for _, m := range s.Loaded() {
		fmt.Println("loaded:", m.Name)
	}
	// Output:
	// loads of a: 1 of b: 1
	// loaded: b
}
