// Command loadtest drives the same load through several targets on
// loopback and prints one markdown table: straight to a fast fake Ollama
// ("direct"), through the gateway (the real handler, features on), through
// net/http/httputil.ReverseProxy, through nginx when it is on PATH, and
// through the gateway with its limits in a private redis-server
// ("gateway-redis", when redis-server is on PATH; ratios also to gateway).
// Every figure is also given as a ratio to direct and to httputil measured
// in the same run, since absolute numbers drift on shared machines.
//
//	go run ./bench/cmd/loadtest            # about 2 minutes
//	go run ./bench/cmd/loadtest -smoke     # seconds, for CI
//
// Each target and the backend run as child processes of this command (it
// re-executes itself with -role), so CPU time and peak RSS are the
// target's own, read from /proc.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	role := flag.String("role", "", "internal: run as backend, gateway or httputil")
	listen := flag.String("listen", "127.0.0.1:0", "internal: listen address for -role")
	upstream := flag.String("upstream", "", "internal: backend address(es) for -role, or a fleet backend's index")
	redisURL := flag.String("redis", "", "internal: redis:// URL for -role gateway-redis")
	smoke := flag.Bool("smoke", false, "tiny run (seconds) to check the harness works")
	duration := flag.Duration("duration", 5*time.Second, "length of each short-request run")
	streams := flag.Int("streams", 1000, "concurrent streaming chats")
	tokens := flag.Int("tokens", 50, "tokens per streamed chat")
	gap := flag.Duration("gap", 20*time.Millisecond, "pause between two tokens")
	held := flag.Int("held", 10000, "concurrent held (paused) streams for the memory figure")
	fleetRequests := flag.Int("fleet-requests", 600, "chats of the fleet scenario")
	scenarios := flag.String("scenarios", "short,stream,held,fleet", "comma-separated scenarios to run")
	targets := flag.String("targets", "gateway,gateway-redis,httputil,nginx", "comma-separated proxies to compare with direct (always run); gateway-redis needs redis-server")
	pin := flag.Bool("pin", false, "run each proxy alone on the last CPU, the backend and the load on the others (needs taskset and 2 CPUs)")
	flag.Parse()

	if *role != "" {
		if err := runRole(*role, *listen, *upstream, *redisURL); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	if *smoke {
		*duration, *streams, *tokens, *gap, *held, *fleetRequests = 500*time.Millisecond, 20, 5, 5*time.Millisecond, 50, 48
	}
	raiseFileLimit()
	if *pin {
		if err := pinSelf(); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: -pin:", err)
			os.Exit(1)
		}
	}
	p := plan{duration: *duration, conc: []int{64, 256}, streams: *streams, tokens: *tokens, gap: *gap, held: *held,
		fleetRequests: *fleetRequests, scenarios: set(*scenarios), targets: set(*targets), pin: *pin}
	if *smoke {
		p.conc = []int{8}
	}
	if err := run(p); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// plan is one invocation's load.
type plan struct {
	duration time.Duration
	conc     []int
	streams  int
	tokens   int
	gap      time.Duration
	held     int

	fleetRequests int // chats of the fleet scenario

	scenarios map[string]bool // short, stream, held, fleet
	targets   map[string]bool // gateway, gateway-redis, httputil, nginx
	pin       bool            // proxies on a CPU of their own (pinSelf)
}

// proxyCPU is the CPU the proxies run on with -pin: the last one.
func proxyCPU() int { return runtime.NumCPU() - 1 }

// pinSelf moves this process (the load) and the children it starts from now
// on (the backend) off the last CPU, which onProxyCPU gives to the proxy
// under test: then the proxy's CPU time is its own, and req/s measures what
// one core of it serves.
func pinSelf() error {
	n := runtime.NumCPU()
	if n < 2 {
		return fmt.Errorf("needs 2 CPUs, have %d", n)
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", fmt.Sprintf("0-%d", n-2), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %v: %s", err, out)
	}
	return nil
}

// onProxyCPU returns the command line that runs argv on the proxy's CPU
// when pin is set, else argv itself.
func onProxyCPU(pin bool, argv ...string) []string {
	if !pin {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(proxyCPU())}, argv...)
}

// set splits a comma-separated flag value.
func set(list string) map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			m[s] = true
		}
	}
	return m
}

// raiseFileLimit lifts the open-file limit the children inherit: 10,000
// held streams need two sockets each in a proxy. It asks for 200,000 (root
// may raise the hard limit), else settles for the hard limit.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	want := syscall.Rlimit{Cur: 200000, Max: max(l.Max, 200000)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// child is a target or backend process.
type child struct {
	name string
	addr string
	cmd  *exec.Cmd
	// aux is a process the target depends on (gateway-redis: its
	// redis-server), whose CPU time is reported in a row of its own.
	aux *child
}

// start runs this binary with -role and waits for it to print its address;
// extra are more flags for the role.
func start(role, upstream string, pin bool, extra ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := onProxyCPU(pin, append([]string{self, "-role", role, "-upstream", upstream}, extra...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	buf := make([]byte, 128)
	n, err := out.Read(buf)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start: %w", role, err)
	}
	return &child{name: role, addr: strings.TrimSpace(string(buf[:n])), cmd: cmd}, nil
}

func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.aux.stop()
}

// pids returns the child's process and its own children (nginx workers).
func (c *child) pids() []int {
	root := c.cmd.Process.Pid
	pids := []int{root}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(root) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// statFields returns the fields of /proc/pid/stat after the command name:
// state, ppid, ...
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// cpu returns the user+system CPU time of the child and its children.
func (c *child) cpu() time.Duration {
	var ticks int64
	for _, pid := range c.pids() {
		if f := statFields(pid); len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += ut + st
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// rss returns the resident set size of the child and its children, bytes.
func (c *child) rss() int64 { return c.sum("VmRSS:") }

// peakRSS returns the sum of the peak resident set sizes, bytes.
func (c *child) peakRSS() int64 { return c.sum("VmHWM:") }

func (c *child) sum(field string) int64 {
	var total int64
	for _, pid := range c.pids() {
		total += statusKB(pid, field) << 10
	}
	return total
}

func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
