package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/heraldhq/herald/signer"
)

func init() {
	commands["sign"] = command{summary: "sign a webhook body and print its three headers", run: runSign}
}

func runSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sign", "(--secret whsec_… | --key whsk_…) --id ID --timestamp UNIX [--file F]\n\n"+
		"Reads the body from F or stdin and prints the webhook-id, webhook-timestamp\n"+
		"and webhook-signature headers, one per line.", stderr)
	secret := fs.String("secret", "", "HMAC `secret` (whsec_…) for a v1 signature")
	key := fs.String("key", "", "Ed25519 private `key` (whsk_…) for a v1a signature")
	id := fs.String("id", "", "message `ID` (webhook-id)")
	timestamp := fs.String("timestamp", "", "Unix `seconds` of the attempt (webhook-timestamp)")
	file := fs.String("file", "", "read the body from `F` instead of stdin")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs.Args()); err != nil {
		return err
	}
	if *id == "" || *timestamp == "" {
		return usagef("--id and --timestamp are required")
	}
	sec, err := strconv.ParseInt(*timestamp, 10, 64)
	if err != nil {
		return usagef("--timestamp %q is not a Unix time in seconds", *timestamp)
	}
	s, err := newSigner(*secret, *key)
	if err != nil {
		return err
	}
	body, err := readBody(*file)
	if err != nil {
		return err
	}
	h := http.Header{}
	if err := signer.SetHeaders(h, s, *id, time.Unix(sec, 0), body); err != nil {
		return err
	}
	for _, name := range []string{signer.HeaderID, signer.HeaderTimestamp, signer.HeaderSignature} {
		fmt.Fprintf(stdout, "%s: %s\n", name, h[name][0])
	}
	return nil
}

// newSigner builds the signer selected by exactly one of --secret and --key.
func newSigner(secret, key string) (signer.Signer, error) {
	switch {
	case (secret == "") == (key == ""):
		return nil, usagef("exactly one of --secret or --key is required")
	case secret != "":
		s, err := signer.NewHMAC(secret)
		if err != nil {
			return nil, usagef("--secret: %v", err)
		}
		return s, nil
	default:
		k, err := signer.ParsePrivateKey(key)
		if err != nil {
			return nil, usagef("--key: %v", err)
		}
		return signer.NewEd25519(k)
	}
}

// readBody reads the exact body bytes from file, or from stdin when file is
// empty; signatures cover every byte, so nothing is trimmed.
func readBody(file string) ([]byte, error) {
	if file == "" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(file)
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}
