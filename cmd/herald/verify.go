package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/signer/jwks"
)

func init() {
	commands["verify"] = command{summary: "verify a webhook signature (exit 0 and print ok if valid)", run: runVerify}
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "(--secret whsec_… | --public-key whpk_… | --jwks URL) --id ID --timestamp UNIX --signature SIG [--file F] [--tolerance 5m]\n\n"+
		"Reads the body from F or stdin. Prints ok and exits 0 when the signature is\n"+
		"valid and the timestamp within tolerance of now; otherwise prints why and\n"+
		"exits 1. With --jwks, SIG is a v1a signature list or an RS256 JWT.", stderr)
	secret := fs.String("secret", "", "HMAC `secret` (whsec_…) for v1 signatures")
	publicKey := fs.String("public-key", "", "Ed25519 public `key` (whpk_…) for v1a signatures")
	jwksURL := fs.String("jwks", "", "`URL` of the sender's JWKS, for v1a signatures or JWTs")
	id := fs.String("id", "", "message `ID` (webhook-id)")
	timestamp := fs.String("timestamp", "", "Unix `seconds` (webhook-timestamp)")
	signature := fs.String("signature", "", "the webhook-signature header `value`")
	file := fs.String("file", "", "read the body from `F` instead of stdin")
	tolerance := fs.Duration("tolerance", signer.DefaultTolerance, "how far the timestamp may be from now, either way")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs.Args()); err != nil {
		return err
	}
	given := 0
	for _, v := range []string{*secret, *publicKey, *jwksURL} {
		if v != "" {
			given++
		}
	}
	switch {
	case given != 1:
		return usagef("exactly one of --secret, --public-key or --jwks is required")
	case *id == "" || *timestamp == "" || *signature == "":
		return usagef("--id, --timestamp and --signature are required")
	case *tolerance <= 0:
		return usagef("--tolerance must be positive")
	}
	body, err := readBody(*file)
	if err != nil {
		return err
	}

	if *jwksURL != "" {
		f, err := jwks.NewFetcher(jwks.FetcherConfig{URL: *jwksURL})
		if err != nil {
			return usagef("--jwks: %v", err)
		}
		err = f.Verify(ctx, *id, *timestamp, *signature, body, jwks.VerifyConfig{Tolerance: *tolerance})
		return printOK(stdout, err)
	}
	cfg := signer.VerifierConfig{Tolerance: *tolerance}
	if *secret != "" {
		cfg.Secrets = []string{*secret}
	} else {
		key, err := signer.ParsePublicKey(*publicKey)
		if err != nil {
			return usagef("--public-key: %v", err)
		}
		cfg.PublicKeys = []ed25519.PublicKey{key}
	}
	v, err := signer.NewVerifier(cfg)
	if err != nil {
		return usagef("--secret: %v", err)
	}
	return printOK(stdout, v.VerifyValues(*id, *timestamp, *signature, body))
}

func printOK(stdout io.Writer, err error) error {
	if err == nil {
		fmt.Fprintln(stdout, "ok")
	}
	return err
}
