package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/heraldhq/herald/bench"
)

func init() {
	commands["bench"] = command{summary: "run a load benchmark against real herald serve processes", run: runBench}
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "[--scenario S] [--nodes N] [--messages N] [--concurrency N] [--size BYTES] [--peer-tls] [--tenants N [--endpoints-per-tenant M]] [--warmup N] [--backlog N] [--batch N] [--json FILE]", stderr)
	scenario := fs.String("scenario", "steady", "one of "+strings.Join(bench.Scenarios, ", ")+", or all")
	nodes := fs.Int("nodes", 0, "herald serve processes: 1 or 3 (default 1; 3 for failover)")
	messages := fs.Int("messages", 20000, "messages to send")
	concurrency := fs.Int("concurrency", 48, "concurrent clients")
	size := fs.Int("size", 1024, "message body size in bytes")
	rate := fs.Int("rate", 0, "offer this many messages per second (default: as fast as they are acknowledged)")
	jsonPath := fs.String("json", "", "also write the figures to this file as JSON")
	profileDir := fs.String("profile", "", "write a 5s CPU profile of the leader under load to this `dir`")
	peerTLS := fs.Bool("peer-tls", false, "run the nodes with mutual TLS on their peer ports, as on a real network")
	tenants := fs.Int("tenants", 0, "before the run, create this many other tenants (the load stays in the default tenant)")
	perTenant := fs.Int("endpoints-per-tenant", 2, "endpoints of each other tenant, subscribed to the messages' type but never called")
	warmup := fs.Int("warmup", 0, "first send and deliver this many messages that count in no figure")
	batch := fs.Int("batch", 0, "send the messages in batches of this many (POST /v1/messages/batch, up to 1000), each client one batch at a time")
	backlog := fs.Int("backlog", 0, "before the run, enqueue this many messages for an endpoint that refuses them, and wait until its breaker opens: they stay pending while the run goes on")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench takes no arguments, got %q", fs.Arg(0))
	}
	binary, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the herald binary to run: %w", err)
	}
	scenarios := []string{*scenario}
	if *scenario == "all" {
		scenarios = bench.Scenarios
	}
	var results []*bench.Result
	for _, s := range scenarios {
		n := *nodes
		if s == "failover" && len(scenarios) > 1 {
			n = 0 // failover always runs three nodes
		}
		res, err := bench.Run(ctx, bench.Config{Scenario: s, Binary: binary, Nodes: n, Messages: *messages,
			Concurrency: *concurrency, Size: *size, Rate: *rate, Progress: stderr, ProfileDir: *profileDir, PeerTLS: *peerTLS,
			OtherTenants: *tenants, EndpointsPerTenant: *perTenant, Warmup: *warmup, Backlog: *backlog, Batch: *batch})
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if err := bench.WriteTable(stdout, results); err != nil {
		return err
	}
	for _, r := range results {
		if r.OtherTenants > 0 {
			fmt.Fprintf(stdout, "%s: %d other tenants with %d endpoints, created in %.1f s before the run\n",
				r.Scenario, r.OtherTenants, r.OtherEndpoints, r.SetupS)
		}
		if m := r.FillMemory; m != nil {
			fmt.Fprintf(stdout, "%s: a backlog of %d enqueued at %.0f/s in %.1f s, its breaker open %.1f s after the fill began; then rss %.0f MB, anon %.0f MB, leader heap %.0f MB\n",
				r.Scenario, r.Backlog, r.BacklogFillPerS, r.BacklogFillS, r.BreakerOpenS, m.RSSMB, m.AnonRSSMB, m.HeapMB)
		}
	}
	if *jsonPath == "" {
		return nil
	}
	var out any = results
	if len(results) == 1 {
		out = results[0]
	}
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*jsonPath, append(raw, '\n'), 0o644)
}
