package engine

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"
)

// ClusterStatus is this node's view of the cluster.
type ClusterStatus struct {
	Leader       string       `json:"leader"`
	Nodes        []NodeStatus `json:"nodes"`
	Term         uint64       `json:"term"`
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
}

// NodeStatus is one member of the Raft configuration.
type NodeStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr,omitempty"`
	// State is "leader", "follower", "candidate" (this node only) or
	// "nonvoter".
	State string `json:"state"`
	// Reachable reports whether the node's Raft port accepted a
	// connection just now (always true for this node).
	Reachable bool `json:"reachable"`
}

// ClusterStatus reports the leader, the members and Raft's indexes.
func (e *Engine) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	st := e.node.Status()
	apiAddrs := map[string]string{}
	if nodes, err := e.store.Nodes(); err == nil {
		for _, n := range nodes {
			apiAddrs[n.ID] = n.APIAddr
		}
	}
	out := &ClusterStatus{Leader: st.LeaderID, Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		Nodes: make([]NodeStatus, len(st.Servers))}
	var wg sync.WaitGroup
	for i, s := range st.Servers {
		n := &out.Nodes[i]
		*n = NodeStatus{ID: s.ID, RaftAddr: s.RaftAddr, APIAddr: apiAddrs[s.ID], State: "follower"}
		switch {
		case s.ID == e.cfg.NodeID:
			n.State, n.Reachable = strings.ToLower(st.State), true
			if n.APIAddr == "" {
				n.APIAddr = e.cfg.APIAddr
			}
			continue
		case s.ID == st.LeaderID:
			n.State = "leader"
		case !s.Voter:
			n.State = "nonvoter"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Reachable = dialable(ctx, s.RaftAddr)
		}()
	}
	wg.Wait()
	return out, nil
}

func dialable(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
