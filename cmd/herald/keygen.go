package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/heraldhq/herald/signer"
)

func init() {
	commands["keygen"] = command{summary: "generate an HMAC secret, an Ed25519 key pair or a seal key", run: runKeygen}
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", "(hmac | ed25519 | seal)\n\n"+
		"hmac prints one line: a new whsec_ secret (base64 of 32 random bytes).\n"+
		"ed25519 prints two lines: the whsk_ private key (base64 of the 32-byte seed),\n"+
		"then the whpk_ public key (base64 of 32 bytes) to give receivers.\n"+
		"seal prints one line: a new key for serve --seal-key-file (base64 of 32 random bytes).", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("keygen takes one argument: hmac, ed25519 or seal")
	}
	switch fs.Arg(0) {
	case "hmac":
		fmt.Fprintln(stdout, signer.GenerateHMACSecret())
	case "ed25519":
		priv, pub := signer.GenerateEd25519()
		fmt.Fprintln(stdout, priv)
		fmt.Fprintln(stdout, pub)
	case "seal":
		key := make([]byte, sealKeySize)
		rand.Read(key) // never fails: crypto/rand crashes the program instead
		fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	default:
		return usagef("unknown key type %q (want hmac, ed25519 or seal)", fs.Arg(0))
	}
	return nil
}
