package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/heraldhq/herald/store"
	"go.etcd.io/bbolt"
)

// Errors returned by Node methods.
var (
	// ErrNotLeader means this node cannot commit writes now; nothing was
	// appended, so the caller may retry anywhere.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrUncertain means leadership was lost after the command was
	// appended: it may or may not commit. Retry with the same ids.
	ErrUncertain = errors.New("cluster: leadership lost; the write may or may not have committed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("cluster: closed")
)

// Peer is one initial voter.
type Peer struct {
	ID       string
	RaftAddr string
}

// ParsePeers parses "id=addr,id=addr".
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("cluster: peer %q is not id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("cluster: peer %q: %v", part, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("cluster: peer id %q listed twice", id)
		}
		seen[id] = true
		peers = append(peers, Peer{ID: id, RaftAddr: addr})
	}
	return peers, nil
}

// Config configures a Node.
type Config struct {
	// NodeID is this server's Raft ID. Required.
	NodeID string
	// RaftAddr is the transport's listen and advertise address. Required
	// unless Transport is set.
	RaftAddr string
	// Dir holds raft.db and snapshots/. Required.
	Dir string
	// Store is the state machine. Required; the caller closes it after
	// the node.
	Store *store.Store
	// Peers are the initial voters, used only to bootstrap a node that has
	// no Raft state yet. Defaults to this node alone. A node that is not
	// among its peers does not bootstrap: it waits to be added to the
	// running cluster (see AddVoter).
	Peers []Peer
	// HeartbeatTimeout and ElectionTimeout default to 300ms: a new leader
	// within about a second of the old one's death. LeaderLeaseTimeout
	// defaults to the heartbeat timeout; a leader that has not heard from a
	// quorum for that long steps down.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is how many new log entries trigger a snapshot.
	// Defaults to 8192; TrailingLogs (kept after a snapshot for slow
	// followers) defaults to 10240.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotInterval is how often the threshold is checked. Defaults to
	// 30s.
	SnapshotInterval time.Duration
	// MaxBatch is the most commands group-committed in one log entry, at
	// most store.MaxCommandsPerEntry. Defaults to 512.
	MaxBatch int
	// OutcomeLinger is how long an entry holding only attempt outcomes
	// (store.Outcome) waits for other commands to share it, on a quiet
	// node (under a few hundred proposals a second) with no entry awaiting
	// commit. A delivery's outcome is then usually committed with the next
	// message's enqueue: one Raft round, log write and store transaction
	// per message instead of two (measured at 50 messages/s on one node:
	// ~25 % less CPU per message, with 30ms). The outcome is
	// acknowledged, as ever, only once committed; until then a crash means
	// the attempt is made again. Zero, the default, disables it: whoever
	// turns it on must expect an outcome's commit to wait on a timer (a
	// test that waits with synctest.Wait for an outcome must then let
	// OutcomeLinger pass).
	OutcomeLinger time.Duration
	// Transport replaces the peer port (tests use raft's in-memory
	// transport): the node then listens nowhere. By default the node
	// listens on RaftAddr for Raft and PeerHandler on one port.
	Transport raft.Transport
	// TLS, when set, puts the peer port under mutual TLS: both ends of
	// every connection present a certificate signed by the CA, and a
	// dialled peer's must name the host it was dialled by. Nil means plain
	// TCP, for which anyone who reaches the port controls the cluster.
	// The files are re-read by ReloadTLS.
	TLS *TLSFiles
	// PeerHandler serves HTTP requests from other nodes on the peer port
	// (see PeerClient and PeerURL). Requests must be done within about 35s
	// (the server's write timeout). Defaults to 404 for everything.
	PeerHandler http.Handler
	// PeerDial, used only with Transport (which has no peer listener),
	// dials the peer HTTP API at a Raft address for PeerClient: tests serve
	// PeerHandler themselves and map addresses here. It gets the address
	// as net/http dials it: an address without a port, such as an
	// in-memory transport's "n1", arrives as "n1:80" (":443" with TLS).
	// PeerClient still adds TLS on top when TLS is set. Defaults to TCP.
	PeerDial func(ctx context.Context, addr string) (net.Conn, error)
	// Logger receives Raft's warnings and errors, and the peer port's
	// refused connections at debug level. Defaults to discarding.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 300 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 300 * time.Millisecond
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 512
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("cluster: NodeID is required")
	case c.RaftAddr == "" && c.Transport == nil:
		return errors.New("cluster: RaftAddr is required")
	case c.Dir == "":
		return errors.New("cluster: Dir is required")
	case c.Store == nil:
		return errors.New("cluster: Store is required")
	case c.MaxBatch < 0 || c.MaxBatch > store.MaxCommandsPerEntry:
		return fmt.Errorf("cluster: MaxBatch must be between 1 and %d (the store's limit per entry)", store.MaxCommandsPerEntry)
	}
	return nil
}

