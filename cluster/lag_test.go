package cluster

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestFarBehind(t *testing.T) {
	for _, c := range []struct {
		name   string
		view   lagView
		behind uint64
		far    bool
	}{
		{"in step", lagView{leaderIndex: 100, applied: 100}, 0, false},
		{"ahead of what it heard", lagView{leaderIndex: 90, applied: 100}, 0, false},
		{"a few entries behind", lagView{leaderIndex: 103, applied: 100}, 3, false},
		{"MaxLag behind", lagView{leaderIndex: 100 + MaxLag, applied: 100}, MaxLag, false},
		{"over MaxLag behind", lagView{leaderIndex: 101 + MaxLag, applied: 100}, MaxLag + 1, true},
		{"installing a snapshot", lagView{leaderIndex: 100, applied: 100, installing: true}, 0, true},
		{"behind and not fed", lagView{leaderIndex: 101, applied: 100, unfed: true}, 1, true},
		{"in step and not fed", lagView{leaderIndex: 100, applied: 100, unfed: true}, 0, false},
	} {
		behind, far := c.view.farBehind()
		if behind != c.behind || far != c.far {
			t.Errorf("%s: farBehind() = %d, %v; want %d, %v", c.name, behind, far, c.behind, c.far)
		}
	}
}

func TestUnfed(t *testing.T) {
	now := time.Now()
	var l lagTracker
	if l.unfed(true, now) {
		t.Error("unfed without a watched transport")
	}
	l.watched = true
	if !l.unfed(true, now) {
		t.Error("not unfed with a leader known and no entries ever")
	}
	if l.unfed(false, now) {
		t.Error("unfed with no leader known")
	}
	l.fed.Store(now.Add(-time.Second).UnixNano())
	if l.unfed(true, now) {
		t.Error("unfed a second after entries came")
	}
	if !l.unfed(true, now.Add(unfedAfter)) {
		t.Errorf("not unfed %v after entries came", unfedAfter+time.Second)
	}
}

// TestWatchedTransportReadsTheLeadersLog sends RPCs over raft's in-memory
// transport to a watched one, answered by a stand-in for Raft, and checks
// what the watcher learns: the commit index of appends (not of
// heartbeats), and a snapshot's index, installing until it is answered.
func TestWatchedTransportReadsTheLeadersLog(t *testing.T) {
	_, leader := raft.NewInmemTransport("")
	followerAddr, follower := raft.NewInmemTransport("")
	leader.Connect(followerAddr, follower)
	closed := make(chan struct{})
	var wg sync.WaitGroup
	w := &watchedTransport{fullTransport: follower, lag: &lagTracker{watched: true}, rpcs: make(chan raft.RPC), closed: closed, wg: &wg}
	wg.Add(1)
	go w.relay()
	answerSnapshot := make(chan struct{})
	wg.Add(1)
	go func() { // Raft: answers appends at once, a snapshot when told
		defer wg.Done()
		for {
			select {
			case rpc := <-w.Consumer():
				switch rpc.Command.(type) {
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
				case *raft.InstallSnapshotRequest:
					<-answerSnapshot
					rpc.Respond(&raft.InstallSnapshotResponse{Success: true}, nil)
				}
			case <-closed:
				return
			}
		}
	}()
	defer func() {
		close(closed)
		wg.Wait()
	}()

	var resp raft.AppendEntriesResponse
	if err := leader.AppendEntries("f", followerAddr, &raft.AppendEntriesRequest{Term: 1}, &resp); err != nil { // a heartbeat
		t.Fatal(err)
	}
	if w.lag.fed.Load() != 0 || w.lag.leaderIndex.Load() != 0 {
		t.Fatal("a heartbeat counted as entries")
	}
	if err := leader.AppendEntries("f", followerAddr, &raft.AppendEntriesRequest{Term: 1, LeaderCommitIndex: 42}, &resp); err != nil {
		t.Fatal(err)
	}
	if got := w.lag.leaderIndex.Load(); got != 42 || w.lag.fed.Load() == 0 {
		t.Fatalf("after an append with commit index 42: leader index %d, fed %d", got, w.lag.fed.Load())
	}

	sent := make(chan error, 1)
	go func() {
		var resp raft.InstallSnapshotResponse
		sent <- leader.InstallSnapshot("f", followerAddr, &raft.InstallSnapshotRequest{Term: 1, LastLogIndex: 5000}, &resp, nil)
	}()
	waitFor(t, "the snapshot to be installing", func() bool { return w.lag.installing.Load() })
	if got := w.lag.leaderIndex.Load(); got != 5000 {
		t.Errorf("leader index %d during the install, want 5000", got)
	}
	close(answerSnapshot)
	if err := <-sent; err != nil {
		t.Fatalf("the leader got no answer to its snapshot: %v", err)
	}
	waitFor(t, "the install to end", func() bool { return !w.lag.installing.Load() })
}
