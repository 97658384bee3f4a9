package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/store"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of raft's
// goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// testRaftLogger is a raftLogger writing text at debug level, on a clock
// the test moves.
type testRaftLogger struct {
	hclog.Logger
	out *lockedBuffer
	now time.Time
}

func newTestRaftLogger() *testRaftLogger {
	l := &testRaftLogger{out: &lockedBuffer{}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	h := slog.NewTextHandler(l.out, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
	l.Logger = raftLogger(slog.New(h))
	l.Logger.(*raftLog).t.now = func() time.Time { return l.now }
	return l
}

func (l *testRaftLogger) advance(d time.Duration) { l.now = l.now.Add(d) }

// above returns the lines logged at INFO or above.
func (l *testRaftLogger) above() []string {
	var out []string
	for _, line := range l.out.lines() {
		if !strings.HasPrefix(line, "level=DEBUG") {
			out = append(out, line)
		}
	}
	return out
}

func checkLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// The servers and errors below are what raft v1.7.3 passes; the messages
// and keys are copied from its source (replication.go, raft.go, api.go).
var (
	srvN1      = raft.Server{Suffrage: raft.Voter, ID: "n1", Address: "127.0.0.1:9081"}
	srvN2      = raft.Server{Suffrage: raft.Voter, ID: "n2", Address: "127.0.0.1:9082"}
	srvN3      = raft.Server{Suffrage: raft.Voter, ID: "n3", Address: "127.0.0.1:9083"}
	errRefused = errors.New("dial tcp 127.0.0.1:9083: connect: connection refused")
)

func initialConfiguration(l hclog.Logger) {
	l.Info("initial configuration", "index", uint64(1), "servers", hclog.Fmt("%+v", []raft.Server{srvN1, srvN2, srvN3}))
}

// heartbeatFailure is replication.go's heartbeat error.
func heartbeatFailure(l hclog.Logger, addr raft.ServerAddress, backoff time.Duration, err error) {
	l.Error("failed to heartbeat to", "peer", addr, "backoff time", backoff, "error", err)
}

// TestRaftLoggerPeerDown: a follower down for two and a half minutes, as
// its leader's raft logs it, gives one warning, two reminders and one info.
func TestRaftLoggerPeerDown(t *testing.T) {
	l := newTestRaftLogger()
	initialConfiguration(l)
	l.Info("entering leader state", "leader", "Node at 127.0.0.1:9081 [Leader]")
	l.Info("pipelining replication", "peer", srvN3)

	// The connection breaks: the pipeline, then appendEntries and the
	// heartbeat fail, and the lease check notices.
	l.Error("failed to pipeline appendEntries", "peer", srvN3, "error", errors.New("EOF"))
	l.Info("aborting pipeline replication", "peer", srvN3)
	l.Error("failed to appendEntries to", "peer", srvN3, "error", errRefused)
	heartbeatFailure(l, srvN3.Address, 10*time.Millisecond, errRefused)
	l.advance(300 * time.Millisecond)
	l.Warn("failed to contact", "server-id", srvN3.ID, "time", 312*time.Millisecond)
	// Raft retries for 2.5 minutes: a heartbeat about every 150ms, an
	// appendEntries every 10s.
	for i := range 1000 {
		l.advance(150 * time.Millisecond)
		heartbeatFailure(l, srvN3.Address, 150*time.Millisecond, errRefused)
		if i%66 == 0 {
			l.Error("failed to appendEntries to", "peer", srvN3, "error", errRefused)
			l.Debug("failed to contact", "server-id", srvN3.ID, "time", time.Duration(i)*150*time.Millisecond)
		}
	}
	// Back: the heartbeat succeeds silently, replication resumes.
	l.advance(5 * time.Second)
	l.Info("pipelining replication", "peer", srvN3)

	since := "2026-01-02T03:04:05.000Z"
	checkLines(t, l.above(),
		`level=WARN msg="peer unreachable" component=raft peer=n3 addr=127.0.0.1:9083 error=EOF rpc=appendEntries`,
		`level=WARN msg="peer still unreachable" component=raft peer=n3 addr=127.0.0.1:9083 down=1m0s since=`+since+` failures=416 error="dial tcp 127.0.0.1:9083: connect: connection refused"`,
		`level=WARN msg="peer still unreachable" component=raft peer=n3 addr=127.0.0.1:9083 down=2m0s since=`+since+` failures=828 error="dial tcp 127.0.0.1:9083: connect: connection refused"`,
		`level=INFO msg="peer reachable again" component=raft peer=n3 addr=127.0.0.1:9083 down=2m30.3s failures=1036`,
	)

	// Each folded error is still there at debug level, readable.
	all := strings.Join(l.out.lines(), "\n")
	for _, want := range []string{
		`level=DEBUG msg="failed to heartbeat to" component=raft peer=n3 addr=127.0.0.1:9083 backoff=150ms error="dial tcp 127.0.0.1:9083: connect: connection refused"`,
		`level=DEBUG msg="failed to appendEntries to" component=raft peer=n3 addr=127.0.0.1:9083 error="dial tcp 127.0.0.1:9083: connect: connection refused"`,
		`level=DEBUG msg="failed to contact" component=raft peer=n3 addr=127.0.0.1:9083 silent_for=312ms`,
		`level=DEBUG msg="pipelining replication" component=raft peer=n3 addr=127.0.0.1:9083`,
		`level=DEBUG msg="initial configuration" component=raft index=1 servers="[{Suffrage:Voter ID:n1 Address:127.0.0.1:9081} {Suffrage:Voter ID:n2 Address:127.0.0.1:9082} {Suffrage:Voter ID:n3 Address:127.0.0.1:9083}]"`,
	} {
		if !strings.Contains(all, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	for _, unreadable := range []string{"map[", "e+0", "Suffrage:0", `"backoff time"`} {
		if strings.Contains(all, unreadable) {
			t.Errorf("the output has %q:\n%s", unreadable, all)
		}
	}

	// Down again: a new episode.
	heartbeatFailure(l, srvN3.Address, 10*time.Millisecond, errRefused)
	if got := l.above(); len(got) != 5 || !strings.Contains(got[4], `msg="peer unreachable" component=raft peer=n3`) {
		t.Errorf("a second outage logged %q", got[4:])
	}
}

// TestRaftLoggerHeartbeatFirst: without a configuration logged yet, a
// heartbeat names only the address; the id is added once known.
func TestRaftLoggerHeartbeatFirst(t *testing.T) {
	l := newTestRaftLogger()
	heartbeatFailure(l, srvN3.Address, 10*time.Millisecond, errRefused)
	l.Error("failed to appendEntries to", "peer", srvN3, "error", errRefused)
	l.advance(time.Second)
	l.Info("pipelining replication", "peer", srvN3)
	checkLines(t, l.above(),
		`level=WARN msg="peer unreachable" component=raft addr=127.0.0.1:9083 error="dial tcp 127.0.0.1:9083: connect: connection refused" rpc=heartbeat`,
		`level=INFO msg="peer reachable again" component=raft addr=127.0.0.1:9083 down=0s failures=2`,
	)
}

// TestRaftLoggerElection: followers whose leader died: a candidate's vote
// requests to it fail every round; the winner goes on failing to reach it
// and logs its return; the loser, now a follower, stops contacting it and
// forgets it.
func TestRaftLoggerElection(t *testing.T) {
	errN1 := errors.New("dial tcp 127.0.0.1:9081: connect: connection refused")
	elect := func(l *testRaftLogger) {
		initialConfiguration(l)
		l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", srvN1.Address, "last-leader-id", srvN1.ID)
		l.Info("entering candidate state", "node", "Node at 127.0.0.1:9082 [Candidate]", "term", uint64(3))
		for range 3 {
			l.Error("failed to make requestVote RPC", "target", srvN1, "error", errN1, "term", uint64(3))
			l.advance(400 * time.Millisecond)
			l.Warn("Election timeout reached, restarting election")
		}
	}
	winner, loser := newTestRaftLogger(), newTestRaftLogger()
	elect(winner)
	elect(loser)

	winner.Debug("vote granted", "from", srvN3.ID, "term", uint64(3), "tally", 2)
	winner.Info("election won", "term", uint64(3), "tally", 2)
	winner.Info("entering leader state", "leader", "Node at 127.0.0.1:9082 [Leader]")
	for range 100 {
		winner.advance(150 * time.Millisecond)
		heartbeatFailure(winner, srvN1.Address, 150*time.Millisecond, errN1)
	}
	winner.advance(2 * time.Second)
	winner.Info("pipelining replication", "peer", srvN1)

	loser.Info("entering follower state", "follower", "Node at 127.0.0.1:9083 [Follower]", "leader-address", srvN2.Address, "leader-id", srvN2.ID)
	loser.advance(peerStale + time.Second)
	// Much later it leads and finds n1 down again: a new episode.
	loser.Error("failed to appendEntries to", "peer", srvN1, "error", errN1)

	election := []string{
		`level=INFO msg="heartbeat timeout reached, starting election" component=raft last_leader_addr=127.0.0.1:9081 last_leader_id=n1`,
		`level=WARN msg="peer unreachable" component=raft peer=n1 addr=127.0.0.1:9081 error="dial tcp 127.0.0.1:9081: connect: connection refused" rpc=requestVote`,
		`level=INFO msg="Election timeout reached, restarting election" component=raft`,
		`level=INFO msg="Election timeout reached, restarting election" component=raft`,
		`level=INFO msg="Election timeout reached, restarting election" component=raft`,
	}
	checkLines(t, winner.above(), append(election,
		`level=INFO msg="peer reachable again" component=raft peer=n1 addr=127.0.0.1:9081 down=16.2s failures=103`)...)
	checkLines(t, loser.above(), append(election,
		`level=WARN msg="peer unreachable" component=raft peer=n1 addr=127.0.0.1:9081 error="dial tcp 127.0.0.1:9081: connect: connection refused" rpc=appendEntries`)...)

	// A follower that hears from the leader it could not reach logs its
	// return.
	f := newTestRaftLogger()
	initialConfiguration(f)
	f.Error("failed to make requestVote RPC", "target", srvN2, "error", errRefused, "term", uint64(4))
	f.advance(time.Second)
	f.Info("entering follower state", "follower", "Node at 127.0.0.1:9083 [Follower]", "leader-address", srvN2.Address, "leader-id", srvN2.ID)
	if got := f.above(); len(got) != 2 || !strings.HasPrefix(got[1], `level=INFO msg="peer reachable again" component=raft peer=n2`) {
		t.Errorf("got %q", got)
	}
}

// TestRaftLoggerLevels: what is not per-peer retry noise keeps its level.
func TestRaftLoggerLevels(t *testing.T) {
	l := newTestRaftLogger()
	initialConfiguration(l)
	snapErr := errors.New("unexpected EOF")

	// A snapshot failure to a reachable peer is an error; to one that is
	// down, part of the outage.
	l.Info("installing snapshot on", "peer", srvN2.ID, "id", "2-100-1", "size", int64(1<<20))
	l.Error("failed to install snapshot", "peer", srvN2.ID, "id", "2-100-1", "error", snapErr)
	l.Error("failed to send snapshot to", "peer", srvN2, "error", snapErr)
	heartbeatFailure(l, srvN3.Address, 10*time.Millisecond, errRefused)
	l.Error("failed to send snapshot to", "peer", srvN3, "error", errRefused)
	// A slow follower the heartbeat still reaches is a warning.
	l.Warn("failed to contact", "server-id", srvN2.ID, "time", 450*time.Millisecond)
	l.Warn("failed to contact quorum of nodes, stepping down")
	// The follower's side of a snapshot names no peer.
	l.Error("failed to install snapshot", "error", snapErr)
	l.Error("failed to take snapshot", "error", errors.New("no space left on device"))
	l.Error("failed to decode incoming command", "error", errors.New("unknown rpc type 9"))
	// A connection closed mid-exchange (a peer stopping) is routine.
	l.Error("failed to flush response", "error", &net.OpError{Op: "write", Err: syscall.EPIPE})
	l.Error("failed to decode incoming command", "error", fmt.Errorf("read: %w", net.ErrClosed))
	l.Warn("rejecting pre-vote request since we have a leader", "from", raft.ServerAddress("127.0.0.1:9083"), "leader", srvN1.Address, "leader-id", string(srvN1.ID))
	l.Warn("rejecting vote request since node is not in configuration", "from", raft.ServerAddress("127.0.0.1:9084"))
	l.Info("entering follower state", "follower", "Node at 127.0.0.1:9081 [Follower]", "leader-address", raft.ServerAddress(""), "leader-id", raft.ServerID(""))
	l.Debug("accepted connection", "local-address", srvN1.Address, "remote-address", "127.0.0.1:51234")
	l.Trace("a trace")
	l.With("id", "2-100-1", "last-index", uint64(100), "last-term", uint64(2), "size-in-bytes", int64(4096)).Error("failed to restore snapshot", "error", snapErr)
	l.Named("transport").Warn("odd", "key")

	checkLines(t, l.above(),
		`level=ERROR msg="failed to install snapshot" component=raft peer=n2 addr=127.0.0.1:9082 id=2-100-1 error="unexpected EOF"`,
		`level=ERROR msg="failed to send snapshot to" component=raft peer=n2 addr=127.0.0.1:9082 error="unexpected EOF"`,
		`level=WARN msg="peer unreachable" component=raft peer=n3 addr=127.0.0.1:9083 error="dial tcp 127.0.0.1:9083: connect: connection refused" rpc=heartbeat`,
		`level=WARN msg="failed to contact" component=raft peer=n2 addr=127.0.0.1:9082 silent_for=450ms`,
		`level=WARN msg="failed to contact quorum of nodes, stepping down" component=raft`,
		`level=ERROR msg="failed to install snapshot" component=raft error="unexpected EOF"`,
		`level=ERROR msg="failed to take snapshot" component=raft error="no space left on device"`,
		`level=ERROR msg="failed to decode incoming command" component=raft error="unknown rpc type 9"`,
		`level=INFO msg="rejecting pre-vote request since we have a leader" component=raft from=127.0.0.1:9083 leader=127.0.0.1:9081 leader_id=n1`,
		`level=WARN msg="rejecting vote request since node is not in configuration" component=raft from=127.0.0.1:9084`,
		`level=ERROR msg="failed to restore snapshot" component=raft id=2-100-1 last_index=100 last_term=2 size_in_bytes=4096 error="unexpected EOF"`,
		`level=WARN msg=odd component=raft logger=raft.transport extra_value_at_end=key`,
	)
	debug := strings.Join(l.out.lines(), "\n")
	for _, want := range []string{
		`level=DEBUG msg="installing snapshot on" component=raft peer=n2 addr=127.0.0.1:9082 id=2-100-1 size=1048576`,
		`level=DEBUG msg="failed to send snapshot to" component=raft peer=n3`,
		`level=DEBUG msg="accepted connection" component=raft local_address=127.0.0.1:9081 remote_address=127.0.0.1:51234`,
		`level=DEBUG msg="a trace" component=raft`,
		`level=DEBUG msg="failed to flush response" component=raft error="write: broken pipe"`,
	} {
		if !strings.Contains(debug, want) {
			t.Errorf("missing %s", want)
		}
	}
}

// TestRaftLoggerConcurrent: raft logs from many goroutines (run with
// -race).
func TestRaftLoggerConcurrent(t *testing.T) {
	l := newTestRaftLogger()
	l.Logger.(*raftLog).t.now = time.Now
	initialConfiguration(l)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				heartbeatFailure(l, srvN3.Address, 10*time.Millisecond, errRefused)
				l.With("i", i).Info("pipelining replication", "peer", srvN3)
			}
		})
	}
	wg.Wait()
	for _, line := range l.above() {
		if !strings.Contains(line, "peer unreachable") && !strings.Contains(line, "peer reachable again") {
			t.Errorf("unexpected %s", line)
		}
	}
}

