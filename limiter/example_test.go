package limiter_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ollamagw/ollama-gateway/limiter"
)

func ExampleLocal() {
	l := limiter.NewLocal(limiter.Options{})
	key := limiter.AddrKey(netip.MustParseAddr("192.0.2.1"))
	rate := limiter.Rate{Limit: 2, Window: time.Second} // 2 per second, bursts of 2
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	for _, at := range []time.Duration{0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond} {
		d := l.Allow(key, rate, now.Add(at))
		fmt.Printf("t+%v: allowed=%v remaining=%d retry-after=%v reset=%v\n",
			at, d.Allowed, d.Remaining, d.RetryAfter, d.Reset)
	}
	// Output:
	// t+0s: allowed=true remaining=1 retry-after=0s reset=500ms
	// t+0s: allowed=true remaining=0 retry-after=0s reset=1s
	// t+0s: allowed=false remaining=0 retry-after=500ms reset=1s
	// t+250ms: allowed=false remaining=0 retry-after=250ms reset=750ms
	// t+500ms: allowed=true remaining=0 retry-after=0s reset=1s
}

func ExampleConcurrency() {
	c := limiter.NewConcurrency(limiter.Options{})
	key := limiter.IDKey([16]byte{1})

	first, ok1 := c.Acquire(key, 1)
	_, ok2 := c.Acquire(key, 1) // the client already holds its one slot
	first.Release()
	third, ok3 := c.Acquire(key, 1)
	defer third.Release()
	fmt.Println(ok1, ok2, ok3)
	// Output: true false true
}

func ExampleClientKey_WithScope() {
	const authFailures = 1 // a scope for failed-authentication buckets
	ip := limiter.AddrKey(netip.MustParseAddr("2001:db8::1"))
	fmt.Println(ip, ip.WithScope(authFailures))
	// Output: 2001:db8::/64 2001:db8::/64@1
}
