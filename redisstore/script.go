package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Script is a Lua script run with EVALSHA; create it once with NewScript.
type Script struct {
	src string
	sha string
}

// NewScript returns the script of Lua source src.
func NewScript(src string) *Script {
	sum := sha1.Sum([]byte(src))
	return &Script{src: src, sha: hex.EncodeToString(sum[:])}
}

// Run runs s with keys and args in one round trip (EVALSHA), under the
// timeout and the breaker. When Redis does not know the script (NOSCRIPT:
// it restarted, or SCRIPT FLUSH), Run sends it with EVAL, which loads it
// for the next calls. op names the call for Observe.
func (c *Client) Run(op string, s *Script, keys []string, args []string) (rueidis.RedisMessage, error) {
	if err := c.gate(); err != nil {
		return rueidis.RedisMessage{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	var (
		msg  rueidis.RedisMessage
		err  error
		eval bool
	)
	for retries := 0; ; {
		var cmd rueidis.Completed
		if eval {
			cmd = c.c.B().Eval().Script(s.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
		} else {
			cmd = c.c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
		}
		msg, err = c.c.Do(ctx, cmd).ToMessage()
		if ret, ok := rueidis.IsRedisErr(err); ok && !eval && (ret.IsNoScript() || strings.HasPrefix(ret.Error(), "NOSCRIPT")) {
			eval = true
			continue
		}
		if retries < staleRetries && stale(ctx, err) {
			retries++
			continue
		}
		break
	}
	return msg, c.done(op, start, err)
}

// RunInts is Run for a script that returns an array of integers.
func (c *Client) RunInts(op string, s *Script, keys []string, args []string) ([]int64, error) {
	msg, err := c.Run(op, s, keys, args)
	if err != nil {
		return nil, err
	}
	return msg.AsIntSlice()
}

// Flush forgets every loaded script (SCRIPT FLUSH), as a restart does;
// for tests of the NOSCRIPT path.
func (c *Client) Flush() error {
	_, err := c.Do("flush", func(b rueidis.Builder) rueidis.Completed { return b.ScriptFlush().Build() })
	return err
}
