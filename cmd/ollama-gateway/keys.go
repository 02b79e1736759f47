package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/keyfile"
)

// runKeys manages keys in the configuration file offline:
//
//	keys new   generate a key, append it to apiKeys atomically, print it;
//	           with -digest the file gets its sha256: digest, not the key
//	keys list  print the public id of every key (never a key)
//
// A running gateway picks the change up by its file watch. keys new edits
// the file under its lock (keyfile.AddKey), as the gateway does, so runs
// beside a running gateway lose no key and undo no revocation.
func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "new" && args[0] != "list") {
		fmt.Fprintln(stderr, "usage: ollama-gateway keys new [-digest] [-config config.json]\n"+
			"       ollama-gateway keys list [-config config.json]")
		return 2
	}
	fs := flag.NewFlagSet("ollama-gateway keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	var digest *bool
	if args[0] == "new" {
		digest = fs.Bool("digest", false, `store the key's "sha256:" digest in the file, not the key (shown only now)`)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch args[0] {
	case "new":
		key, err := config.GenerateKey()
		if err == nil {
			entry := key
			if *digest {
				entry = config.DigestEntry(key)
			}
			_, err = keyfile.AddKey(*path, entry)
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
