package main

import (
	"context"
	"io"
	"net/http"
)

func init() {
	commands["signing-keys"] = command{summary: "rotate and list the signing keys of override deliveries", run: runSigningKeys,
		subs: signingKeyCommands, order: signingKeyOrder}
}

var signingKeyCommands = map[string]subcommand{
	"rotate": {summary: "make a new signing key for override deliveries; prints the new JWKS", run: runSigningKeysRotate},
	"list":   {summary: "print the published signing keys (GET /.well-known/jwks.json)", run: runSigningKeysList},
}

var signingKeyOrder = []string{"rotate", "list"}

func runSigningKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "signing-keys", signingKeyCommands, signingKeyOrder, args, stdout, stderr)
}

func runSigningKeysRotate(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return signingKeysCall(ctx, name, args, stdout, stderr, http.MethodPost, "/v1/signing-keys/rotate",
		"Makes a new key for the signatures of override deliveries (send --uri: v1a Ed25519\n"+
			"or RS256 JWTs, as serve --override-signature says) and prints the JWKS receivers\n"+
			"verify with. Deliveries are signed with the new key from now on; the old one stays\n"+
			"published for 24 hours, so that receivers caching the JWKS keep verifying. The\n"+
			"keys are the cluster's, not a tenant's: it needs the admin token.")
}

func runSigningKeysList(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return signingKeysCall(ctx, name, args, stdout, stderr, http.MethodGet, "/.well-known/jwks.json",
		"Prints the JWKS receivers verify override deliveries with: the current public\n"+
			"signing keys and those retired less than 24 hours ago. The route needs no token.")
}

// signingKeysCall makes one call without arguments and prints its answer.
func signingKeysCall(ctx context.Context, name string, args []string, stdout, stderr io.Writer, method, path, desc string) error {
	fs := newFlagSet(name, "\n\n"+desc, stderr)
	cf := addClientFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndPrint(ctx, c, method, path, nil, stdout)
}
