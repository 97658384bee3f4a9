package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/store"
)

// applyConcurrently applies n commands at once on the leader.
func applyConcurrently(t *testing.T, leader *testNode, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := store.Command{PutNode: &store.Node{ID: fmt.Sprintf("x%d", i%4), APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"}}
			_, err := leader.Apply(ctx, cmd)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
}

// A leader alone keeps two entries awaiting commit, one with other voters
// eight; the depth follows the configuration as voters come and go, and
// every command commits meanwhile.
func TestInflightDepthFollowsTheVoters(t *testing.T) {
	checkNoGoroutineLeak(t)
	n1 := openTestNode(t, "n1", nil, nil, nil)
	waitFor(t, "n1 to lead", func() bool { id, _ := n1.Leader(); return id == "n1" })
	// Once every Apply has returned, the only tokens taken are the ones
	// commitLoop holds back: the capacity minus the depth.
	heldBack := func(depth int) func() bool {
		return func() bool {
			applyConcurrently(t, n1, 20)
			return len(n1.inflight) == cap(n1.inflight)-depth
		}
	}
	waitFor(t, "the depth of a lone leader", heldBack(inflightAlone))

	var others []*testNode
	for _, id := range []string{"n2", "n3"} {
		n := openTestNode(t, id, []Peer{{ID: "n1", RaftAddr: n1.RaftAddr()}}, nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n1.AddVoter(ctx, id, n.RaftAddr())
		cancel()
		if err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
		others = append(others, n)
	}
	waitFor(t, "the depth with followers", heldBack(inflightReplicated))

	for _, n := range others {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n1.RemoveServer(ctx, n.ID())
		cancel()
		if err != nil {
			t.Fatalf("remove %s: %v", n.ID(), err)
		}
	}
	waitFor(t, "the depth alone again", heldBack(inflightAlone))
}
