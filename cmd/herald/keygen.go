package main

import (
	"context"
	"fmt"
	"io"

	"github.com/heraldhq/herald/signer"
)

func init() {
	commands["keygen"] = command{summary: "generate an HMAC secret or an Ed25519 key pair", run: runKeygen}
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", "(hmac | ed25519)\n\n"+
		"hmac prints one line: a new whsec_ secret (base64 of 32 random bytes).\n"+
		"ed25519 prints two lines: the whsk_ private key (base64 of the 32-byte seed),\n"+
		"then the whpk_ public key (base64 of 32 bytes) to give receivers.", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("keygen takes one argument: hmac or ed25519")
	}
	switch fs.Arg(0) {
	case "hmac":
		fmt.Fprintln(stdout, signer.GenerateHMACSecret())
	case "ed25519":
		priv, pub := signer.GenerateEd25519()
		fmt.Fprintln(stdout, priv)
		fmt.Fprintln(stdout, pub)
	default:
		return usagef("unknown key type %q (want hmac or ed25519)", fs.Arg(0))
	}
	return nil
}
