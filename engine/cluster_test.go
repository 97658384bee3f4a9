package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/store"
)

// testCluster is an in-process Herald cluster: real engines and Raft over
// raft's in-memory transport (which can partition), each node serving its
// internal API on loopback for forwarding.
type testCluster struct {
	t       *testing.T
	cfgs    []Config
	engines []*Engine
	trans   []*raft.InmemTransport
	sent    []*atomic.Int64 // attempts each node has sent
	mu      sync.Mutex      // guards engines, for the HTTP handlers
	// wrap, if set, wraps each node's transport, to tamper with its RPCs.
	wrap func(raft.Transport) raft.Transport
	apis map[string]string // Raft address → loopback address of the node's internal API
	// tamper, if set, wraps every connection to a node's internal API.
	tamper func(net.Conn) net.Conn
}

// dialPeer connects to the internal API of the node at a Raft address: the
// in-memory transport has no peer port, so each node's internal API is
// served on a loopback listener of its own.
func (c *testCluster) dialPeer(ctx context.Context, addr string) (net.Conn, error) {
	c.mu.Lock()
	api, ok := c.apis[addr]
	tamper := c.tamper
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no node at %s", addr)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", api)
	if err == nil && tamper != nil {
		conn = tamper(conn)
	}
	return conn, err
}

func newTestCluster(t *testing.T, n int, modify func(*Config)) *testCluster {
	return newWrappedTestCluster(t, n, modify, nil)
}

// newWrappedTestCluster is newTestCluster with each node's transport
// wrapped by wrap.
func newWrappedTestCluster(t *testing.T, n int, modify func(*Config), wrap func(raft.Transport) raft.Transport) *testCluster {
	t.Helper()
	c := &testCluster{t: t, wrap: wrap}
	var peers []Peer
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		peers = append(peers, Peer{ID: id, RaftAddr: inmemAddr(id)})
	}
	for i := range n {
		c.addConfig(peers[i].ID, peers, modify)
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.engines {
			c.stop(i)
		}
	})
	return c
}

// inmemAddr is node id's address on raft's in-memory transport, in the
// host:port form that real addresses have.
func inmemAddr(id string) string { return id + ":1" }

// addConfig prepares a node with the given initial peers (a node not among
// them waits to be added) and returns its index; start runs it.
func (c *testCluster) addConfig(id string, peers []Peer, modify func(*Config)) int {
	i := len(c.cfgs)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		e := c.engines[i]
		c.mu.Unlock()
		if e == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		e.internal.ServeHTTP(w, r)
	}))
	c.t.Cleanup(srv.Close)
	c.mu.Lock()
	if c.apis == nil {
		c.apis = map[string]string{}
	}
	c.apis[inmemAddr(id)] = srv.Listener.Addr().String()
	c.mu.Unlock()
	sent := new(atomic.Int64)
	cfg := Config{
		DataDir:              c.t.TempDir(),
		NodeID:               id,
		Peers:                peers,
		APIAddr:              srv.Listener.Addr().String(),
		AllowPrivateNetworks: true,
		Logger:               testLogger(c.t).With("node", id),
		AttemptTimeout:       2 * time.Second,
		Transport:            countingTransport{http.DefaultTransport, sent},
	}
	if modify != nil {
		modify(&cfg)
	}
	c.mu.Lock()
	c.cfgs = append(c.cfgs, cfg)
	c.sent = append(c.sent, sent)
	c.engines = append(c.engines, nil)
	c.trans = append(c.trans, nil)
	c.mu.Unlock()
	return i
}

// countingTransport counts the attempts a node sends.
type countingTransport struct {
	http.RoundTripper
	n *atomic.Int64
}

func (ct countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.n.Add(1)
	return ct.RoundTripper.RoundTrip(r)
}

// start opens node i on its data dir with a fresh in-memory transport
// connected to every other live node.
func (c *testCluster) start(i int) {
	c.t.Helper()
	_, tr := raft.NewInmemTransport(raft.ServerAddress(inmemAddr(c.cfgs[i].NodeID)))
	c.trans[i] = tr
	for j, other := range c.trans {
		if j != i && other != nil {
			tr.Connect(other.LocalAddr(), other)
			other.Connect(tr.LocalAddr(), tr)
		}
	}
	cfg := c.cfgs[i]
	cfg.inmem = &inmemNet{transport: tr, dial: c.dialPeer}
	if c.wrap != nil {
		cfg.inmem.transport = c.wrap(tr)
	}
	e, err := Open(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", cfg.NodeID, err)
	}
	c.mu.Lock()
	c.engines[i] = e
	c.mu.Unlock()
}

