package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestRedisAbsentIsNil(t *testing.T) {
	c, err := Parse([]byte(withAddr("")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis != nil {
		t.Errorf("Redis = %+v; want nil when the block is absent", c.Redis)
	}
}

func TestRedisDefaults(t *testing.T) {
	c, err := Parse([]byte(withAddr(`"redis": {"url": "redis://localhost:6379/0"}`)))
	if err != nil {
		t.Fatal(err)
	}
	want := &Redis{URL: "redis://localhost:6379/0", KeyPrefix: "ollama-gateway:", FailMode: "open",
		TimeoutMilliseconds: 100, LeaseMilliseconds: 30000}
	if !reflect.DeepEqual(c.Redis, want) {
		t.Errorf("Redis = %+v; want %+v", c.Redis, want)
	}
}

func TestRedisErrors(t *testing.T) {
	t.Setenv("OGW_TEST_EMPTY", "")
	tests := []struct {
		block string
		want  string
	}{
		{`{}`, "redis.url: is required"},
		{`{"url": "http://h"}`, `redis.url: "http://h" is not a redis:// or rediss:// URL with a host`},
		{`{"url": "redis://u:hunter2@h:99999"}`, `redis.url: "redis://xxxxx@h:99999": port must be between 1 and 65535`},
		{`{"url": "redis://h/x"}`, `redis.url: "redis://h/x": the path must be a database number like /0`},
		{`{"url": "redis://h?db=1"}`, `redis.url: "redis://h?db=1" must not have a query or fragment`},
		{`{"url": "redis://h", "failMode": "maybe"}`, `redis.failMode: "maybe" must be "open" or "closed"`},
		{`{"url": "redis://h", "timeoutMilliseconds": -1}`, "redis.timeoutMilliseconds: must be between 1 and 60000"},
		{`{"url": "redis://h", "leaseMilliseconds": 10}`, "redis.leaseMilliseconds: must be between 100 and 3600000"},
		{`{"url": "redis://h", "keyPrefix": "a b"}`, "redis.keyPrefix: must be printable ASCII without spaces"},
		{`{"url": "redis://h", "passwordEnv": "OGW_TEST_EMPTY"}`, "redis.passwordEnv: environment variable OGW_TEST_EMPTY is not set or empty"},
		{`{"url": "redis://h", "passwordEnv": "1X"}`, `redis.passwordEnv: "1X" is not an environment variable name`},
		{`{"url": "redis://h", "nope": 1}`, "redis.nope: unknown field"},
		{`{"url": 5}`, "redis.url: expected a string, got number"},
		{`[]`, "redis: expected an object, got array"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(withAddr(`"redis": ` + tt.block)))
		got := strings.Join(problems(err), "\n")
		if got != tt.want {
			t.Errorf("redis %s:\n got %q\nwant %q", tt.block, got, tt.want)
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("redis %s: the error shows the password: %q", tt.block, got)
		}
	}
}

func TestRedisPasswordEnv(t *testing.T) {
	t.Setenv("OGW_TEST_REDIS_PW", "s3cret")
	c, err := Parse([]byte(withAddr(`"redis": {"url": "rediss://h", "passwordEnv": "OGW_TEST_REDIS_PW", "failMode": "closed"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Redis.Password(); got != "s3cret" {
		t.Errorf("Password() = %q; want the variable's value", got)
	}
}
