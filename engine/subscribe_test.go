package engine

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// Subscriptions on any node see the attempts the leader made, once
// committed: in order, filtered by tenant or message, closed with their
// context; a subscriber that does not read loses events (counted), never
// delays a delivery.
func TestSubscribe(t *testing.T) {
	c := newTestCluster(t, 3, withSchedule(100*time.Millisecond))
	lead := c.leader()
	follower := (lead + 1) % 3
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable) // acme's first attempt fails
		}
	})
	ok := newReceiver(t, nil)
	ctx, cancel := context.WithCancel(ctxb)
	defer cancel()
	acme, err := c.engines[follower].Subscribe(ctx, SubscribeOptions{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := c.engines[lead].Subscribe(ctx, SubscribeOptions{Buffer: 1}) // never read
	if err != nil {
		t.Fatal(err)
	}
	other := mustEnqueue(t, c.engines[lead], MessageInput{Tenant: "globex", Type: "job.done", URIs: []string{ok.URL}})
	msg := mustEnqueue(t, c.engines[lead], MessageInput{Tenant: "acme", Type: "job.done", URIs: []string{rc.URL}})
	one, err := c.engines[follower].Subscribe(ctx, SubscribeOptions{MessageID: msg.ID})
	if err != nil {
		t.Fatal(err)
	}

	next := func(s *Subscription) AttemptEvent {
		t.Helper()
		select {
		case ev := <-s.C:
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no event")
			return AttemptEvent{}
		}
	}
	var got []AttemptEvent
	for len(got) == 0 || got[len(got)-1].Status == StatusPending {
		got = append(got, next(acme))
	}
	for i, ev := range got {
		if ev.Tenant != "acme" || ev.MessageID != msg.ID || ev.Attempt != i+1 || ev.URL != rc.URL || ev.At.IsZero() {
			t.Errorf("acme event %d = %+v", i, ev)
		}
	}
	if len(got) != 2 || got[0].StatusCode != http.StatusServiceUnavailable || got[1].Status != StatusSucceeded {
		t.Errorf("acme events %+v: want a failure, then a success", got)
	}
	// Subscribed after the first attempt perhaps, but before the second.
	if ev := next(one); ev.MessageID != msg.ID {
		t.Errorf("message subscription got %+v", ev)
	}
	waitTenantStatus(t, c.engines[lead], "globex", other.ID, "succeeded")
	waitFor(t, 10*time.Second, "the unread subscription to drop events", func() bool { return stuck.Dropped() > 0 })

	cancel()
	waitFor(t, 10*time.Second, "the channel to close", func() bool {
		for {
			select {
			case _, ok := <-one.C:
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
}