// stop closes node i, as a crash would stop it from answering.
func (c *testCluster) stop(i int) {
	c.mu.Lock()
	e := c.engines[i]
	c.engines[i] = nil
	c.mu.Unlock()
	if e != nil {
		if err := e.Close(); err != nil {
			c.t.Errorf("close n%d: %v", i+1, err)
		}
	}
	c.partition(i)
	c.trans[i] = nil
}

// partition cuts node i's Raft traffic in both directions.
func (c *testCluster) partition(i int) {
	if c.trans[i] == nil {
		return
	}
	c.trans[i].DisconnectAll()
	for j, other := range c.trans {
		if j != i && other != nil {
			other.Disconnect(c.trans[i].LocalAddr())
		}
	}
}

// heal reconnects every live node to every other.
func (c *testCluster) heal() {
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j && a != nil && b != nil {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
}

// leader waits until exactly one of the given nodes leads and delivers.
func (c *testCluster) leader(among ...int) int {
	c.t.Helper()
	if len(among) == 0 {
		for i := range c.engines {
			among = append(among, i)
		}
	}
	lead := -1
	waitFor(c.t, 15*time.Second, "a leader", func() bool {
		lead = -1
		for _, i := range among {
			if e := c.engines[i]; e != nil && e.IsLeader() && e.delivering.Load() {
				if lead >= 0 {
					return false
				}
				lead = i
			}
		}
		return lead >= 0
	})
	return lead
}

// converge waits until every live node has applied the same index, then
// checks that their stores hold identical contents.
func (c *testCluster) converge() {
	c.t.Helper()
	var dumps []map[string]map[string]string
	waitFor(c.t, 15*time.Second, "stores to converge", func() bool {
		dumps = dumps[:0]
		for _, e := range c.engines {
			if e == nil {
				continue
			}
			d, err := e.store.Dump()
			if err != nil {
				c.t.Fatal(err)
			}
			dumps = append(dumps, d)
		}
		for _, d := range dumps[1:] {
			if !reflect.DeepEqual(d, dumps[0]) {
				return false
			}
		}
		return true
	})
	for _, e := range c.engines {
		if e != nil {
			if err := e.store.Check(); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

func enqueueN(t *testing.T, e *Engine, n int, prefix string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		m, _, err := e.Enqueue(context.Background(), MessageInput{Type: "job.done",
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), IdempotencyKey: fmt.Sprintf("%s-%d", prefix, i)})
		if err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
		ids = append(ids, m.ID)
	}
	return ids
}

// TestClusterFollowersForwardWrites checks that every node accepts writes
// and serves reads that include them.
func TestClusterFollowersForwardWrites(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	rc := newReceiver(t, nil)
	ctx := context.Background()
	follower := (lead + 1) % 3
	ep, err := c.engines[follower].CreateEndpoint(ctx, EndpointInput{URL: rc.URL})
	if err != nil {
		t.Fatalf("create endpoint on follower: %v", err)
	}
	for i := range c.engines {
		ids := enqueueN(t, c.engines[i], 5, fmt.Sprintf("n%d", i))
		for _, id := range ids {
			m, err := c.engines[i].Message(ctx, "", id) // read-your-writes on the same node
			if err != nil {
				t.Fatalf("read back %s on n%d: %v", id, i+1, err)
			}
			if len(m.Deliveries) != 1 || m.Deliveries[0].EndpointID != ep.ID {
				t.Fatalf("deliveries = %+v", m.Deliveries)
			}
		}
	}
	waitFor(t, 10*time.Second, "15 deliveries", func() bool { return rc.count() >= 15 })
	// Every node, followers that never led included, publishes its API
	// address, so cluster status can show it and followers can forward.
	waitFor(t, 10*time.Second, "every node's API address", func() bool {
		st, err := c.engines[follower].ClusterStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			if n.APIAddr == "" {
				return false
			}
		}
		return len(st.Nodes) == 3
	})
	for i := range c.engines {
		if i != lead && c.sent[i].Load() != 0 {
			t.Errorf("follower n%d sent %d attempts; only the leader delivers", i+1, c.sent[i].Load())
		}
	}
	c.converge()
}

// TestClusterPartitionedLeaderStopsDelivering cuts the leader off from the
// majority: it must stop sending once it steps down, a new leader must take
// over the pending deliveries, the minority must accept no writes, and
// after healing all stores must converge.
func TestClusterPartitionedLeaderStopsDelivering(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.RetrySchedule = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond,
			20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond,
			20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, time.Hour}
	})
	ctx := context.Background()
	old := c.leader()
	failing := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	if _, err := c.engines[old].CreateEndpoint(ctx, EndpointInput{URL: failing.URL}); err != nil {
		t.Fatal(err)
	}
	ids := enqueueN(t, c.engines[old], 3, "before")
	waitFor(t, 5*time.Second, "retries on the old leader", func() bool { return c.sent[old].Load() >= 6 })

	c.partition(old)
	// Raft steps down first, then the engine ends the term: attempts that
	// started in between finish (or are cancelled) with it.
	waitFor(t, 10*time.Second, "the old leader to step down and end its term", func() bool {
		e := c.engines[old]
		return !e.IsLeader() && !e.deliver.Scheduling() && e.deliver.Stats().InFlight == 0
	})
	frozen := c.sent[old].Load()
	var majority []int
	for i := range c.engines {
		if i != old {
			majority = append(majority, i)
		}
	}
	lead := c.leader(majority...)
	waitFor(t, 10*time.Second, "the new leader to retry", func() bool { return c.sent[lead].Load() >= 3 })
	if got := c.sent[old].Load(); got != frozen {
		t.Fatalf("deposed leader sent %d more attempts after stepping down", got-frozen)
	}

	// The minority side accepts no writes, and says so (a 503 in the API)
	// once it has known no leader for a while, not at the forward timeout.
	start := time.Now()
	_, _, err := c.engines[old].Enqueue(ctx, MessageInput{Type: "job.done", Data: json.RawMessage(`{}`), IdempotencyKey: "minority"})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write on the partitioned node: %v, want ErrNotLeader", err)
	}
	if waited := time.Since(start); waited >= forwardTimeout {
		t.Fatalf("the partitioned node took %v to refuse the write", waited)
	}
	// The majority does.
	after := enqueueN(t, c.engines[majority[1]], 3, "after")

	c.heal()
	c.converge()
	for _, id := range append(ids, after...) {
		if _, err := c.engines[old].Message(ctx, "", id); err != nil {
			t.Fatalf("healed node lacks %s: %v", id, err)
		}
	}
	if _, _, ok, _ := c.engines[lead].store.IdempotentMessage(store.DefaultTenant, "minority", time.Now().UnixNano()); ok {
		t.Fatal("the write refused by the minority was committed")
	}
}

