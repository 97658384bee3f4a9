package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

func init() {
	commands["messages"] = command{summary: "show, list, retry and recover messages", run: runMessages,
		subs: messageCommands, order: messageOrder}
}

var messageCommands = map[string]subcommand{
	"get":     {summary: "show a message with its deliveries and attempts", run: runMessagesGet},
	"list":    {summary: "list messages, newest first", run: runMessagesList},
	"retry":   {summary: "re-queue a message's failed deliveries now", run: runMessagesRetry},
	"recover": {summary: "re-queue every failed delivery in a time window", run: runMessagesRecover},
}

var messageOrder = []string{"get", "list", "retry", "recover"}

func runMessages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "messages", messageCommands, messageOrder, args, stdout, stderr)
}

func runMessagesGet(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return showCall(ctx, name, "ID [--tenant T] [--output json|table]\n\n"+
		"Shows a message with its deliveries (one per endpoint, or per --uri) and their\n"+
		"attempts, oldest first. As JSON it includes the payload; as a table, three tables:\n"+
		"the message, its deliveries and every attempt with its status code or error.",
		args, stdout, stderr, messageTable, func(pos []string) string { return "/v1/messages/" + pathEscape(pos[0]) }, "ID")
}

func runMessagesRetry(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return plainCall(ctx, name, args, stdout, stderr, http.MethodPost, true,
		func(pos []string) string { return "/v1/messages/" + pathEscape(pos[0]) + "/retry" }, "ID")
}

func runMessagesList(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "[--status S] [--type T] [--limit N] [--after CURSOR] [--tenant T] [--output json|table]\n\n"+
		"Lists messages, newest first, a page at a time. The JSON's next_cursor (in a\n"+
		"table, the last line) is the --after of the next page; null at the end.", stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	status := fs.String("status", "", "only messages with this `status`: pending, succeeded or failed")
	typ := fs.String("type", "", "only messages of this event `type`")
	limit := fs.Int("limit", 0, "at most `N` messages (default 50, at most 250)")
	after := fs.String("after", "", "the next_cursor of the previous page: list the messages older than this `ID`")
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
	if *status != "" {
		q.Set("status", *status)
	}
	if *typ != "" {
		q.Set("type", *typ)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *after != "" {
		q.Set("after", *after)
	}
	path := c.tenantPath("/v1/messages")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return callAndShow(ctx, c, http.MethodGet, path, nil, stdout, out, messagesTable)
}

func runMessagesRecover(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "--since TIME [--until TIME] [--tenant T]\n\n"+
		"Re-queues the failed deliveries of every message created in the window, e.g.\n"+
		"after an endpoint's outage outlasted the retry schedule; each gets a fresh round\n"+
		"of attempts. Prints {\"requeued\": n}.", stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	since := fs.String("since", "", "re-queue failed deliveries of messages created from this RFC 3339 `time` (required)")
	until := fs.String("until", "", "… up to this RFC 3339 `time` (default now)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	if *since == "" {
		return usagef("%s: --since is required", name)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndPrint(ctx, c, http.MethodPost, c.tenantPath("/v1/messages/recover"), recoverRequest{Since: *since, Until: *until}, stdout)
}
