package main

import (
	"testing"
)

// TestAPIClusterMembership checks the membership routes' validation and
// that removing an unknown node is harmless. Adding and removing real
// voters is tested on an in-process cluster in package engine.
func TestAPIClusterMembership(t *testing.T) {
	s := startAPI(t, apiOptions{})
	for _, body := range []string{`{"id":"n2"}`, `{"id":"n2","raft_addr":"nohostport"}`, `{"raft_addr":"127.0.0.1:9"}`, `{"id":"n2","raft_addr":"127.0.0.1:9","x":1}`} {
		if code := expect(t, s.call(t, "POST", "/v1/cluster/nodes", body), 400).errCode(t); code != "invalid_argument" {
			t.Errorf("POST /v1/cluster/nodes %s: code %q", body, code)
		}
	}
	expect(t, s.call(t, "DELETE", "/v1/cluster/nodes/nobody", ""), 204)
	nodes, _ := expect(t, s.call(t, "GET", "/v1/cluster", ""), 200).json(t)["nodes"].([]any)
	if len(nodes) != 1 {
		t.Fatalf("nodes = %v, want only this node", nodes)
	}
}