// TestClusterIdempotencyAcrossFailover retries a write whose answer was
// lost, with the same key, on another node after the leader died.
func TestClusterIdempotencyAcrossFailover(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	ctx := context.Background()
	lead := c.leader()
	first, created, err := c.engines[lead].Enqueue(ctx, MessageInput{Type: "job.done", Data: json.RawMessage(`{}`), IdempotencyKey: "k1"})
	if err != nil || !created {
		t.Fatalf("first enqueue: %v %v", created, err)
	}
	c.stop(lead)
	other := (lead + 1) % 3
	c.leader((lead+1)%3, (lead+2)%3)
	again, created, err := c.engines[other].Enqueue(ctx, MessageInput{Type: "job.done", Data: json.RawMessage(`{}`), IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if created || again.ID != first.ID {
		t.Fatalf("retry after failover: created=%v id=%s, want the first id %s", created, again.ID, first.ID)
	}
	// The dead node comes back and catches up.
	c.start(lead)
	c.converge()
}

// TestClusterLaggingFollowerCatchesUpFromSnapshot stops a follower while
// the leader writes enough to snapshot and truncate its log, then restarts
// it: it can only catch up by installing the snapshot, which replaces its
// bbolt file.
func TestClusterLaggingFollowerCatchesUpFromSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.Raft.SnapshotThreshold = 16
		cfg.Raft.TrailingLogs = 4
		cfg.Raft.SnapshotInterval = 50 * time.Millisecond
	})
	lead := c.leader()
	lag := (lead + 1) % 3
	c.stop(lag)
	ids := enqueueN(t, c.engines[lead], 60, "lag")
	snapDir := filepath.Join(c.cfgs[lead].DataDir, "snapshots")
	waitFor(t, 10*time.Second, "the leader to snapshot", func() bool {
		entries, _ := os.ReadDir(snapDir)
		return len(entries) > 0
	})
	enqueueN(t, c.engines[lead], 20, "lag-more") // entries past the snapshot too
	statePath := c.cfgs[lag].statePath()
	before, err := os.Stat(statePath)
	if err != nil {
		t.Fatal(err)
	}
	c.start(lag)
	c.converge()
	after, err := os.Stat(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Fatal("the follower caught up without installing a snapshot (its state file was not replaced)")
	}
	for _, id := range ids {
		if _, _, err := c.engines[lag].store.Message(store.DefaultTenant, id); err != nil {
			t.Fatalf("follower lacks %s after catching up: %v", id, err)
		}
	}
}

