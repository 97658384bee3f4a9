package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// helpWidth is the width help text is wrapped to.
const helpWidth = 80

// connectionFlags are the flags every client command takes (addClientFlags);
// help lists them apart from the command's own.
var connectionFlags = map[string]bool{"server": true, "api-token": true, "api-token-file": true, "ca-cert": true}

// examples are the example command lines each command's help ends with,
// by the command's name as newFlagSet and runGroup get it.
var examples = map[string][]string{
	"serve": {
		"herald serve --allow-private-networks          # one node on 127.0.0.1:8080, data in ./herald-data",
		"HERALD_API_TOKEN_FILE=/etc/herald/token herald serve --http-addr 0.0.0.0:8080 --data-dir /var/lib/herald",
		"herald serve --breaker-failures 20 --breaker-period 5m --disable-after 72h   # endpoint health thresholds",
	},
	"send": {
		`herald send --type batch.succeeded --data '{"batch_id": "b_123"}' --idempotency-key b_123`,
		"herald send --tenant acme --type job.done --data @payload.json --uri https://acme.example/hooks",
		"herald send --batch messages.json",
	},
	"endpoints": {
		"herald endpoints create --url https://example.com/webhooks --event-type batch.succeeded",
		"herald endpoints list --output table",
	},
	"endpoints create": {
		"herald endpoints create --url https://example.com/webhooks --event-type batch.succeeded --event-type batch.failed",
		"herald endpoints create --tenant acme --url https://acme.example/hooks --name acme-prod --rate-limit 10",
	},
	"endpoints list": {
		"herald endpoints list --output table",
		"herald endpoints list --tenant acme | jq -r '.data[].id'",
	},
	"endpoints get": {
		"herald endpoints get ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA --output table",
	},
	"endpoints update": {
		"herald endpoints update ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA --url https://example.com/new-hooks",
		"herald endpoints update ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA --event-type batch.failed --name alerts",
		"herald endpoints update ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA --all-events --rate-limit 0",
	},
	"endpoints enable": {
		"herald endpoints enable ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA",
		"herald endpoints enable ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA --recover-since 2026-03-01T00:00:00Z   # re-queue what failed since",
	},
	"endpoints disable": {
		"herald endpoints disable ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA",
		"herald endpoints disable ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA --tenant acme",
	},
	"endpoints delete": {
		"herald endpoints delete ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA",
	},
	"endpoints rotate-secret": {
		"herald endpoints rotate-secret ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA",
		"herald endpoints rotate-secret ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA --revoke-now   # the old secret leaked",
	},
	"endpoints ping": {
		"herald endpoints ping ep_01JQ2Z8K6R3YB1V9T7W4XH5NCA",
	},
	"messages": {
		"herald messages list --status failed --output table",
		"herald messages get msg_01JQ2ZB1C8M4T6W0Y2A5D7F9HK --output table",
	},
	"messages get": {
		"herald messages get msg_01JQ2ZB1C8M4T6W0Y2A5D7F9HK --output table",
		"herald messages get msg_01JQ2ZB1C8M4T6W0Y2A5D7F9HK | jq -r '.deliveries[].status'",
	},
	"messages list": {
		"herald messages list --status failed --output table",
		"herald messages list --limit 100 --after msg_01JQ2ZB1C8M4T6W0Y2A5D7F9HK",
	},
	"messages retry": {
		"herald messages retry msg_01JQ2ZB1C8M4T6W0Y2A5D7F9HK",
	},
	"messages recover": {
		"herald messages recover --since 2026-01-01T00:00:00Z --until 2026-01-02T00:00:00Z",
		`herald messages recover --tenant acme --since "$(date -u -d '-6 hours' +%Y-%m-%dT%H:%M:%SZ)"`,
	},
	"tenants": {
		"herald tenants list --output table",
		"herald tenants token acme --ttl 720h",
	},
	"tenants list": {
		"herald tenants list --output table",
		"herald tenants list --limit 250 | jq -r '.data[].id'",
	},
	"tenants delete": {
		"herald tenants delete acme",
	},
	"tenants token": {
		"herald tenants token acme --ttl 720h",
		"herald tenants token acme --ttl 1h | jq -r .token   # then: herald endpoints list --tenant acme --api-token htk_…",
	},
	"tenants revoke-tokens": {
		"herald tenants revoke-tokens acme",
	},
	"cluster": {
		"herald cluster status --output table",
		"herald cluster join --id n4 --raft-addr 10.0.0.4:8090",
	},
	"cluster status": {
		"herald cluster status --output table",
		"herald cluster status --server http://127.0.0.1:8082 | jq -r .leader",
	},
	"cluster join": {
		"herald cluster join --id n4 --raft-addr 10.0.0.4:8090",
	},
	"cluster remove": {
		"herald cluster remove n3",
	},
	"signing-keys": {
		"herald signing-keys rotate",
		"herald signing-keys list",
	},
	"signing-keys rotate": {
		"herald signing-keys rotate",
	},
	"signing-keys list": {
		"herald signing-keys list | jq -r '.keys[].kid'",
	},
	"backup": {
		"herald backup --out herald-$(date -u +%Y%m%dT%H%M%SZ).backup",
	},
	"restore": {
		"herald restore --data-dir ./restored herald.backup && herald serve --data-dir ./restored",
	},
	"tls": {
		"herald tls ca",
		"herald tls cert --node n1 --ip 10.0.0.1",
	},
	"tls ca": {
		"herald tls ca --out-dir ./pki",
	},
	"tls cert": {
		"herald tls cert --node n1 --ip 10.0.0.1 --dns n1.herald.internal",
	},
	"keygen": {
		"herald keygen hmac",
		"herald keygen seal > seal.key && chmod 600 seal.key",
	},
	"sign": {
		"herald sign --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --id msg_1 --timestamp $(date +%s) --file body.json",
	},
	"verify": {
		`herald verify --secret whsec_… --id "$ID" --timestamp "$TS" --signature "$SIG" --file body.json`,
		`herald verify --jwks https://herald.example.com/.well-known/jwks.json --id "$ID" --timestamp "$TS" --signature "$SIG" < body.json`,
	},
	"bench": {
		"herald bench --scenario all",
		"herald bench --scenario steady --nodes 3 --messages 50000 --json results.json",
		"herald bench --scenario failover --backlog 1000000 --json failover-backlog.json",
	},
	"version": {
		"herald version",
	},
}

