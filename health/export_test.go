package health

import (
	"context"
	"sync"
)

// Check runs one check of every target concurrently and waits for them:
// the check Run performs on each tick, as one synchronous round for tests.
// Checks cut short by ctx are not counted.
func (c *Checker) Check(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ts := range c.targets {
		wg.Go(func() { c.check(ctx, ts) })
	}
	wg.Wait()
}
