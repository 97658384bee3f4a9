package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// MaxLag is how many log entries a node's store may trail the leader's
// commit index and still answer requests. A follower in step with the
// leader trails by a few entries (the leader group-commits, two entries in
// flight); one that rejoins after a long absence trails by thousands, and a
// request it took would wait for all of them to be applied: it answers at
// once instead, so that clients move on to another node (see
// Node.CatchingUp).
const MaxLag = 256

// unfedAfter is how long a follower may go without entries from a known
// leader before, if it is behind at all, it counts as not catching up: the
// leader sends every follower entries, or an empty append with its commit
// index, at least every 100ms; one that rejoins after a long absence gets
// heartbeats at once but its first entries only after the leader's backoff
// for it has run out, up to 10s later.
const unfedAfter = 2 * time.Second

// lagTracker follows how far the leader's log has gone, from what the
// leader sends this node, and whether a snapshot from it is being
// installed. Every index it holds is one the leader has committed, so the
// lag it gives never exceeds the real one.
type lagTracker struct {
	watched     bool          // the transport is relayed through watchedTransport; set at Open
	leaderIndex atomic.Uint64 // the highest index the leader is known to have committed
	fed         atomic.Int64  // when the leader last sent entries (UnixNano), zero before
	installing  atomic.Bool   // a snapshot from the leader is being installed
}

// note records that the leader has committed index.
func (l *lagTracker) note(index uint64) {
	for {
		cur := l.leaderIndex.Load()
		if index <= cur || l.leaderIndex.CompareAndSwap(cur, index) {
			return
		}
	}
}

// unfed reports whether the leader, known to this node, has sent it no
// entries for unfedAfter, or none since it started. Without a watched
// transport there is no telling: never.
func (l *lagTracker) unfed(leaderKnown bool, now time.Time) bool {
	return l.watched && leaderKnown && now.Sub(time.Unix(0, l.fed.Load())) > unfedAfter
}

// lagView is what a follower knows of how far behind the leader it is.
type lagView struct {
	leaderIndex uint64 // the highest index the leader is known to have committed
	applied     uint64 // the last index applied to this node's store
	installing  bool   // a snapshot from the leader is being installed
	unfed       bool   // the leader sends this node no entries (see unfedAfter)
}

// farBehind decides whether a follower is too far behind the leader to
// answer: while it installs a snapshot, while it trails by more than
// MaxLag entries, or while it trails at all and the leader sends it
// nothing to catch up with. behind is how many entries it trails.
func (v lagView) farBehind() (behind uint64, far bool) {
	if v.leaderIndex > v.applied {
		behind = v.leaderIndex - v.applied
	}
	return behind, v.installing || behind > MaxLag || (behind > 0 && v.unfed)
}

// fullTransport is a Raft transport with the optional parts that Raft
// looks for (pre-vote, and closing at shutdown): the peer port's and raft's
// in-memory one have both, so wrapping them changes nothing but what the
// wrapper adds.
type fullTransport interface {
	raft.Transport
	raft.WithPreVote
	raft.WithClose
}

// watchedTransport relays the RPCs Raft receives, reading from each what it
// says of the leader's log: the commit index an AppendEntries carries (a
// heartbeat carries none) and when it came, the last index a snapshot
// covers, and how long a snapshot takes to install (until Raft answers it).
type watchedTransport struct {
	fullTransport
	lag    *lagTracker
	rpcs   chan raft.RPC
	closed <-chan struct{}
	wg     *sync.WaitGroup // the node's: relay and its goroutines end with it
}

// Consumer implements raft.Transport: the relayed RPCs.
func (w *watchedTransport) Consumer() <-chan raft.RPC { return w.rpcs }

// relay hands each RPC to Raft after reading it, until closed. Raft takes
// RPCs one at a time, as before.
func (w *watchedTransport) relay() {
	defer w.wg.Done()
	in := w.fullTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			w.observe(&rpc)
			select {
			case w.rpcs <- rpc:
			case <-w.closed:
				return
			}
		case <-w.closed:
			return
		}
	}
}

// observe reads what rpc says of the leader's log; for a snapshot, it
// marks the install as running until Raft answers, by putting its own
// channel before the sender's.
func (w *watchedTransport) observe(rpc *raft.RPC) {
	switch cmd := rpc.Command.(type) {
	case *raft.AppendEntriesRequest:
		if cmd.LeaderCommitIndex > 0 { // not a heartbeat
			w.lag.note(cmd.LeaderCommitIndex)
			w.lag.fed.Store(time.Now().UnixNano())
		}
	case *raft.InstallSnapshotRequest:
		w.lag.note(cmd.LastLogIndex)
		w.lag.installing.Store(true)
		sender, answer := rpc.RespChan, make(chan raft.RPCResponse, 1)
		rpc.RespChan = answer
		w.wg.Add(1) // relay's own count is held: legal while Close waits
		go func() {
			defer w.wg.Done()
			defer w.lag.installing.Store(false)
			select {
			case resp := <-answer:
				select {
				case sender <- resp: // both transports' channels hold one answer
				case <-w.closed:
				}
			case <-w.closed:
			}
		}()
	}
}
