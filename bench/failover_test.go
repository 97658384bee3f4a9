package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFailoverLosesNoAcknowledgedMessage runs three real herald serve
// processes under concurrent load written through every node, SIGKILLs the
// leader mid-load, restarts it, and checks that every acknowledged message
// is delivered. It reports duplicates and how long the cluster took to
// elect a new leader and resume deliveries.
func TestFailoverLosesNoAcknowledgedMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rc, err := NewReceiver(ReceiverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c, err := StartCluster(ctx, ClusterConfig{Binary: heraldBin, Nodes: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	logOnFailure(t, c)
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	client := NewClient(urls, "", 16)
	if _, _, err := client.CreateEndpoint(ctx, rc.URL()); err != nil {
		t.Fatal(err)
	}

	const total, workers, killAt = 900, 12, 300
	var next, acked atomic.Int64
	var mu sync.Mutex
	ackedIDs := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > total {
					return
				}
				body := fmt.Appendf(nil, `{"type":"job.done","data":{"n":%d}}`, n)
				id, err := client.Send(ctx, w, fmt.Sprintf("failover-%d", n), body)
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
	for acked.Load() < killAt {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("load stalled before the kill")
		case <-time.After(2 * time.Millisecond):
		}
	}
	lead, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := c.Kill(lead); err != nil {
		t.Fatal(err)
	}
	newLead, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elected := time.Since(killed)
	t.Logf("SIGKILL of leader %s after %d acknowledged; %s leads after %v", c.Nodes[lead].ID, acked.Load(), c.Nodes[newLead].ID, elected.Round(time.Millisecond))
	if err := c.Start(lead); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, lead); err != nil {
		t.Fatal(err)
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
	resumed := time.Duration(-1)
	for id := range ackedIDs {
		if at, _ := rc.Delivered(id); at.After(killed) && (resumed < 0 || at.Sub(killed) < resumed) {
			resumed = at.Sub(killed)
		}
	}
	_, requests, dups, _ := rc.Counts()
	t.Logf("all %d acknowledged messages delivered; first delivery %v after the kill; %d requests, %d ids delivered more than once",
		total, resumed.Round(time.Millisecond), requests, dups)
}
