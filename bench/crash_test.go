package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashLosesNoAcknowledgedMessage runs a real herald serve under
// concurrent enqueue load, SIGKILLs it twice mid-load, restarts it on the
// same data dir each time, and checks that every message that got a 2xx is
// delivered.
func TestCrashLosesNoAcknowledgedMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rc, err := NewReceiver(ReceiverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c, err := StartCluster(ctx, ClusterConfig{Binary: heraldBin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	logOnFailure(t, c)
	client := NewClient([]string{c.Nodes[0].URL()}, "", 16)
	if _, _, err := client.CreateEndpoint(ctx, rc.URL()); err != nil {
		t.Fatal(err)
	}

	const total, workers = 600, 8
	var next, acked atomic.Int64
	var mu sync.Mutex
	ackedIDs := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > total {
					return
				}
				body := fmt.Appendf(nil, `{"type":"job.done","data":{"n":%d}}`, n)
				id, err := client.Send(ctx, 0, fmt.Sprintf("crash-%d", n), body)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ackedIDs[id] = true
				mu.Unlock()
				acked.Add(1)
			}
		}()
	}
	for _, killAt := range []int64{150, 400} {
		for acked.Load() < killAt {
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatal("load stalled before the kill")
			case <-time.After(2 * time.Millisecond):
			}
		}
		if err := c.Kill(0); err != nil {
			t.Fatal(err)
		}
		t.Logf("SIGKILL after %d acknowledged", acked.Load())
		if err := c.Start(0); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(ackedIDs) != total {
		t.Fatalf("%d distinct message ids acknowledged for %d idempotency keys", len(ackedIDs), total)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		for id := range ackedIDs {
			if _, ok := rc.Delivered(id); !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never delivered", missing, total)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	_, requests, dups, _ := rc.Counts()
	t.Logf("all %d acknowledged messages delivered; %d requests, %d ids delivered more than once", total, requests, dups)
}