// descriptions describe the commands whose synopsis has no description,
// in their help; the others show their summary.
var descriptions = map[string]string{
	"endpoints create": "Registers an endpoint and prints it as JSON with its secret (whsec_…), shown only\n" +
		"here and by rotate-secret: give it to the receiver, which verifies deliveries\n" +
		"with it. Without --event-type the endpoint gets messages of every type.",
	"endpoints list": "Lists the endpoints, oldest first, with their secrets truncated.",
	"endpoints get":  "Shows one endpoint, its secret truncated.",
	"endpoints delete": "Deletes an endpoint and cancels its pending deliveries. To stop deliveries\n" +
		"for a while instead, use 'herald endpoints disable'.",
	"endpoints rotate-secret": "Gives an endpoint a new secret and prints it, once. Until the old secret is\n" +
		"revoked (after 24 hours, or at once with --revoke-now), each attempt carries one\n" +
		"signature per live secret, so that the receiver can switch without a gap.",
	"endpoints ping": "Sends a webhook.ping message to the endpoint alone and prints it; follow it\n" +
		"with 'herald messages get ID'.",
	"messages retry": "Re-queues the message's failed deliveries for a fresh round of attempts, now.\n" +
		"Prints {\"requeued\": n}; deliveries still pending or cancelled are left alone.",
	"tenants delete": "Deletes a tenant for good: cancels its pending deliveries and deletes its\n" +
		"endpoints, messages, idempotency keys and tokens.",
	"tenants revoke-tokens": "Revokes every token of the tenant (herald tenants token) at once; prints\n" +
		"{\"revoked\": n}. Each node stops accepting them once it has applied the revocation.",
	"cluster remove": "Removes a node from the Raft configuration, e.g. a machine that is gone for\n" +
		"good; run it against any other member. Stop the node first if it still runs.",
}

