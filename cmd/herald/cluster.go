package main

import (
	"context"
	"io"
	"net/http"
)

func init() {
	commands["cluster"] = command{summary: "show the cluster's leader and members", run: runCluster}
}

var clusterCommands = map[string]subcommand{
	"status": {summary: "print GET /v1/cluster: leader, nodes, term and indexes", run: runClusterStatus},
}

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "cluster", clusterCommands, []string{"status"}, args, stdout, stderr)
}

func runClusterStatus(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "", stderr)
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
	return callAndPrint(ctx, c, http.MethodGet, "/v1/cluster", nil, stdout)
}
