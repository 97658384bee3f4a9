package engine

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/store"
)

// These tests shrink a batch size, so they do not run in parallel (the
// parallel tests of the package start once they are done).

// smallBatch sets *batch to n for the test.
func smallBatch(t *testing.T, batch *int, n int) {
	old := *batch
	*batch = n
	t.Cleanup(func() { *batch = old })
}

// Recover of a window wider than a batch goes on in further commands and
// re-queues every failed delivery once.
func TestRecoverInBatches(t *testing.T) {
	smallBatch(t, &requeueBatch, 2)
	e := openEngine(t, withSchedule(50*time.Millisecond))
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	var msgs []*Message
	for range 5 {
		msgs = append(msgs, mustEnqueue(t, e, MessageInput{Type: "job.done"}))
	}
	for _, m := range msgs {
		waitStatus(t, e, m.ID, "failed")
	}
	healthy.Store(true)

	n, err := e.Recover(ctxb, "", msgs[0].CreatedAt, time.Time{})
	if err != nil || n.Requeued != 5 || n.Reason != "" {
		t.Fatalf("Recover = %+v, %v; want 5 re-queued", n, err)
	}
	for _, m := range msgs {
		got := waitStatus(t, e, m.ID, "succeeded")
		if d := got.Deliveries[0]; d.AttemptCount != 3 {
			t.Fatalf("delivery of %s made %d attempts, want 2 failed and 1 after the recover", m.ID, d.AttemptCount)
		}
	}
	if n, err := e.Recover(ctxb, "", msgs[0].CreatedAt, time.Time{}); err != nil || n.Requeued != 0 {
		t.Fatalf("second Recover = %+v, %v; want 0", n, err)
	}
}

// Disabling or deleting an endpoint with more pending deliveries than one
// command ends cancels them all, in bounded commands, before the call
// returns.
func TestDisableEndsPendingInBatches(t *testing.T) {
	smallBatch(t, &endPendingBatch, 40)
	for _, del := range []bool{false, true} {
		t.Run(map[bool]string{false: "disable", true: "delete"}[del], func(t *testing.T) { testEndPendingInBatches(t, del) })
	}
}

func testEndPendingInBatches(t *testing.T, del bool) {
	e := openEngine(t, withSchedule(time.Hour))
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	const total = store.MaxEndOnDisable + 100
	var wg sync.WaitGroup
	var failed atomic.Int32
	for g := range 16 {
		wg.Go(func() {
			for i := g; i < total; i += 16 {
				if _, _, err := e.Enqueue(ctxb, MessageInput{Type: "job.done", Data: []byte(`{}`)}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d enqueues failed", failed.Load())
	}
	// Each delivery made its first attempt and waits an hour for the
	// next: the deliverer leaves them alone.
	waitFor(t, 30*time.Second, "every first attempt recorded", func() bool {
		heads, err := e.store.QueueHeads("", 2) // one endpoint: one queue, its earliest delivery
		return err == nil && len(heads) == 1 && time.Unix(0, heads[0].At).After(time.Now().Add(30*time.Minute))
	})

	if del {
		if err := e.DeleteEndpoint(ctxb, "", ep.ID); err != nil {
			t.Fatal(err)
		}
	} else if _, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{State: ptrTo(StateDisabled)}); err != nil {
		t.Fatal(err)
	}
	if more, err := e.store.HasPending(ep.ID); err != nil || more {
		t.Fatalf("pending deliveries left after the disable: %v, %v", more, err)
	}
	msgs, next, err := e.ListMessages(ctxb, ListOptions{Status: StatusPending})
	if err != nil || len(msgs) != 0 || next != "" {
		t.Fatalf("pending messages after the disable: %d, next %q, %v", len(msgs), next, err)
	}
	tc, err := e.store.Tenant(DefaultTenant)
	if err != nil || tc.Pending != 0 || tc.Messages != total {
		t.Fatalf("tenant after the disable: %+v, %v", tc, err)
	}
}

func ptrTo[T any](v T) *T { return &v }