// summaryOf is the one-line summary of a command or sub-command ("endpoints
// create"), as the command lists show it.
func summaryOf(name string) string {
	group, sub, ok := strings.Cut(name, " ")
	cmd := commands[group]
	if !ok {
		return cmd.summary
	}
	return cmd.subs[sub].summary
}

// sentence turns a summary into a sentence: capitalised, with a full stop.
func sentence(s string) string {
	if s == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// writeHelp writes a command's help: the usage line, a description, its
// flags (with two dashes), the environment variables they read and
// examples.
func writeHelp(w io.Writer, fs *flag.FlagSet, name, synopsis string) {
	usage, desc, _ := strings.Cut(synopsis, "\n\n")
	usage = strings.TrimSpace(usage)
	if usage == "" {
		usage = "[flags]"
	}
	fmt.Fprintf(w, "Usage: herald %s %s\n\n", name, usage)
	if desc == "" {
		desc = descriptions[name]
	}
	if desc == "" {
		desc = sentence(summaryOf(name))
	}
	writeParagraphs(w, desc)
	var own, conn []*flag.Flag
	client := fs.Lookup("server") != nil // serve has --api-token too
	fs.VisitAll(func(f *flag.Flag) {
		if client && connectionFlags[f.Name] {
			conn = append(conn, f)
		} else {
			own = append(own, f)
		}
	})
	width := 0 // one left column for both lists
	fs.VisitAll(func(f *flag.Flag) {
		if l := len(flagLeft(f)); l <= maxFlagColumn {
			width = max(width, l)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "Flags:")
		writeFlags(w, own, width)
		fmt.Fprintln(w)
	}
	if len(conn) > 0 {
		fmt.Fprintln(w, "Connection flags:")
		writeFlags(w, conn, width)
		fmt.Fprintln(w)
	}
	if env := flagEnv(fs); len(env) > 0 {
		fmt.Fprintln(w, "Environment (a flag given on the command line wins):")
		width := 0
		for _, e := range env {
			width = max(width, len(e[0]))
		}
		for _, e := range env {
			fmt.Fprintf(w, "  %-*s  %s\n", width, e[0], e[1])
		}
		fmt.Fprintln(w)
	}
	writeExamples(w, name)
	fmt.Fprintf(w, "-h, --help prints this help; 'herald help %s' prints it to stdout.\n", name)
}

// writeParagraphs writes text, paragraphs separated by blank lines,
// reflowed to helpWidth, and a blank line after it.
func writeParagraphs(w io.Writer, text string) {
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			fmt.Fprintln(w, strings.Join(wrap(p, helpWidth), "\n"))
			fmt.Fprintln(w)
		}
	}
}

// writeExamples writes the examples of the command name, if it has any.
func writeExamples(w io.Writer, name string) {
	ex := examples[name]
	if len(ex) == 0 {
		return
	}
	fmt.Fprintln(w, "Examples:")
	for _, e := range ex {
		fmt.Fprintln(w, "  "+e)
	}
	fmt.Fprintln(w)
}

// envPattern finds the environment variable a flag's usage names as
// "(env HERALD_X)" or "(env HERALD_X; …)".
var envPattern = regexp.MustCompile(`\benv (HERALD_[A-Z0-9_]+)`)

// flagEnv lists the environment variables the flags of fs read, as pairs
// of variable and flag, in flag order.
func flagEnv(fs *flag.FlagSet) [][2]string {
	var out [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		for _, m := range envPattern.FindAllStringSubmatch(f.Usage, -1) {
			out = append(out, [2]string{m[1], "--" + f.Name})
		}
	})
	return out
}

// maxFlagColumn is the widest "--name VALUE" that has its usage beside it;
// a longer one has it on the next line.
const maxFlagColumn = 26

