package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/keyfile"
)

// runKeys manages keys in the configuration file offline:
//
//	keys new   generate a key, append it to apiKeys atomically, print it;
//	           with -digest the file gets its sha256: digest, not the key;
//	           -name, -models, -max-requests/-window, -tokens/-tokens-window
//	           and -expires give it a policy (an object entry)
//	keys list  print the public id of every key (never a key)
//
// A running gateway picks the change up by its file watch. keys new edits
// the file under its lock (keyfile.AddKey), as the gateway does, so runs
// beside a running gateway lose no key and undo no revocation.
func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "new" && args[0] != "list") {
		fmt.Fprintln(stderr, "usage: ollama-gateway keys new [-digest] [-name N] [-models m1,m2:*] [-max-requests N -window S]\n"+
			"                                [-tokens N -tokens-window S] [-expires 2027-01-31T00:00:00Z] [-config config.json]\n"+
			"       ollama-gateway keys list [-config config.json]")
		return 2
	}
	fs := flag.NewFlagSet("ollama-gateway keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	var digest *bool
	var pol policyFlags
	if args[0] == "new" {
		digest = fs.Bool("digest", false, `store the key's "sha256:" digest in the file, not the key (shown only now)`)
		pol.register(fs)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	entry, err := pol.entry()
	if err != nil {
		fmt.Fprintf(stderr, "ollama-gateway: %v\n", err)
		return 2
	}
	switch args[0] {
	case "new":
		key, err := config.GenerateKey()
		if err == nil {
			entry.Key = key
			if *digest {
				entry.Key = config.DigestEntry(key)
				if entry.HasPolicy() {
					entry.Key, entry.SHA256 = "", strings.TrimPrefix(entry.Key, "sha256:")
				}
			}
			_, err = keyfile.AddEntry(*path, entry)
		}
		if err != nil {
			fmt.Fprintf(stderr, "ollama-gateway: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, key)
	case "list":
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintf(stderr, "ollama-gateway: %v\n", err)
			return 2
		}
		for _, k := range cfg.APIKeys {
			fmt.Fprintf(stdout, "%s api\n", k.ID())
		}
		for _, k := range cfg.AdminKeys {
			fmt.Fprintf(stdout, "%s admin\n", k.ID())
		}
		for _, k := range cfg.APIPublicKeys {
			fmt.Fprintf(stdout, "%s api publicKey\n", config.KeyID(k.Fingerprint()))
		}
		for _, k := range cfg.AdminPublicKeys {
			fmt.Fprintf(stdout, "%s admin publicKey\n", config.KeyID(k.Fingerprint()))
		}
	}
	return 0
}

// policyFlags are the flags of `keys new` that give the key a policy, the
// fields of POST /config/new-key's body.
type policyFlags struct {
	name, models, expires string
	maxRequests, window   int
	tokens                int64
	tokensWindow          int
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.name, "name", "", "the key's name, shown in logs and usage")
	fs.StringVar(&p.models, "models", "", `comma-separated models the key may use ("llama3.2,qwen2.5:*"); default all`)
	fs.IntVar(&p.maxRequests, "max-requests", 0, "the key's own rate: requests per -window")
	fs.IntVar(&p.window, "window", 0, "the window of -max-requests, in seconds")
	fs.Int64Var(&p.tokens, "tokens", 0, "the key's token budget per -tokens-window")
	fs.IntVar(&p.tokensWindow, "tokens-window", 0, "the window of -tokens, in seconds")
	fs.StringVar(&p.expires, "expires", "", "when the key expires, RFC 3339 (2027-01-31T00:00:00Z)")
}

// entry returns the key entry the flags give, validated, without a key.
func (p *policyFlags) entry() (config.KeyEntry, error) {
	e := config.KeyEntry{KeyPolicy: config.KeyPolicy{Name: p.name, ExpiresAt: p.expires}}
	if p.models != "" {
		for m := range strings.SplitSeq(p.models, ",") {
			e.Models = append(e.Models, strings.TrimSpace(m))
		}
	}
	if p.maxRequests != 0 || p.window != 0 {
		e.RateLimit = &config.RateOverride{MaxRequests: p.maxRequests, TimeWindowSeconds: p.window}
	}
	if p.tokens != 0 || p.tokensWindow != 0 {
		e.Tokens = &config.TokenBudget{Max: p.tokens, WindowSeconds: p.tokensWindow}
	}
	probe := e
	probe.Key = "x"
	if err := config.ValidateKeyEntry(probe); err != nil {
		return e, errors.New(flagNames(err.Error()))
	}
	return e, nil
}

// flagNames turns the field names of a key entry's errors into the flags
// that set them.
func flagNames(msg string) string {
	return strings.NewReplacer("rateLimit.maxRequests", "-max-requests", "rateLimit.timeWindowSeconds", "-window",
		"tokens.max", "-tokens", "tokens.windowSeconds", "-tokens-window", "expiresAt", "-expires",
		"models", "-models", "name", "-name", "\n", "; ").Replace(msg)
}
