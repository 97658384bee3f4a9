package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/store"
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

// AddNode adds a voter to the cluster: a node started with peers that do
// not include itself, which waits to be added. Any node may be asked.
// Adding a member again at the same address changes nothing; an id that is
// a member at another address, or an address another member has, is a
// *ConflictError (remove the old member first).
func (e *Engine) AddNode(ctx context.Context, id, raftAddr string) error {
	_, err := e.prop.propose(ctx, &request{AddNode: &nodeReq{ID: id, RaftAddr: raftAddr}})
	return err
}

func (w *writer) addNode(ctx context.Context, id, raftAddr string) (reply, error) {
	if id == "" {
		return reply{}, invalid("id", "is required")
	}
	if err := store.CheckNodeID(id); err != nil {
		return reply{}, invalid("id", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if err := checkRaftAddr(raftAddr); err != nil {
		return reply{}, err
	}
	// Raft would take an id it has at another address as a move, and an
	// address it has under another id as a second server that can never
	// answer: both are an operator's mistake, refused before proposing.
	for _, s := range w.node.Status().Servers {
		switch {
		case s.ID == id && s.RaftAddr == raftAddr && s.Voter:
			return reply{}, nil // already a voter there
		case s.ID == id && s.RaftAddr != raftAddr:
			return reply{}, conflict("node %s is already a member at %s: to move it to %s, remove it first (herald cluster remove %s)",
				id, s.RaftAddr, raftAddr, id)
		case s.ID != id && s.RaftAddr == raftAddr:
			return reply{}, conflict("raft address %s is already node %s's: give %s its own address, or remove %s first",
				raftAddr, s.ID, id, s.ID)
		}
	}
	return reply{}, fromCluster(w.node.AddVoter(ctx, id, raftAddr))
}

// checkRaftAddr checks a node's Raft address: host:port with a host and a
// port number.
func checkRaftAddr(addr string) error {
	const want = "must be host:port, such as 10.0.0.2:8090"
	if addr == "" {
		return invalid("raft_addr", "is required (host:port, such as 10.0.0.2:8090)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || strings.ContainsAny(host, " \t\r\n/@?#") {
		return invalid("raft_addr", "%q %s", addr, want)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return invalid("raft_addr", "%q %s (a port from 1 to 65535)", addr, want)
	}
	return nil
}

// RemoveNode removes a node from the cluster, for replacing a dead
// machine. Any node may be asked. A node that is not a member is
// ErrNotFound; the only voter is a *ConflictError.
func (e *Engine) RemoveNode(ctx context.Context, id string) error {
	_, err := e.prop.propose(ctx, &request{RemoveNode: &idReq{ID: id}})
	return err
}

func (w *writer) removeNode(ctx context.Context, id string) (reply, error) {
	if id == "" {
		return reply{}, invalid("id", "is required")
	}
	servers := w.node.Status().Servers
	var member *cluster.Server
	voters := 0
	for i, s := range servers {
		if s.ID == id {
			member = &servers[i]
		}
		if s.Voter {
			voters++
		}
	}
	switch {
	case member == nil:
		return reply{}, ErrNotFound
	case member.Voter && voters == 1:
		return reply{}, conflict("%s is the only voter: removing it would leave no cluster", id)
	}
	return reply{}, fromCluster(w.node.RemoveServer(ctx, id))
}

// Stats are a node's counters for monitoring.
type Stats struct {
	// Scheduled is the pending deliveries of every tenant: the backlog not
	// yet delivered. Every node counts it from its store.
	Scheduled int
	// InFlight is the attempts in flight on this node (zero on followers).
	InFlight int
	// AppliedIndex is the last Raft index applied to this node's store.
	AppliedIndex uint64
	// StoreBytes is the size of the state file.
	StoreBytes int64
}

// Stats returns the node's current counters.
func (e *Engine) Stats() Stats {
	applied := e.applied.get()
	pending, err := e.store.Pending()
	if err != nil {
		e.log.Warn("count pending deliveries", "error", err)
	}
	return Stats{
		Scheduled:    pending,
		InFlight:     e.deliver.Stats().InFlight,
		AppliedIndex: applied,
		StoreBytes:   e.store.Stats().FileBytes,
	}
}

// Backup is a consistent snapshot of the whole state, being read: a bbolt
// file that RestoreDataDir turns into a new cluster's data dir. Close it
// promptly: while it is open the store cannot reuse freed pages.
type Backup struct {
	sn *store.Snapshot
}

// Backup takes a snapshot holding every write acknowledged before the call.
// Any node can take it; a follower first catches up with the leader, as
// for any read.
func (e *Engine) Backup(ctx context.Context) (*Backup, error) {
	if err := e.reads.sync(ctx); err != nil {
		return nil, err
	}
	sn, err := e.store.Snapshot()
	if err != nil {
		return nil, fromCluster(err)
	}
	return &Backup{sn: sn}, nil
}

// Size is how many bytes WriteTo writes.
func (b *Backup) Size() int64 { return b.sn.Size() }

// WriteTo writes the snapshot to w.
func (b *Backup) WriteTo(w io.Writer) (int64, error) { return b.sn.WriteTo(w) }

// Close releases the snapshot.
func (b *Backup) Close() error {
	b.sn.Release()
	return nil
}

// RestoreDataDir makes dataDir, which must be empty or absent, the data dir
// of a new single-node cluster holding a backup's state: endpoints and
// their secrets (sealed ones need the same seal key), signing keys,
// messages with their pending deliveries and due times, idempotency keys.
// Open it with Config.DataDir = dataDir (and no Peers, or this node alone);
// it bootstraps a one-voter cluster that AddNode grows.
func RestoreDataDir(dataDir string, backup io.Reader) error {
	entries, err := os.ReadDir(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("engine: restore: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("engine: restore: %s is not empty; restore makes a fresh data dir", dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("engine: restore: %w", err)
	}
	return store.RestoreFile(Config{DataDir: dataDir}.statePath(), backup)
}
