package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/store"
)

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