// TestClusterAddAndRemoveNode replaces a member the way an operator would:
// a fourth node started with the original peers (so it does not bootstrap)
// is added through a follower, catches up, and another node is removed.
func TestClusterAddAndRemoveNode(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	ctx := context.Background()
	lead := c.leader()
	ids := enqueueN(t, c.engines[lead], 10, "before-join")
	peers := c.cfgs[0].Peers
	n4 := c.addConfig("n4", peers, nil)
	c.start(n4)
	if c.engines[n4].IsLeader() {
		t.Fatal("a node outside its peers bootstrapped itself")
	}
	follower := (lead + 1) % 3
	if err := c.engines[follower].AddNode(ctx, "n4", inmemAddr("n4")); err != nil {
		t.Fatalf("AddNode through a follower: %v", err)
	}
	c.converge()
	for _, id := range ids {
		if _, _, err := c.engines[n4].store.Message(store.DefaultTenant, id); err != nil {
			t.Fatalf("the new node lacks %s: %v", id, err)
		}
	}
	victim := (lead + 2) % 3
	if err := c.engines[n4].RemoveNode(ctx, c.cfgs[victim].NodeID); err != nil {
		t.Fatalf("RemoveNode through the new node: %v", err)
	}
	c.stop(victim)
	st, err := c.engines[lead].ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, n := range st.Nodes {
		members = append(members, n.ID)
	}
	if len(members) != 3 || slices.Contains(members, c.cfgs[victim].NodeID) || !slices.Contains(members, "n4") {
		t.Fatalf("members after the swap = %v", members)
	}
	enqueueN(t, c.engines[n4], 5, "after-swap") // a quorum of the new membership commits
	c.converge()
}

// logRecorder is a slog handler that keeps every message, for tests that
// check what a node logged.
type logRecorder struct {
	mu   *sync.Mutex
	msgs *[]string
}

func newLogRecorder() logRecorder { return logRecorder{mu: new(sync.Mutex), msgs: new([]string)} }

func (r logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r logRecorder) WithGroup(string) slog.Handler            { return r }
func (r logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	*r.msgs = append(*r.msgs, rec.Message)
	r.mu.Unlock()
	return nil
}

