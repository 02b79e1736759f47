// Command ollama-gateway runs the gateway in front of one or more Ollama
// servers.
//
// Usage:
//
//	ollama-gateway [-config config.json] [-version]
//	ollama-gateway keys new  [-digest] [-config config.json]
//	ollama-gateway keys list [-config config.json]
//
// The configuration path defaults to $OLLAMA_GATEWAY_CONFIG, else
// config.json. A missing or invalid configuration exits with status 2 and a
// message naming the field and the problem. SIGINT or SIGTERM stop accepting
// connections and let streams in flight finish for up to
// proxy.shutdownTimeoutSeconds; a second signal exits at once. SIGHUP, a
// change of the file and GET /config/reload reload it.
//
// A configuration without any key gets one at first start: its
// "sha256:" digest is written to the file and the key printed once to
// stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/gateway"
	"github.com/ollamagw/ollama-gateway/internal/keyfile"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keys" {
		return runKeys(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("ollama-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "ollama-gateway", version)
		return 0
	}

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		// One line per problem, each naming the file and the field.
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "ollama-gateway: %s\n", line)
		}
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	if !cfg.HasKeys() {
		// Neither open nor locked: mint the first key, save its digest (the
		// file may be tracked by git: no live secret in it), show it once.
		// Decided again under the file's lock: of gateways starting at
		// once, one mints it.
		key, err := config.GenerateKey()
		added := false
		if err == nil {
			cfg, added, err = keyfile.AddFirstKey(*cfgPath, config.DigestEntry(key))
		}
		if err != nil {
			fmt.Fprintf(stderr, "ollama-gateway: no apiKeys configured and none could be created: %v\n", err)
			return 2
		}
		if added {
			fmt.Fprintf(stderr, "ollama-gateway: no apiKeys were configured; created one and saved its SHA-256 digest to %s.\n"+
				"ollama-gateway: the key is not stored anywhere; it is shown only this once: %s\n", *cfgPath, key)
		}
	}

	gw, err := gateway.New(cfg, log, gateway.WithConfigPath(*cfgPath))
	if err != nil {
		fmt.Fprintf(stderr, "ollama-gateway: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", cfg.GatewayAddress)
	if err != nil {
		fmt.Fprintf(stderr, "ollama-gateway: %v\n", err)
		return 1
	}
	ln = gateway.KeepAccepting(ln, log)
	srv := gw.NewServer()
	// Signals are ours before the startup line tells anyone we run.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	log.Info("ollama-gateway started", "version", version, "listen", ln.Addr().String(),
		"backends", cfg.OllamaAddresses, "config", *cfgPath)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go gw.WatchConfig(watchCtx, time.Second)

	for {
		select {
		case <-hups:
			_, _ = gw.Reload() // it logs a refusal itself
			continue
		case err := <-serveErr:
			log.Error("server stopped", "err", err)
			return 1
		case sig := <-sigs:
			stopWatch() // no reload may start while the gateway closes
			return shutdown(srv, gw, log, sig, sigs)
		}
	}
}

// configFlag defines -config: default $OLLAMA_GATEWAY_CONFIG, else
// config.json.
func configFlag(fs *flag.FlagSet) *string {
	def := "config.json"
	if p := os.Getenv("OLLAMA_GATEWAY_CONFIG"); p != "" {
		def = p
	}
	return fs.String("config", def, "path of the configuration file (env OLLAMA_GATEWAY_CONFIG)")
}

// shutdown stops accepting, lets requests in flight finish for the grace
// period (a second signal on sigs cuts it short), and returns the exit
// status.
func shutdown(srv *fasthttp.Server, gw *gateway.Gateway, log *slog.Logger, sig os.Signal, sigs <-chan os.Signal) int {
	grace := gw.Snapshot().Config.Proxy.ShutdownTimeout()
	log.Info("shutting down: letting requests in flight finish", "signal", sig.String(), "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: exiting now")
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := srv.ShutdownWithContext(ctx); err != nil {
		log.Warn("shutdown cut short: closing remaining connections", "err", err)
		return 1
	}
	gw.Close()
	log.Info("stopped")
	return 0
}
