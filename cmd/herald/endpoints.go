package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"strings"
	"time"
)

func init() {
	commands["endpoints"] = command{summary: "create, list and manage endpoints", run: runEndpoints,
		subs: endpointCommands, order: endpointOrder}
}

var endpointCommands = map[string]subcommand{
	"create":        {summary: "register an endpoint; prints it with its secret", run: runEndpointsCreate},
	"list":          {summary: "list endpoints (secrets truncated)", run: runEndpointsList},
	"get":           {summary: "show one endpoint", run: runEndpointsGet},
	"update":        {summary: "change an endpoint's URL, event types, name or rate limit", run: runEndpointsUpdate},
	"enable":        {summary: "resume deliveries to a disabled endpoint; --recover-since re-queues what failed", run: runEndpointsEnable},
	"disable":       {summary: "stop deliveries to an endpoint; cancels its pending ones", run: runEndpointsDisable},
	"delete":        {summary: "delete an endpoint; cancels its pending deliveries", run: runEndpointsDelete},
	"rotate-secret": {summary: "give an endpoint a new secret", run: runEndpointsRotate},
	"ping":          {summary: "send a webhook.ping message to an endpoint", run: runEndpointsPing},
}

var endpointOrder = []string{"create", "list", "get", "update", "enable", "disable", "delete", "rotate-secret", "ping"}

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
	return showCall(ctx, name, "[--tenant T] [--output json|table]", args, stdout, stderr, endpointsTable,
		func([]string) string { return "/v1/endpoints" })
}

func runEndpointsGet(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return showCall(ctx, name, "ID [--tenant T] [--output json|table]", args, stdout, stderr, endpointTable,
		func(pos []string) string { return "/v1/endpoints/" + pathEscape(pos[0]) }, "ID")
}

func runEndpointsUpdate(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "ID [--url URL] [--event-type TYPE]... [--all-events] [--name NAME] [--rate-limit N] [--tenant T]\n\n"+
		"Changes an endpoint (PATCH /v1/endpoints/ID) and prints it. Only the flags given\n"+
		"are sent; the rest stays as it is. --event-type replaces the endpoint's list of\n"+
		"event types; --all-events empties it, subscribing the endpoint to every type.\n"+
		"--name \"\" clears the name, --rate-limit 0 the limit. Enable and disable it\n"+
		"with 'herald endpoints enable|disable ID'.", stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	u := fs.String("url", "", "the endpoint's new `URL`")
	var types stringList
	fs.Var(&types, "event-type", "subscribe to this event `type` only (repeatable); replaces the current list")
	allEvents := fs.Bool("all-events", false, "subscribe to every event type (clears the list)")
	epName := fs.String("name", "", "a new `name` for people (\"\" clears it)")
	rate := fs.Int("rate-limit", 0, "at most `N` attempts per second to this endpoint (0: no limit)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos, "ID"); err != nil {
		return err
	}
	body := map[string]any{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "url":
			body["url"] = *u
		case "event-type":
			body["event_types"] = []string(types)
		case "all-events":
			if *allEvents {
				body["event_types"] = []string{}
			}
		case "name":
			body["name"] = *epName
		case "rate-limit":
			body["rate_limit_per_s"] = *rate
		}
	})
	switch {
	case len(types) > 0 && *allEvents:
		return usagef("%s: --event-type and --all-events contradict each other; give one", name)
	case len(body) == 0:
		return usagef("%s: nothing to change: give --url, --event-type, --all-events, --name or --rate-limit", name)
	case *rate < 0:
		return usagef("%s: --rate-limit must be 0 (no limit) or more", name)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndPrint(ctx, c, http.MethodPatch, c.tenantPath("/v1/endpoints/"+pathEscape(pos[0])), body, stdout)
}

func runEndpointsEnable(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return endpointState(ctx, name, args, stdout, stderr, "enabled",
		"Resumes deliveries to the endpoint: messages sent from now on reach it again, its\n"+
			"circuit breaker is closed and its record of failures forgotten. With --recover-since,\n"+
			"its deliveries of messages created since then that failed or were cancelled (while\n"+
			"it was failing or disabled) get a fresh round of attempts; without, they stay as\n"+
			"they are.")
}

func runEndpointsDisable(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return endpointState(ctx, name, args, stdout, stderr, "disabled",
		"Stops deliveries to the endpoint and cancels its pending ones; it keeps its secret\n"+
			"and settings. Herald disables an endpoint itself when it answers 410 Gone, or\n"+
			"when every attempt to it has failed for --disable-after (herald serve).")
}

// endpointState sets an endpoint's state (PATCH {"state": state}) and
// prints it. Enabling takes --recover-since.
func endpointState(ctx context.Context, name string, args []string, stdout, stderr io.Writer, state, desc string) error {
	enabling := state == "enabled"
	synopsis := "ID [--tenant T]"
	if enabling {
		synopsis = "ID [--recover-since TIME] [--tenant T]"
	}
	fs := newFlagSet(name, synopsis+"\n\n"+desc, stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	var since *string
	if enabling {
		since = fs.String("recover-since", "", "also re-queue the deliveries that failed or were cancelled, of messages created since this RFC 3339 `time`")
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos, "ID"); err != nil {
		return err
	}
	body := map[string]string{"state": state}
	if since != nil && *since != "" {
		if _, err := time.Parse(time.RFC3339, *since); err != nil {
			return usagef("%s: --recover-since %q is not an RFC 3339 time like 2026-03-01T00:00:00Z", name, *since)
		}
		body["recover_since"] = *since
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndPrint(ctx, c, http.MethodPatch, c.tenantPath("/v1/endpoints/"+pathEscape(pos[0])), body, stdout)
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

// showCall runs a sub-command like plainCall (tenanted), with --output:
// the answer is printed as JSON or, with --output table, by table.
func showCall(ctx context.Context, name, synopsis string, args []string, stdout, stderr io.Writer,
	table func(io.Writer, []byte) error, path func(pos []string) string, argNames ...string) error {
	fs := newFlagSet(name, synopsis, stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	out := addOutputFlag(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos, argNames...); err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndShow(ctx, c, http.MethodGet, c.tenantPath(path(pos)), nil, stdout, out, table)
}

// callAndPrint makes one API call and prints its JSON answer, if any.
func callAndPrint(ctx context.Context, c *apiClient, method, path string, body any, stdout io.Writer) error {
	return callAndShow(ctx, c, method, path, body, stdout, nil, nil)
}
