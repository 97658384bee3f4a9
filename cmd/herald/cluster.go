package main

import (
	"context"
	"io"
	"net/http"
)

func init() {
	commands["cluster"] = command{summary: "show the cluster's members; add or remove nodes", run: runCluster,
		subs: clusterCommands, order: clusterOrder}
}

var clusterCommands = map[string]subcommand{
	"status": {summary: "print GET /v1/cluster: leader, nodes, term and indexes", run: runClusterStatus},
	"join":   {summary: "add a node (started with --peers that do not list it) as a voter", run: runClusterJoin},
	"remove": {summary: "remove a node from the cluster, e.g. a dead machine", run: runClusterRemove},
}

var clusterOrder = []string{"status", "join", "remove"}

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "cluster", clusterCommands, clusterOrder, args, stdout, stderr)
}

func runClusterStatus(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "[--output json|table]\n\n"+
		"Shows the node's view of the cluster: the leader, the term, Raft's commit and\n"+
		"applied indexes, and each member's state and whether its peer port answers.", stderr)
	cf := addClientFlags(fs)
	out := addOutputFlag(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndShow(ctx, c, http.MethodGet, "/v1/cluster", nil, stdout, out, clusterTable)
}

func runClusterJoin(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "--id ID --raft-addr HOST:PORT\n\n"+
		"Adds a running node, started with --peers that do not list it, as a voter; prints\n"+
		"the cluster's status. Run it against any member of the cluster.", stderr)
	cf := addClientFlags(fs)
	id := fs.String("id", "", "the new node's --node-id `ID` (required)")
	raftAddr := fs.String("raft-addr", "", "the new node's --raft-addr `HOST:PORT` (required)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	if *id == "" || *raftAddr == "" {
		return usagef("%s: --id and --raft-addr are required", name)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return callAndPrint(ctx, c, http.MethodPost, "/v1/cluster/nodes", addNodeRequest{ID: *id, RaftAddr: *raftAddr}, stdout)
}

func runClusterRemove(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	return plainCall(ctx, name, args, stdout, stderr, http.MethodDelete, false,
		func(pos []string) string { return "/v1/cluster/nodes/" + pathEscape(pos[0]) }, "ID")
}
