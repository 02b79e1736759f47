// Command ollama-gateway runs the gateway in front of one or more Ollama
// servers.
//
// Usage:
//
//	ollama-gateway [-config config.json] [-version]
//
// The configuration path defaults to $OLLAMA_GATEWAY_CONFIG, else
// config.json. A missing or invalid configuration exits with status 2 and a
// message naming the field and the problem. SIGINT or SIGTERM stop accepting
// connections and let streams in flight finish for up to
// proxy.shutdownTimeoutSeconds; a second signal exits at once.
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

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ollama-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defPath := "config.json"
	if p := os.Getenv("OLLAMA_GATEWAY_CONFIG"); p != "" {
		defPath = p
	}
	cfgPath := fs.String("config", defPath, "path of the configuration file (env OLLAMA_GATEWAY_CONFIG)")
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

	gw, err := gateway.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "ollama-gateway: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", cfg.GatewayAddress)
	if err != nil {
		fmt.Fprintf(stderr, "ollama-gateway: %v\n", err)
		return 1
	}
	srv := gw.NewServer()
	log.Info("ollama-gateway started", "version", version, "listen", ln.Addr().String(),
		"backends", cfg.OllamaAddresses, "config", *cfgPath)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		log.Error("server stopped", "err", err)
		return 1
	case sig := <-sigs:
		grace := cfg.Proxy.ShutdownTimeout()
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
		gw.State().Proxy.Pool().Close()
		log.Info("stopped")
		return 0
	}
}
