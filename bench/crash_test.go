package bench

import (
	"context"
	"io"
	"testing"
	"time"
)

// chaosAt returns an onAck hook for load.run that runs act(i) on its own
// goroutine once the i-th threshold of acknowledged messages is reached, in
// order, and a wait func that returns act's first error.
func chaosAt(thresholds []int64, act func(i int) error) (onAck func(int64), wait func() error) {
	reached := make(chan struct{}, len(thresholds))
	done := make(chan error, 1)
	go func() {
		for i := range thresholds {
			<-reached
			if err := act(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	onAck = func(n int64) {
		for _, t := range thresholds {
			if n == t {
				reached <- struct{}{}
			}
		}
	}
	return onAck, func() error { return <-done }
}

// runLoad sends total messages through client with workers concurrent
// clients, calling onAck, then waits for the receiver to get them all (and
// for wait, if set); it fails the test if any acknowledged message was not
// delivered. Idempotency keys are the test's name and a number.
func runLoad(t *testing.T, ctx context.Context, client *Client, rc *Receiver, total, workers int, onAck func(int64), wait func() error) *load {
	t.Helper()
	l := newLoad(Config{Scenario: t.Name(), Messages: total, Concurrency: workers, Progress: io.Discard},
		client, []byte(`{"type":"job.done","data":{"ok":true}}`))
	if err := l.run(ctx, rc, onAck); err != nil {
		t.Fatal(err)
	}
	if wait != nil {
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.sent) != total {
		t.Fatalf("%d distinct message ids acknowledged for %d idempotency keys", len(l.sent), total)
	}
	if n := l.undelivered(rc); n > 0 {
		t.Fatalf("%d of %d acknowledged messages were never delivered", n, total)
	}
	_, requests, dups, _ := rc.Counts()
	t.Logf("all %d acknowledged messages delivered; %d requests, %d ids delivered more than once", total, requests, dups)
	return l
}

// TestCrashLosesNoAcknowledgedMessage runs a real herald serve under
// concurrent enqueue load, SIGKILLs it twice mid-load, restarts it on the
// same data dir each time, and checks that every message that got a 2xx is
// delivered.
func TestCrashLosesNoAcknowledgedMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, rc, client := startTestCluster(ctx, t, 1)
	onAck, wait := chaosAt([]int64{150, 400}, func(int) error {
		if err := c.Kill(0); err != nil {
			return err
		}
		t.Logf("SIGKILL mid-load; restarting")
		if err := c.Start(0); err != nil {
			return err
		}
		return c.WaitReady(ctx, 0)
	})
	runLoad(t, ctx, client, rc, 600, 8, onAck, wait)
}