// bootstraps reports whether this node is among the initial voters.
func (c Config) bootstraps() bool {
	for _, p := range c.Peers {
		if p.ID == c.NodeID {
			return true
		}
	}
	return false
}

// Node is one member of a Herald cluster.
type Node struct {
	cfg       Config
	raft      *raft.Raft
	trans     raft.Transport
	peer      *peer // the peer port, PeerClient and TLS (peer.go)
	logs      *raftboltdb.BoltStore
	proposals chan proposal
	// inflight bounds the entries awaiting commit. Two keep Raft's disk
	// and the FSM busy at once; more only splits the queued commands into
	// smaller entries (measured: 2 gave ~30 % more messages/s than 32 on
	// one node; on three, 8 cost ~23 % more CPU per message than 2 and 4
	// ~14 % more, for no more messages/s: every entry is a log write on
	// each node and a store transaction on each).
	inflight  chan struct{}
	lingering atomic.Int32 // batches lingering for company (tests)
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	lag       lagTracker

	mu      sync.Mutex // guards leader, gen, changed
	leader  bool
	gen     uint64
	changed chan struct{}
}

// Open starts a node, bootstrapping the cluster from Peers if the directory
// holds no Raft state yet.
func Open(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	hlog := raftLogger(cfg.Logger)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.Logger = hlog
	notify := make(chan bool, 64)
	rc.NotifyCh = notify

	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"), BoltOptions: logBoltOptions()})
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft log: %w", err)
	}
	n := &Node{cfg: cfg, logs: logs, closed: make(chan struct{}), changed: make(chan struct{}),
		proposals: make(chan proposal, 4*cfg.MaxBatch), inflight: make(chan struct{}, 2)}
	fail := func(err error) (*Node, error) {
		n.closeTransport()
		logs.Close()
		return nil, err
	}
	cache, err := raft.NewLogCache(1024, logs)
	if err != nil {
		return fail(fmt.Errorf("cluster: %w", err))
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog)
	if err != nil {
		return fail(fmt.Errorf("cluster: open snapshots: %w", err))
	}
	snaps := privateSnapshots{SnapshotStore: fileSnaps, dir: filepath.Join(cfg.Dir, "snapshots")}
	// The data dir holds every secret: private, whoever made it, files
	// left by earlier versions with looser modes included.
	if err := makePrivate(cfg.Dir); err != nil {
		return fail(fmt.Errorf("cluster: %w", err))
	}
	// The peer port carries Raft and PeerHandler, under mutual TLS when
	// configured; port 0 picks a free port (tests), which is then
	// advertised. Bad TLS files fail here, naming the file.
	if n.peer, err = openPeer(cfg, hlog); err != nil {
		return fail(err)
	}
	n.trans = cfg.Transport
	if n.trans == nil {
		n.trans = n.peer.net.trans
	}
	cfg.RaftAddr = string(n.trans.LocalAddr())
	if len(cfg.Peers) == 0 {
		cfg.Peers = []Peer{{ID: cfg.NodeID, RaftAddr: cfg.RaftAddr}}
	}
	n.cfg = cfg
	existing, err := raft.HasExistingState(cache, logs, snaps)
	if err != nil {
		return fail(fmt.Errorf("cluster: %w", err))
	}
	if !existing && cfg.bootstraps() {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
		}
		if err := raft.BootstrapCluster(rc, cache, logs, snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
			return fail(fmt.Errorf("cluster: bootstrap: %w", err))
		}
	}
	// The bbolt state machine knows its applied index, so a restart
	// normally resumes from the file instead of reloading a snapshot. Not
	// when the file was rebuilt empty, or is older than the newest snapshot
	// (the log before that may be gone): then Raft restores the snapshot
	// and replays the log after it.
	if rc.NoSnapshotRestoreOnStart, err = resumable(cfg.Store, snaps); err != nil {
		return fail(err)
	}
	// Raft gets the transport through a relay that reads how far the
	// leader's log has gone (CatchingUp); a transport without pre-vote or
	// close (a test's wrapper) is given as it is.
	raftTrans := n.trans
	watched, ok := n.trans.(fullTransport)
	var relay *watchedTransport
	if ok {
		n.lag.watched = true
		relay = &watchedTransport{fullTransport: watched, lag: &n.lag, rpcs: make(chan raft.RPC), closed: n.closed, wg: &n.wg}
		raftTrans = relay
	}
	n.raft, err = raft.NewRaft(rc, &fsm{st: cfg.Store}, cache, logs, snaps, raftTrans)
	if err != nil {
		return fail(fmt.Errorf("cluster: start raft: %w", err))
	}
	n.wg.Add(2)
	go n.relayLeadership(notify)
	go n.commitLoop()
	if relay != nil {
		n.wg.Add(1)
		go relay.relay()
	}
	return n, nil
}

