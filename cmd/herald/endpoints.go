package main

import (
	"context"
	"io"
	"net/http"
	"strings"
)

func init() {
	commands["endpoints"] = command{summary: "create, list and manage endpoints", run: runEndpoints}
}

var endpointCommands = map[string]subcommand{
	"create":        {summary: "register an endpoint; prints it with its secret", run: runEndpointsCreate},
	"list":          {summary: "list endpoints (secrets truncated)", run: runEndpointsList},
	"get":           {summary: "show one endpoint", run: runEndpointsGet},
	"delete":        {summary: "delete an endpoint", run: runEndpointsDelete},
	"rotate-secret": {summary: "give an endpoint a new secret", run: runEndpointsRotate},
	"ping":          {summary: "send a webhook.ping message to an endpoint", run: runEndpointsPing},
}

var endpointOrder = []string{"create", "list", "get", "delete", "rotate-secret", "ping"}

func runEndpoints(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "endpoints", endpointCommands, endpointOrder, args, stdout, stderr)
}

func runEndpointsCreate(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "--url U [--event-type T]... [--name N] [--rate-limit N] [--tenant T]", stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	u := fs.String("url", "", "the endpoint's `URL` (required)")
	var types stringList
	fs.Var(&types, "event-type", "subscribe to this event `type` (repeatable; none: every type)")
	epName := fs.String("name", "", "a `name` for people")
	rate := fs.Int("rate-limit", 0, "at most `N` attempts per second to this endpoint (0: no limit)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	if *u == "" {
		return usagef("%s: --url is required", name)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	body := createEndpointRequest{URL: *u, EventTypes: types, Name: *epName, RateLimitPerS: *rate}
	return callAndPrint(ctx, c, http.MethodPost, c.tenantPath("/v1/endpoints"), body, stdout)
}

func runEndpointsList(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return plainCall(ctx, name, args, stdout, stderr, http.MethodGet, true, func([]string) string { return "/v1/endpoints" })
}

func runEndpointsGet(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return endpointAction(ctx, name, args, stdout, stderr, http.MethodGet, "")
}

func runEndpointsDelete(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return endpointAction(ctx, name, args, stdout, stderr, http.MethodDelete, "")
}

func runEndpointsPing(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return endpointAction(ctx, name, args, stdout, stderr, http.MethodPost, "/ping")
}

func runEndpointsRotate(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "ID [--revoke-now] [--tenant T]", stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	now := fs.Bool("revoke-now", false, "stop signing with the old secret at once (default: after 24h)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos, "ID"); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	body := rotateSecretRequest{Revoke: revokeAfter24h}
	if *now {
		body.Revoke = revokeImmediately
	}
	return callAndPrint(ctx, c, http.MethodPost, c.tenantPath("/v1/endpoints/"+pathEscape(pos[0])+"/rotate-secret"), body, stdout)
}

// plainCall runs a sub-command that takes only the client flags (and
// --tenant, if tenanted) and one positional argument per name in argNames,
// and prints the answer of one API call to the path built from those
// arguments (moved under /v1/tenants/TENANT with --tenant).
func plainCall(ctx context.Context, name string, args []string, stdout, stderr io.Writer,
	method string, tenanted bool, path func(pos []string) string, argNames ...string) error {
	synopsis := strings.Join(argNames, " ")
	if tenanted {
		synopsis = strings.TrimSpace(synopsis + " [--tenant T]")
	}
	fs := newFlagSet(name, synopsis, stderr)
	cf := addClientFlags(fs)
	if tenanted {
		cf.addTenantFlag()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos, argNames...); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndPrint(ctx, c, method, c.tenantPath(path(pos)), nil, stdout)
}

// endpointAction calls method on /v1/endpoints/ID + suffix.
func endpointAction(ctx context.Context, name string, args []string, stdout, stderr io.Writer, method, suffix string) error {
	return plainCall(ctx, name, args, stdout, stderr, method, true,
		func(pos []string) string { return "/v1/endpoints/" + pathEscape(pos[0]) + suffix }, "ID")
}

// callAndPrint makes one API call and prints its JSON answer, if any.
func callAndPrint(ctx context.Context, c *apiClient, method, path string, body any, stdout io.Writer) error {
	out, err := c.do(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	if len(out) == 0 {
		return nil
	}
	return printJSON(stdout, out)
}