// flagLeft is a flag as its help's left column shows it: "--name VALUE".
func flagLeft(f *flag.Flag) string {
	placeholder, _ := flag.UnquoteUsage(f)
	if placeholder == "" {
		return "--" + f.Name
	}
	return "--" + f.Name + " " + placeholder
}

// writeFlags writes flags in two columns, the first width wide: "--name
// VALUE" and the usage, wrapped, with a non-zero default at its end.
func writeFlags(w io.Writer, flags []*flag.Flag, width int) {
	indent := strings.Repeat(" ", 2+width+2)
	for _, f := range flags {
		_, usage := flag.UnquoteUsage(f)
		if !zeroDefault(f.DefValue) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		left := flagLeft(f)
		lines := wrap(usage, helpWidth-len(indent))
		if len(left) > width {
			fmt.Fprintf(w, "  %s\n", left)
		} else {
			fmt.Fprintf(w, "  %-*s  %s\n", width, left, lines[0])
			lines = lines[1:]
		}
		for _, l := range lines {
			fmt.Fprintf(w, "%s%s\n", indent, l)
		}
	}
}

// zeroDefault reports whether a flag's default is its type's zero value,
// which help does not show.
func zeroDefault(v string) bool {
	switch v {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// wrap splits s into lines of at most width characters, at spaces; a word
// longer than width gets a line of its own.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width:
			lines = append(lines, line)
			line = word
		default:
			line += " " + word
		}
	}
	return append(lines, line)
}

// groupDescriptions describe the command groups in their help.
var groupDescriptions = map[string]string{
	"endpoints": "Endpoints are the URLs messages are delivered to. Each has a secret (whsec_…)\n" +
		"its deliveries are signed with, an optional event-type filter and rate limit.",
	"messages": "Messages are what 'herald send' enqueues; each has a delivery per subscribed\n" +
		"endpoint, and each delivery its attempts.",
	"tenants": "A tenant is one customer's own endpoints, messages and tokens (the routes under\n" +
		"/v1/tenants/TENANT/…); commands without --tenant act on the tenant \"default\".",
	"cluster": "The Raft members: which node leads, which are reachable; adding and removing voters.",
	"signing-keys": "The cluster's signing keys for override deliveries (send --uri), published at\n" +
		"/.well-known/jwks.json for receivers.",
	"tls": "Certificates for the mutual TLS of the peer port (--raft-addr) between nodes.",
}

// subcommand is one action of a command group (endpoints, messages, cluster).
type subcommand struct {
	synopsis string
	summary  string
	run      func(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error
}

// writeGroupHelp writes the help of a command group.
func writeGroupHelp(w io.Writer, group string, subs map[string]subcommand, order []string) {
	fmt.Fprintf(w, "Usage: herald %s <command> [flags]\n\n", group)
	desc := groupDescriptions[group]
	if desc == "" {
		desc = sentence(commands[group].summary)
	}
	writeParagraphs(w, desc)
	fmt.Fprintln(w, "Commands:")
	width := 0
	for _, name := range order {
		width = max(width, len(name))
	}
	for _, name := range order {
		fmt.Fprintf(w, "  %-*s  %s\n", width, name, subs[name].summary)
	}
	fmt.Fprintln(w)
	writeExamples(w, group)
	writeParagraphs(w, fmt.Sprintf("Run 'herald help %s <command>' (or 'herald %s <command> --help') for its flags, "+
		"environment variables and examples.", group, group))
}

// runGroup dispatches "herald <group> <sub> ...".
func runGroup(ctx context.Context, group string, subs map[string]subcommand, order []string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		writeGroupHelp(stderr, group, subs, order)
		return usagef("%s: no command given (one of %s)", group, strings.Join(order, ", "))
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		writeGroupHelp(stderr, group, subs, order)
		return flag.ErrHelp
	}
	sub, ok := subs[args[0]]
	if !ok {
		if _, known := commands[group]; !known || commands[group].subs == nil {
			return usagef("%s: unknown command %q (see 'herald help %s')", group, args[0], group)
		}
		return unknownCommand(group, args[0])
	}
	return sub.run(ctx, group+" "+args[0], args[1:], stdout, stderr)
}