// freeRaftAddrs returns n loopback addresses with ports free just now.
func freeRaftAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// outageNode is a node of TestRaftLogsPeerOutage, which it closes and
// reopens on the same address and directory.
type outageNode struct {
	id, addr, dir string
	peers         []Peer
	logs          *logRecorder
	text          *lockedBuffer // the same records as text
	n             *Node
	st            *store.Store
}

func (o *outageNode) open(t *testing.T) {
	t.Helper()
	st, err := store.Open(filepath.Join(o.dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	text := slog.NewTextHandler(o.text, &slog.HandlerOptions{Level: slog.LevelInfo})
	n, err := Open(Config{NodeID: o.id, RaftAddr: o.addr, Dir: o.dir, Store: st, Peers: o.peers,
		Logger: slog.New(teeHandler{o.logs, text})})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	o.n, o.st = n, st
}

func (o *outageNode) close(t *testing.T) {
	t.Helper()
	if o.n == nil {
		return
	}
	if err := o.n.Close(); err != nil {
		t.Errorf("close %s: %v", o.id, err)
	}
	o.st.Close()
	o.n = nil
}

// teeHandler hands records to two handlers.
type teeHandler [2]slog.Handler

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h[0].Enabled(ctx, l) || h[1].Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, x := range h {
		if x.Enabled(ctx, r.Level) {
			x.Handle(ctx, r.Clone())
		}
	}
	return nil
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h[0].WithAttrs(as), h[1].WithAttrs(as)}
}