// logBoltOptions are the bbolt options of the Raft log (raft.db). Every
// commit is still fsynced (data pages, then the meta page): the log is the
// durable copy of every acknowledged write. What they drop is writing the
// free-page list with every commit: once snapshots have compacted the log,
// tens of thousands of pages are free, and the array freelist rewrote all
// of them (and scanned them to allocate) on every append, which made an
// append of one 14 KB entry cost 1.3-2.3 ms of CPU instead of 0.4-0.55 ms
// (BenchmarkLogStore). The list is rebuilt by scanning the file at open;
// files written either way open either way.
func logBoltOptions() *bbolt.Options {
	return &bbolt.Options{
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	}
}

// resumable reports whether the store's own state can be resumed, rather
// than restored from the newest snapshot.
func resumable(st *store.Store, snaps raft.SnapshotStore) (bool, error) {
	if st.Rebuilt() {
		return false, nil
	}
	list, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("cluster: list snapshots: %w", err)
	}
	applied, err := st.AppliedIndex()
	if err != nil {
		return false, err
	}
	return len(list) == 0 || applied >= list[0].Index, nil
}

// relayLeadership drains NotifyCh promptly, so Raft never blocks on it, and
// bumps the generation on every transition so none is lost to a reader.
func (n *Node) relayLeadership(notify <-chan bool) {
	defer n.wg.Done()
	for {
		select {
		case isLeader := <-notify:
			n.mu.Lock()
			n.leader = isLeader
			n.gen++
			close(n.changed)
			n.changed = make(chan struct{})
			n.mu.Unlock()
		case <-n.closed:
			return
		}
	}
}

// Leadership reports whether this node leads, a generation that changes on
// every leadership transition, and a channel closed at the next transition.
func (n *Node) Leadership() (leader bool, gen uint64, changed <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader, n.gen, n.changed
}

// Barrier waits until every entry committed before it is applied to the
// store. A new leader calls it before reading the store to schedule work;
// committing it also proves, with a quorum, that this node still leads.
func (n *Node) Barrier(ctx context.Context) error {
	return n.wait(ctx, n.raft.Barrier(timeoutOf(ctx)))
}

// wait waits for a Raft future with the caller's deadline: futures can stay
// unresolved after Shutdown.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return mapErr(err)
	case <-ctx.Done():
		return ctx.Err()
	case <-n.closed:
		return ErrClosed
	}
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 0
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrUncertain
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return fmt.Errorf("cluster: %w", err)
}

