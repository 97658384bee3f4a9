package cluster

import (
	"context"
	"errors"
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

func outcomeCmd() store.Command {
	return store.Command{Outcome: &store.Outcome{DeliveryID: "d_unknown", Attempt: 1, Result: store.ResultSucceeded}}
}

// applyAsync applies cmd in the background; the channel gets its error.
func applyAsync(n *Node, cmd store.Command) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := n.Apply(ctx, cmd)
		done <- err
	}()
	return done
}

// On a quiet node an outcome alone waits for company, and the next other
// command shares its log entry.
func TestOutcomeLingersForCompany(t *testing.T) {
	n, st := openLoneNode(t, t.TempDir(), func(c *Config) { c.OutcomeLinger = time.Hour })
	defer st.Close()
	defer n.Close()
	before := n.raft.LastIndex()
	outcome := applyAsync(n, outcomeCmd())
	waitFor(t, "the outcome to linger", func() bool { return n.lingering.Load() == 1 })
	if got := n.raft.LastIndex(); got != before {
		t.Fatalf("the lingering outcome was appended: last index %d, was %d", got, before)
	}
	other := applyAsync(n, store.Command{PutNode: &store.Node{ID: "n1", APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2"}})
	for _, done := range []<-chan error{outcome, other} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := n.raft.LastIndex(); got != before+1 {
		t.Fatalf("last index %d, want %d: the outcome and the other command in one entry", got, before+1)
	}
}

// An outcome alone commits once the linger is over, and at once with the
// linger disabled (the default).
func TestOutcomeAloneCommits(t *testing.T) {
	for _, linger := range []time.Duration{time.Millisecond, 0, -1} {
		n, st := openLoneNode(t, t.TempDir(), func(c *Config) { c.OutcomeLinger = linger })
		if err := <-applyAsync(n, outcomeCmd()); err != nil {
			t.Errorf("linger %v: %v", linger, err)
		}
		n.Close()
		st.Close()
	}
}

// Closing the node fails a lingering outcome with ErrClosed.
func TestLingeringOutcomeFailsAtClose(t *testing.T) {
	n, st := openLoneNode(t, t.TempDir(), func(c *Config) { c.OutcomeLinger = time.Hour })
	defer st.Close()
	outcome := applyAsync(n, outcomeCmd())
	waitFor(t, "the outcome to linger", func() bool { return n.lingering.Load() == 1 })
	n.Close()
	if err := <-outcome; !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

// Outcomes linger only while proposals come slower than quietRate a
// second, over the last window and the current one.
func TestRateWindowQuiet(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var w rateWindow
	if !w.quiet() {
		t.Fatal("a node that proposed nothing is not quiet")
	}
	w.add(quietRate, t0) // a burst within the first window
	if w.quiet() {
		t.Fatal("quiet during a burst")
	}
	w.add(1, t0.Add(1500*time.Millisecond)) // ends the window: ~268/s
	if !w.quiet() {
		t.Fatalf("not quiet at %.0f/s", w.last)
	}
	w.add(quietRate, t0.Add(2*time.Second))
	w.add(quietRate, t0.Add(2500*time.Millisecond)) // ends it: 800/s
	if w.quiet() {
		t.Fatalf("quiet at %.0f/s", w.last)
	}
	w.add(10, t0.Add(10*time.Second)) // after a pause
	if !w.quiet() {
		t.Fatalf("not quiet after a pause, at %.0f/s", w.last)
	}
}

func TestOutcomesOnly(t *testing.T) {
	o, e := proposal{cmd: outcomeCmd()}, proposal{cmd: store.Command{PutNode: &store.Node{ID: "x"}}}
	if !outcomesOnly([]proposal{o, o}) || outcomesOnly([]proposal{o, e}) || outcomesOnly([]proposal{e}) {
		t.Fatal("outcomesOnly is wrong")
	}
}
