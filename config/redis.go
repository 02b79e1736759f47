package config

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// redis checks the optional redis block. The URL may hold a password:
// messages show it redacted.
func (v *validator) redis(r *Redis) {
	if r == nil {
		return
	}
	v.redisURL("redis.url", r.URL)
	if r.PasswordEnv != "" {
		if !isEnvName(r.PasswordEnv) {
			v.add("redis.passwordEnv", fmt.Sprintf("%q is not an environment variable name", r.PasswordEnv))
		} else if os.Getenv(r.PasswordEnv) == "" {
			v.add("redis.passwordEnv", fmt.Sprintf("environment variable %s is not set or empty", r.PasswordEnv))
		}
	}
	for i := 0; i < len(r.KeyPrefix); i++ {
		if r.KeyPrefix[i] < 0x21 || r.KeyPrefix[i] > 0x7e {
			v.add("redis.keyPrefix", "must be printable ASCII without spaces")
			break
		}
	}
	if r.FailMode != "open" && r.FailMode != "closed" {
		v.add("redis.failMode", fmt.Sprintf(`%q must be "open" or "closed"`, r.FailMode))
	}
	v.between("redis.timeoutMilliseconds", r.TimeoutMilliseconds, 1, 60000)
	v.between("redis.leaseMilliseconds", r.LeaseMilliseconds, 100, int(time.Hour/time.Millisecond))
}

func (v *validator) between(field string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(field, fmt.Sprintf("must be between %d and %d", lo, hi))
	}
}

// redisURL checks "redis://[user[:password]@]host[:port][/db]" (or
// rediss://).
func (v *validator) redisURL(field, s string) {
	if s == "" {
		v.add(field, "is required")
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Opaque != "" || u.Hostname() == "" {
		v.add(field, fmt.Sprintf(`%q is not a redis:// or rediss:// URL with a host`, redact(s)))
		return
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.add(field, fmt.Sprintf("%q: port must be between 1 and 65535", redact(s)))
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			v.add(field, fmt.Sprintf("%q: the path must be a database number like /0", redact(s)))
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		v.add(field, fmt.Sprintf("%q must not have a query or fragment", redact(s)))
	}
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