// Leader returns the current leader's id and Raft address, empty if none is
// known.
func (n *Node) Leader() (id, raftAddr string) {
	addr, sid := n.raft.LeaderWithID()
	return string(sid), string(addr)
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr returns the address this node's transport advertises.
func (n *Node) RaftAddr() string { return n.cfg.RaftAddr }

// Server is a member of the Raft configuration.
type Server struct {
	ID       string
	RaftAddr string
	Voter    bool
}

// Status is a point-in-time view of this node's Raft state.
type Status struct {
	State        string // Leader, Follower, Candidate, Shutdown
	LeaderID     string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastContact  time.Duration // since the leader was last heard (followers)
	Servers      []Server
}

// Status returns this node's view of the cluster.
func (n *Node) Status() Status {
	stats := n.raft.Stats()
	st := Status{
		State:        n.raft.State().String(),
		Term:         statNum(stats, "term"),
		CommitIndex:  statNum(stats, "commit_index"),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	st.LeaderID, _ = n.Leader()
	if lc := n.raft.LastContact(); !lc.IsZero() {
		st.LastContact = time.Since(lc)
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Servers = append(st.Servers, Server{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter})
		}
	}
	return st
}

// Ready reports whether a leader is known, this node is not catching up
// (see CatchingUp) and it has applied everything it knows to be committed.
func (n *Node) Ready() bool {
	if id, _ := n.Leader(); id == "" {
		return false
	}
	if _, far := n.CatchingUp(); far {
		return false
	}
	return n.raft.AppliedIndex() >= statNum(n.raft.Stats(), "commit_index")
}

// CatchingUp reports whether this node is too far behind the leader to
// answer requests: it is installing a snapshot from the leader, or its
// store trails the leader's commit index, as this node last heard it, by
// more than MaxLag entries, or trails it at all while the leader sends it
// no entries (as for seconds after it rejoins). behind is by how many
// entries it trails. A leader is never behind.
func (n *Node) CatchingUp() (behind uint64, far bool) {
	if n.raft.State() == raft.Leader {
		return 0, false
	}
	id, _ := n.Leader()
	return lagView{
		leaderIndex: n.lag.leaderIndex.Load(),
		applied:     n.raft.AppliedIndex(),
		installing:  n.lag.installing.Load(),
		unfed:       n.lag.unfed(id != "", time.Now()),
	}.farBehind()
}

// NoteLeaderIndex records an index the leader has committed, learned
// other than from Raft (the leader's answer to a forwarded request): a
// node the leader has not sent entries to yet since it rejoined learns
// that way how far behind it is.
func (n *Node) NoteLeaderIndex(index uint64) { n.lag.note(index) }

// statNum reads a number from raft.Stats.
func statNum(stats map[string]string, key string) uint64 {
	v, _ := strconv.ParseUint(stats[key], 10, 64)
	return v
}

// AddVoter adds a server to the cluster as a voter, or updates its
// address. Only the leader can; others return ErrNotLeader.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	return n.wait(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx)))
}

// RemoveServer removes a server from the cluster. Only the leader can;
// others return ErrNotLeader.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	return n.wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)))
}

// Stop hands leadership to another voter if this node leads (so deliveries
// resume without waiting for an election), then closes the node.
func (n *Node) Stop(ctx context.Context) error {
	if n.raft.State() == raft.Leader && len(n.Status().Servers) > 1 {
		if err := n.wait(ctx, n.raft.LeadershipTransfer()); err != nil {
			n.cfg.Logger.Warn("leadership transfer failed", "error", err)
		}
	}
	return n.Close()
}

// Close shuts Raft down and releases its files. It is idempotent.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.closed)
		f := n.raft.Shutdown()
		done := make(chan error, 1)
		go func() { done <- f.Error() }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			err = errors.New("cluster: raft shutdown timed out")
		}
		n.closeTransport()
		n.wg.Wait()
		if cerr := n.logs.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// closeTransport closes the peer port (listener, HTTP server, Raft
// transport and their connections), or the Transport given in Config.
func (n *Node) closeTransport() {
	if n.peer != nil {
		n.peer.close()
	}
	if n.peer == nil || n.peer.net == nil {
		if c, ok := n.trans.(interface{ Close() error }); ok {
			c.Close()
		}
	}
}
