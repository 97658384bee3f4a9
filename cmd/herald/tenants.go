package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

func init() {
	commands["tenants"] = command{summary: "list and delete tenants; make and revoke tenant tokens", run: runTenants,
		subs: tenantCommands, order: tenantOrder}
}

var tenantCommands = map[string]subcommand{
	"list":          {summary: "list tenants with their counts", run: runTenantsList},
	"delete":        {summary: "delete a tenant: its endpoints, messages, keys and tokens", run: runTenantsDelete},
	"token":         {summary: "make a token for one tenant's routes; prints it once", run: runTenantsToken},
	"revoke-tokens": {summary: "revoke every token of a tenant", run: runTenantsRevoke},
}

var tenantOrder = []string{"list", "delete", "token", "revoke-tokens"}

func runTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "tenants", tenantCommands, tenantOrder, args, stdout, stderr)
}

func runTenantsList(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "[--limit N] [--after CURSOR] [--output json|table]\n\n"+
		"Lists the tenants that hold anything (endpoints, messages, pending deliveries or\n"+
		"tokens), by id, with their counts, a page at a time: the JSON's next_cursor (in a\n"+
		"table, the last line) is the --after of the next page.", stderr)
	cf := addClientFlags(fs)
	limit := fs.Int("limit", 0, "at most `N` tenants (default 50, at most 250)")
	after := fs.String("after", "", "the next_cursor of the previous page: list the tenants after this `TENANT`")
	out := addOutputFlag(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("%s: --limit must be positive", name)
	}
	if err := out.check(); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *after != "" {
		q.Set("after", *after)
	}
	path := "/v1/tenants"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return callAndShow(ctx, c, http.MethodGet, path, nil, stdout, out, tenantsTable)
}

func runTenantsDelete(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return tenantCall(ctx, name, args, stdout, stderr, http.MethodDelete, "")
}

func runTenantsRevoke(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return tenantCall(ctx, name, args, stdout, stderr, http.MethodDelete, "/tokens")
}

// tenantCall runs a command that takes one TENANT and no body: method on
// /v1/tenants/TENANT + suffix.
func tenantCall(ctx context.Context, name string, args []string, stdout, stderr io.Writer, method, suffix string) error {
	fs := newFlagSet(name, "TENANT", stderr)
	cf := addClientFlags(fs)
	tenant, err := parseTenantArg(fs, name, args)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndPrint(ctx, c, method, "/v1/tenants/"+pathEscape(tenant)+suffix, nil, stdout)
}

// parseTenantArg parses a command's flags and its one TENANT argument.
func parseTenantArg(fs *flag.FlagSet, name string, args []string) (string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return "", err
	}
	if err := exactArgs(name, pos, "TENANT"); err != nil {
		return "", err
	}
	return pos[0], checkTenantArg(name+": tenant", pos[0])
}

func runTenantsToken(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "TENANT --ttl DURATION\n\n"+
		"Makes a bearer token that reaches only /v1/tenants/TENANT/endpoints… and\n"+
		"/v1/tenants/TENANT/messages… and prints it as JSON, once: Herald keeps only\n"+
		"its hash. Hand it to the tenant, who uses it as --api-token with --tenant TENANT.", stderr)
	cf := addClientFlags(fs)
	ttl := fs.String("ttl", "", "how long the token lives: a `duration` from 1m to 8760h, e.g. 1h or 720h (required)")
	tenant, err := parseTenantArg(fs, name, args)
	if err != nil {
		return err
	}
	if *ttl == "" {
		return usagef("%s: --ttl is required", name)
	}
	if _, err := time.ParseDuration(*ttl); err != nil {
		return usagef("%s: --ttl %q is not a duration such as 1h or 90m", name, *ttl)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	body := map[string]string{"ttl": *ttl}
	return callAndPrint(ctx, c, http.MethodPost, "/v1/tenants/"+pathEscape(tenant)+"/tokens", body, stdout)
}