func (h teeHandler) WithGroup(g string) slog.Handler {
	return teeHandler{h[0].WithGroup(g), h[1].WithGroup(g)}
}

// records returns the records logged since mark at level or above.
func (l *logRecorder) records(level slog.Level, mark int) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.recs[mark:] {
		if r.Level >= level {
			out = append(out, r)
		}
	}
	return out
}

func (l *logRecorder) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

func attrOf(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// TestRaftLogsPeerOutage runs three nodes over TCP, stops a follower for a
// few seconds and counts what the cluster logs at WARN and above: one
// "peer unreachable" and one "peer reachable again" on the leader (info),
// and next to nothing else. HERALD_TEST_OUTAGE sets the outage (e.g. 60s,
// to see the reminders).
func TestRaftLogsPeerOutage(t *testing.T) {
	outage := 3 * time.Second
	if s := os.Getenv("HERALD_TEST_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("HERALD_TEST_OUTAGE: %v", err)
		}
		outage = d
	}
	addrs := freeRaftAddrs(t, 3)
	var peers []Peer
	for i, a := range addrs {
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: a})
	}
	var nodes []*outageNode
	for _, p := range peers {
		o := &outageNode{id: p.ID, addr: p.RaftAddr, dir: t.TempDir(), peers: peers, logs: &logRecorder{}, text: &lockedBuffer{}}
		o.open(t)
		t.Cleanup(func() { o.close(t) })
		nodes = append(nodes, o)
	}
	var leader *outageNode
	waitFor(t, "a leader every node follows", func() bool {
		id, _ := nodes[0].n.Leader()
		for _, o := range nodes {
			if got, _ := o.n.Leader(); got == "" || got != id || !o.n.Ready() {
				return false
			}
			if o.id == id {
				leader = o
			}
		}
		return leader != nil
	})
	var down, other *outageNode
	for _, o := range nodes {
		switch {
		case o == leader:
		case down == nil:
			down = o
		default:
			other = o
		}
	}
	// Replication to every follower has started (and with it, any
	// unreachable-then-reachable records of the start-up).
	waitFor(t, "replication to both followers", func() bool {
		return statNum(leader.n.raft.Stats(), "last_log_index") > 0 && down.n.Status().AppliedIndex == leader.n.Status().AppliedIndex
	})
	marks := map[*outageNode]int{}
	for _, o := range nodes {
		marks[o] = o.logs.mark()
	}
	textMark := len(leader.text.lines())

	start := time.Now()
	down.close(t)
	waitFor(t, "the leader to log the peer unreachable", func() bool {
		return len(matching(leader.logs.records(slog.LevelWarn, marks[leader]), "peer unreachable")) > 0
	})
	// The outage itself: a deliberate wait, long enough for raft to retry
	// a few dozen times.
	time.Sleep(outage)
	down.open(t)
	waitFor(t, "the leader to log the peer reachable again", func() bool {
		return len(matching(leader.logs.records(slog.LevelInfo, marks[leader]), "peer reachable again")) > 0
	})
	if id, _ := leader.n.Leader(); id != leader.id {
		t.Fatalf("leadership moved during the outage (to %q); with pre-vote a returning follower cannot take it", id)
	}
	took := time.Since(start)

	var warnings []string
	for _, o := range nodes {
		for _, r := range o.logs.records(slog.LevelWarn, marks[o]) {
			warnings = append(warnings, fmt.Sprintf("%s: %s %s peer=%s", o.id, r.Level, r.Message, attrOf(r, "peer")))
		}
	}
	counts := map[slog.Level]int{}
	for _, r := range leader.logs.records(slog.LevelDebug, marks[leader]) {
		counts[r.Level]++
	}
	t.Logf("leader %s, %s down for %v (%v in all); the leader's records: %d DEBUG, %d INFO, %d WARN, %d ERROR; WARN and above on every node:\n%s",
		leader.id, down.id, outage, took.Round(time.Millisecond), counts[slog.LevelDebug], counts[slog.LevelInfo], counts[slog.LevelWarn], counts[slog.LevelError], strings.Join(warnings, "\n"))
	t.Logf("the leader's log at INFO and above:\n%s", strings.Join(leader.text.lines()[textMark:], "\n"))

	lrecs := leader.logs.records(slog.LevelInfo, marks[leader])
	if got := matching(lrecs, "peer unreachable"); len(got) != 1 || attrOf(got[0], "peer") != down.id || attrOf(got[0], "addr") != down.addr || attrOf(got[0], "error") == "" {
		t.Errorf("the leader logged %d \"peer unreachable\": %v", len(got), got)
	}
	back := matching(lrecs, "peer reachable again")
	if len(back) != 1 || back[0].Level != slog.LevelInfo || attrOf(back[0], "peer") != down.id {
		t.Errorf("the leader logged %d \"peer reachable again\": %v", len(back), back)
	} else if d, err := time.ParseDuration(attrOf(back[0], "down")); err != nil || d < outage/2 || d > took {
		t.Errorf("down=%s, for an outage of %v", attrOf(back[0], "down"), outage)
	}
	// Reminders come every minute; anything else is the restarted node's
	// election chatter, if any.
	reminders := int(outage / peerReminder)
	if max := 1 + reminders + 3; len(warnings) > max {
		t.Errorf("%d records at WARN or above, want at most %d", len(warnings), max)
	}
	for _, o := range nodes {
		if errs := o.logs.records(slog.LevelError, marks[o]); len(errs) > 0 {
			t.Errorf("%s logged errors: %v", o.id, errs)
		}
	}
	if got := other.logs.records(slog.LevelWarn, marks[other]); len(got) > 0 {
		t.Errorf("the other follower logged %v", got)
	}
}

func matching(recs []slog.Record, msg string) []slog.Record {
	var out []slog.Record
	for _, r := range recs {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}
