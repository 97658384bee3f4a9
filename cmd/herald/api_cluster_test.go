package main

import (
	"strings"
	"testing"
)

// TestAPIClusterMembership checks the membership routes' answers on a
// single node: 400 for a malformed id or address, 404 naming a node that
// is not a member, 409 with the reason for removing the only voter and for
// an id or address already taken, and nothing changed by any of them.
// Adding and removing real voters is tested on an in-process cluster in
// package engine.
func TestAPIClusterMembership(t *testing.T) {
	s := startAPI(t, apiOptions{})
	self := expect(t, s.call(t, "GET", "/v1/cluster", ""), 200).json(t)["nodes"].([]any)[0].(map[string]any)
	id, addr := self["id"].(string), self["raft_addr"].(string)

	for _, c := range []struct{ body, mention string }{
		{`{"id":"n2"}`, "raft_addr"},
		{`{"id":"n2","raft_addr":"nohostport"}`, "raft_addr"},
		{`{"id":"n2","raft_addr":":9000"}`, "raft_addr"},
		{`{"id":"n2","raft_addr":"10.0.0.2:port"}`, "raft_addr"},
		{`{"id":"n2","raft_addr":"10.0.0.2:0"}`, "raft_addr"},
		{`{"raft_addr":"127.0.0.1:9"}`, "id"},
		{`{"id":"no spaces","raft_addr":"127.0.0.1:9"}`, "id"},
		{`{"id":"n2","raft_addr":"127.0.0.1:9","x":1}`, "x"},
	} {
		r := expect(t, s.call(t, "POST", "/v1/cluster/nodes", c.body), 400)
		if code, msg := r.errCode(t), r.errMessage(t); code != "invalid_argument" || !strings.Contains(msg, c.mention) {
			t.Errorf("POST /v1/cluster/nodes %s: %s %q, want invalid_argument mentioning %s", c.body, code, msg, c.mention)
		}
	}

	r := expect(t, s.call(t, "DELETE", "/v1/cluster/nodes/nobody", ""), 404)
	if code, msg := r.errCode(t), r.errMessage(t); code != "not_found" || !strings.Contains(msg, `"nobody"`) {
		t.Errorf("DELETE an unknown node: %s %q", code, msg)
	}
	r = expect(t, s.call(t, "DELETE", "/v1/cluster/nodes/"+id, ""), 409)
	if code, msg := r.errCode(t), r.errMessage(t); code != "conflict" || msg != id+" is the only voter: removing it would leave no cluster" {
		t.Errorf("DELETE the only voter: %s %q", code, msg)
	}
	r = expect(t, s.call(t, "POST", "/v1/cluster/nodes", `{"id":"`+id+`","raft_addr":"127.0.0.1:9"}`), 409)
	if code, msg := r.errCode(t), r.errMessage(t); code != "conflict" || !strings.Contains(msg, id+" is already a member at "+addr) {
		t.Errorf("POST a member at another address: %s %q", code, msg)
	}
	r = expect(t, s.call(t, "POST", "/v1/cluster/nodes", `{"id":"n2","raft_addr":"`+addr+`"}`), 409)
	if code, msg := r.errCode(t), r.errMessage(t); code != "conflict" || !strings.Contains(msg, "raft address "+addr+" is already node "+id+"'s") {
		t.Errorf("POST another id at a member's address: %s %q", code, msg)
	}
	// The member again, at its address: nothing to change.
	expect(t, s.call(t, "POST", "/v1/cluster/nodes", `{"id":"`+id+`","raft_addr":"`+addr+`"}`), 200)

	nodes, _ := expect(t, s.call(t, "GET", "/v1/cluster", ""), 200).json(t)["nodes"].([]any)
	if len(nodes) != 1 || !s.e.IsLeader() {
		t.Fatalf("nodes = %v, want only this node, still leading", nodes)
	}
}
