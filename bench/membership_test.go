package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestJoinAndRemoveNode replaces a member of a running three-node cluster
// the way docs/operations.md says: remove one node, start a new one whose
// --peers do not list it, join it through another node, and check that it
// serves everything written before. It does so with plain TCP between the
// nodes and with mutual TLS, where the new node has a certificate of the
// cluster's CA.
func TestJoinAndRemoveNode(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testJoinAndRemoveNode(t, false) })
	t.Run("peer mTLS", func(t *testing.T) { testJoinAndRemoveNode(t, true) })
}

func testJoinAndRemoveNode(t *testing.T, peerTLS bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _, client := startTestClusterConfig(ctx, t, ClusterConfig{Nodes: 3, PeerTLS: peerTLS})
	var ids []string
	for i := range 20 {
		id, err := client.Send(ctx, i, fmt.Sprintf("before-%d", i), []byte(`{"type":"job.done","data":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	lead, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := (lead + 1) % 3
	if _, err := client.call(ctx, lead, http.MethodDelete, "/v1/cluster/nodes/"+c.Nodes[victim].ID, nil, nil, nil); err != nil {
		t.Fatalf("remove %s: %v", c.Nodes[victim].ID, err)
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}

	n4, err := c.StartExtra()
	if err != nil {
		t.Fatal(err)
	}
	follower := (lead + 2) % 3
	join := fmt.Appendf(nil, `{"id":%q,"raft_addr":%q}`, c.Nodes[n4].ID, c.Nodes[n4].RaftAddr)
	if _, err := client.call(ctx, follower, http.MethodPost, "/v1/cluster/nodes", nil, join, nil); err != nil {
		t.Fatalf("join through a follower: %v", err)
	}
	if err := c.WaitReady(ctx, n4); err != nil {
		t.Fatal(err)
	}
	fresh := &Client{URLs: []string{c.Nodes[n4].URL()}, HTTP: client.HTTP}
	for _, id := range ids {
		if _, err := fresh.MessageStatus(ctx, id); err != nil {
			t.Fatalf("the new node cannot read %s: %v", id, err)
		}
	}
	var st struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
	}
	if _, err := fresh.call(ctx, 0, http.MethodGet, "/v1/cluster", nil, nil, &st); err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, n := range st.Nodes {
		members = append(members, n.ID)
	}
	if len(members) != 3 || slices.Contains(members, c.Nodes[victim].ID) || !slices.Contains(members, c.Nodes[n4].ID) {
		t.Fatalf("members after the swap: %v", members)
	}
	// The new membership commits writes through the new node.
	if _, err := fresh.Send(ctx, 0, "after", []byte(`{"type":"job.done","data":{}}`)); err != nil {
		t.Fatal(err)
	}
}
