package engine

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestClusterCatchingUpNodeAnswersAtOnce stops a follower while the leader
// writes enough to snapshot and truncate its log, then restarts it: it can
// only catch up by installing the snapshot, whose transfer is held here
// until the test lets it go. Meanwhile the node answers reads and writes at
// once with ErrCatchingUp (a wait for the catch-up would last until the
// test's own deadline) and is not ready; once caught up it answers them.
func TestClusterCatchingUpNodeAnswersAtOnce(t *testing.T) {
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	c := newWrappedTestCluster(t, 3, func(cfg *Config) {
		cfg.Raft.SnapshotThreshold = 16
		cfg.Raft.TrailingLogs = 4
		cfg.Raft.SnapshotInterval = 50 * time.Millisecond
	}, func(tr raft.Transport) raft.Transport {
		return &heldSnapshots{InmemTransport: tr.(*raft.InmemTransport), hold: hold}
	})
	t.Cleanup(release) // before the nodes stop: Raft cannot stop mid-install
	lead := c.leader()
	lag := (lead + 1) % 3
	c.stop(lag)
	ids := enqueueN(t, c.engines[lead], 60, "away")
	snapDir := filepath.Join(c.cfgs[lead].DataDir, "snapshots")
	waitFor(t, 10*time.Second, "the leader to snapshot", func() bool {
		entries, _ := os.ReadDir(snapDir)
		return len(entries) > 0
	})
	enqueueN(t, c.engines[lead], 20, "away-more")

	c.start(lag)
	e := c.engines[lag]
	waitFor(t, 10*time.Second, "the rejoined node to know it is catching up", func() bool {
		_, far := e.CatchingUp()
		return far
	})
	if e.Ready() {
		t.Error("ready while catching up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.Message(ctx, "", ids[0])
	var cue *CatchingUpError
	if !errors.As(err, &cue) || !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("read while catching up: %v, want ErrCatchingUp", err)
	}
	if _, _, err := e.Enqueue(ctx, MessageInput{Type: "job.done"}); !errors.Is(err, ErrCatchingUp) {
		t.Fatalf("write while catching up: %v, want ErrCatchingUp", err)
	}
	t.Logf("while catching up: %v", err)

	release()
	waitFor(t, 15*time.Second, "the node to catch up", func() bool {
		_, far := e.CatchingUp()
		return !far && e.Ready()
	})
	if _, err := e.Message(ctx, "", ids[0]); err != nil {
		t.Fatalf("read after catching up: %v", err)
	}
	mustEnqueue(t, e, MessageInput{Type: "job.done"})
	c.converge()
}

// heldSnapshots holds the data of every snapshot a node sends until hold is
// closed: the receiver's install waits for it.
type heldSnapshots struct {
	*raft.InmemTransport
	hold <-chan struct{}
}

func (h *heldSnapshots) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest,
	resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return h.InmemTransport.InstallSnapshot(id, target, args, resp, &heldReader{r: data, hold: h.hold})
}

type heldReader struct {
	r    io.Reader
	hold <-chan struct{}
}

func (h *heldReader) Read(p []byte) (int, error) {
	<-h.hold
	return h.r.Read(p)
}
