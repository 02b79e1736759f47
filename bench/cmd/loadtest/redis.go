package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// errNoRedis says redis-server is not on PATH: the gateway-redis column is
// skipped, except in CI (CI set), which installs it.
var errNoRedis = errors.New("redis-server not on PATH")

// startRedis runs a throwaway redis-server on a free loopback port, in a
// temporary directory, without persistence, as internal/redistest does for
// tests (that package needs a testing.TB).
func startRedis() (*child, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	dir, err := os.MkdirTemp("", "loadtest-redis")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no", "--loglevel", "warning")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: "redis-server", addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	for range 200 {
		if redisPing(c.addr) {
			return c, nil
		}
		time.Sleep(25 * time.Millisecond) // redis-server has no ready signal
	}
	c.stop()
	return nil, fmt.Errorf("redis-server on %s did not answer PING within 5s", c.addr)
}

// redisPing reports whether the server at addr answers PING.
func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