func (r logRecorder) count(substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range *r.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// TestClusterGracefulStopHandsLeadershipOver stops the leader cleanly: it
// must transfer leadership, so the others elect a new leader at once
// instead of first waiting out a heartbeat timeout.
func TestClusterGracefulStopHandsLeadershipOver(t *testing.T) {
	recorders := map[string]logRecorder{}
	c := newTestCluster(t, 3, func(cfg *Config) {
		rec := newLogRecorder()
		recorders[cfg.NodeID] = rec
		cfg.Logger = slog.New(rec)
	})
	lead := c.leader()
	const timedOut = "heartbeat timeout reached"
	before := map[string]int{}
	for id, rec := range recorders {
		before[id] = rec.count(timedOut)
	}
	c.stop(lead)
	var rest []int
	for i := range c.engines {
		if i != lead {
			rest = append(rest, i)
		}
	}
	c.leader(rest...)
	for _, i := range rest {
		id := c.cfgs[i].NodeID
		if n := recorders[id].count(timedOut) - before[id]; n > 0 {
			t.Fatalf("%s waited for a heartbeat timeout after the leader stopped: no leadership transfer", id)
		}
	}
}

// A forwarded write whose connection breaks after the leader executed it is
// not sent again, which would execute it twice: the caller gets
// ErrUncertain, and retries with its idempotency key if it has one.
func TestClusterForwardedWriteIsNotSentTwice(t *testing.T) {
	var cut atomic.Bool
	c := newTestCluster(t, 3, nil)
	c.mu.Lock()
	c.tamper = func(conn net.Conn) net.Conn {
		if cut.Load() {
			return &cutAfterFirstByte{Conn: conn}
		}
		return conn
	}
	c.mu.Unlock()
	lead := c.leader()
	follower := (lead + 1) % 3
	cut.Store(true)
	// Connections dialled before the cut (the follower published its
	// address through the leader) would be reused, uncut.
	c.engines[follower].node.PeerClient().CloseIdleConnections()
	_, err := c.engines[follower].CreateEndpoint(ctxb, EndpointInput{URL: "https://example.com/hook"})
	cut.Store(false)
	if !errors.Is(err, ErrUncertain) {
		t.Fatalf("CreateEndpoint through a connection cut after the leader answered: %v, want ErrUncertain", err)
	}
	eps, err := c.engines[lead].Endpoints(ctxb, "")
	if err != nil || len(eps) != 1 {
		t.Fatalf("the leader has %d endpoints (%v), want the one it created", len(eps), err)
	}
}

// cutAfterFirstByte reads one byte of the answer, then fails: the request
// reached the other side and was answered.
type cutAfterFirstByte struct {
	net.Conn
	read bool
}

func (c *cutAfterFirstByte) Read(p []byte) (int, error) {
	if c.read {
		c.Conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	c.read = true
	return c.Conn.Read(p[:1])
}

// An enqueue (or a batch) through a follower answers once the leader has
// committed and applied it, without waiting for the follower to learn of
// the commit; reads on that follower still see the message, once it has
// applied it, and never answer not found meanwhile. Here the follower gets
// no entries at all until the test lets them through.
func TestClusterForwardedEnqueueDoesNotWaitForTheFollower(t *testing.T) {
	var starved atomic.Value // raft.ServerAddress that gets no entries
	starved.Store(raft.ServerAddress(""))
	c := newWrappedTestCluster(t, 3, nil, func(tr raft.Transport) raft.Transport {
		return &starvedAppends{Transport: tr, starved: &starved}
	})
	lead := c.leader()
	follower := (lead + 1) % 3
	e := c.engines[follower]
	// Fed just before it is starved: a follower that trails and has had no
	// entries for 2 s counts as catching up, and refuses requests at once.
	fed := mustEnqueue(t, c.engines[lead], MessageInput{Type: "job.done"})
	waitFor(t, 10*time.Second, "the follower to apply a message", func() bool {
		_, _, err := e.store.Message("default", fed.ID)
		return err == nil
	})
	starved.Store(raft.ServerAddress(inmemAddr(c.cfgs[follower].NodeID)))

	ctx, cancel := context.WithTimeout(ctxb, 10*time.Second)
	defer cancel()
	msg, created, err := e.Enqueue(ctx, MessageInput{Type: "job.done", Data: []byte(`{}`)})
	if err != nil || !created {
		t.Fatalf("enqueue through a follower that gets no entries: %v (created %v)", err, created)
	}
	batch, err := e.EnqueueBatch(ctx, "", []MessageInput{{Type: "job.done", Data: []byte(`{}`)}})
	if err != nil || batch[0].Err != nil || !batch[0].Created {
		t.Fatalf("batch enqueue through a follower that gets no entries: %v, %+v", err, batch)
	}
	if _, _, err := e.store.Message("default", msg.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the follower's own store: %v, want not found (the test starves it of entries)", err)
	}
	short, cancelShort := context.WithTimeout(ctxb, 200*time.Millisecond)
	_, err = e.Message(short, "", msg.ID)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("read on the starved follower: %v, want it to wait for the message (or to refuse: catching up)", err)
	}

	starved.Store(raft.ServerAddress(""))
	got, err := e.Message(ctx, "", msg.ID)
	if err != nil || got.ID != msg.ID {
		t.Fatalf("read on the follower once it gets entries: %v, %v", got, err)
	}
	c.converge()
}

// starvedAppends refuses appends that carry entries to one address;
// heartbeats pass, so that node keeps its leader.
type starvedAppends struct {
	raft.Transport
	starved *atomic.Value
}

func (s *starvedAppends) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if len(args.Entries) > 0 && target == s.starved.Load().(raft.ServerAddress) {
		return errors.New("test: entries withheld")
	}
	return s.Transport.AppendEntries(id, target, args, resp)
}

// AppendEntriesPipeline is refused, so that every append goes through
// AppendEntries.
func (s *starvedAppends) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
