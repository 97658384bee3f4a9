package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// healthSetup opens a store that records the endpoint changes Apply
// reports, with endpoints a and b and n messages to both, all pending.
func healthSetup(t *testing.T, n int) (s *Store, msgs []string, changes *[]EndpointChange) {
	t.Helper()
	changes = new([]EndpointChange)
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true, OnApplied: func(a Applied) {
		*changes = append(*changes, a.Endpoints...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g := newIDs(23)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0), createEndpoint(epID("b"), "https://b.example", t0))
	for i := range n {
		m := g.next(t, "msg", t0+ms(int64(i)))
		msgs = append(msgs, m)
		runOK(t, s, fanOut(m, "x", t0+ms(int64(i))))
	}
	return s, msgs, changes
}

// rawEndpoint reads an endpoint's record bytes.
func rawEndpoint(t *testing.T, s *Store, id string) []byte {
	t.Helper()
	var raw []byte
	if err := s.view(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bEndpoints).Get([]byte(id)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return raw
}

func withBreaker(c Command, open, disable bool) Command {
	c.Outcome.OpenBreaker, c.Outcome.Disable = open, disable
	return c
}

func TestHealthOfAHealthyEndpointIsNotWritten(t *testing.T) {
	s, msgs, changes := healthSetup(t, 2)
	before := rawEndpoint(t, s, epID("a"))
	runOK(t, s, outcome(DeliveryID(msgs[0], 0), 1, t0+ms(10), ResultSucceeded, 200, 0))
	if after := rawEndpoint(t, s, epID("a")); !bytes.Equal(before, after) {
		t.Fatalf("a success to a healthy endpoint rewrote it:\n%s\n%s", before, after)
	}
	// A cancellation makes no attempt, and an override has no endpoint.
	runOK(t, s, outcome(DeliveryID(msgs[1], 0), 1, t0+ms(10), ResultCancelled, 0, 0))
	if after := rawEndpoint(t, s, epID("a")); !bytes.Equal(before, after) {
		t.Fatalf("a cancellation changed the endpoint's health: %+v", getEndpoint(t, s, epID("a")).Health)
	}
	if len(*changes) != 0 {
		t.Fatalf("changes reported: %+v", *changes)
	}
}

func TestHealthCountsFailuresAndASuccessResetsThem(t *testing.T) {
	s, msgs, changes := healthSetup(t, 2)
	d0, d1 := DeliveryID(msgs[0], 0), DeliveryID(msgs[1], 0)
	runOK(t, s, outcome(d0, 1, t0+ms(10), ResultRetry, 500, t0+ms(100)))
	runOK(t, s, outcome(d1, 1, t0+ms(20), ResultRetry, 0, t0+ms(100)))
	runOK(t, s, outcome(d0, 2, t0+ms(30), ResultFailed, 503, 0))
	ep := getEndpoint(t, s, epID("a"))
	if want := (EndpointHealth{FailingSince: t0 + ms(10), Failures: 3}); ep.Health != want || ep.State != StateEnabled {
		t.Fatalf("after three failures: %+v %s, want %+v", ep.Health, ep.State, want)
	}
	if ep.UpdatedAt != t0 {
		t.Fatalf("health changed UpdatedAt to %d", ep.UpdatedAt)
	}
	if h := getEndpoint(t, s, epID("b")).Health; h != (EndpointHealth{}) {
		t.Fatalf("another endpoint's health changed: %+v", h)
	}
	runOK(t, s, outcome(d1, 2, t0+ms(40), ResultSucceeded, 204, 0))
	if h := getEndpoint(t, s, epID("a")).Health; h != (EndpointHealth{}) {
		t.Fatalf("a success left %+v", h)
	}
	if len(*changes) != 0 {
		t.Fatalf("changes reported without a breaker: %+v", *changes)
	}
}

func TestBreakerOpensOnceAndASuccessClosesIt(t *testing.T) {
	s, msgs, changes := healthSetup(t, 3)
	d0, d1, d2 := DeliveryID(msgs[0], 0), DeliveryID(msgs[1], 0), DeliveryID(msgs[2], 0)
	runOK(t, s, outcome(d0, 1, t0+ms(10), ResultRetry, 500, t0+ms(100)))
	runOK(t, s, withBreaker(outcome(d1, 1, t0+ms(20), ResultRetry, 500, t0+ms(100)), true, false))
	runOK(t, s, withBreaker(outcome(d2, 1, t0+ms(30), ResultRetry, 500, t0+ms(100)), true, false)) // open already
	ep := getEndpoint(t, s, epID("a"))
	if want := (EndpointHealth{FailingSince: t0 + ms(10), Failures: 3, BreakerOpenedAt: t0 + ms(20)}); ep.Health != want {
		t.Fatalf("health %+v, want %+v", ep.Health, want)
	}
	opened := EndpointChange{Kind: ChangeBreakerOpened, Tenant: DefaultTenant, EndpointID: epID("a"), At: t0 + ms(20),
		State: StateEnabled, Reason: "2 attempts in a row failed since 2030-01-02T03:04:05Z"}
	if !slices.Equal(*changes, []EndpointChange{opened}) {
		t.Fatalf("changes %+v, want %+v", *changes, opened)
	}
	runOK(t, s, outcome(d0, 2, t0+ms(40), ResultSucceeded, 200, 0))
	if h := getEndpoint(t, s, epID("a")).Health; h != (EndpointHealth{}) {
		t.Fatalf("a success left %+v", h)
	}
	closed := EndpointChange{Kind: ChangeBreakerClosed, Tenant: DefaultTenant, EndpointID: epID("a"), At: t0 + ms(40),
		State: StateEnabled, Reason: "an attempt succeeded"}
	if !slices.Equal(*changes, []EndpointChange{opened, closed}) {
		t.Fatalf("changes %+v", *changes)
	}
}

func TestDisableAfterFailingTooLong(t *testing.T) {
	s, msgs, changes := healthSetup(t, 3)
	d0, d1 := DeliveryID(msgs[0], 0), DeliveryID(msgs[1], 0)
	runOK(t, s, outcome(d0, 1, t0, ResultRetry, 500, t0+ms(100)))
	at := t0 + ms(5*24*3600*1000+90_000) // 5 days and a minute and a half later
	runOK(t, s, withBreaker(outcome(d1, 1, at, ResultRetry, 500, at+ms(100)), false, true))

	ep := getEndpoint(t, s, epID("a"))
	reason := "every attempt failed for 5d0h1m: 2 in a row since 2030-01-02T03:04:05Z"
	if ep.State != StateDisabledFailing || ep.DisabledReason != reason || ep.DisabledAt != at || ep.UpdatedAt != at {
		t.Fatalf("endpoint %+v", ep)
	}
	for _, m := range msgs {
		d := getDelivery(t, s, DeliveryID(m, 0))
		if d.Status != StatusFailed || d.LastError != "endpoint disabled: "+reason {
			t.Fatalf("a's delivery after disabling: %+v", d)
		}
		if d := getDelivery(t, s, DeliveryID(m, 1)); d.Status != StatusPending {
			t.Fatalf("b's delivery: %+v", d)
		}
	}
	want := []EndpointChange{{Kind: ChangeDisabled, Tenant: DefaultTenant, EndpointID: epID("a"), At: at,
		State: StateDisabledFailing, Reason: reason}}
	if !slices.Equal(*changes, want) {
		t.Fatalf("changes %+v, want %+v", *changes, want)
	}
}

func TestGoneSaysWhyAndWhen(t *testing.T) {
	s, msgs, changes := healthSetup(t, 1)
	at := t0 + ms(10)
	runOK(t, s, outcome(DeliveryID(msgs[0], 0), 1, at, ResultGone, 410, 0))
	ep := getEndpoint(t, s, epID("a"))
	if ep.State != StateDisabledFailing || ep.DisabledReason != ReasonGone || ep.DisabledAt != at || ep.Health.Failures != 1 {
		t.Fatalf("endpoint after a 410: %+v", ep)
	}
	want := []EndpointChange{{Kind: ChangeDisabled, Tenant: DefaultTenant, EndpointID: epID("a"), At: at,
		State: StateDisabledFailing, Reason: ReasonGone}}
	if !slices.Equal(*changes, want) {
		t.Fatalf("changes %+v, want %+v", *changes, want)
	}
}

func TestOperatorDisablesAndEnablesAfresh(t *testing.T) {
	s, msgs, changes := healthSetup(t, 1)
	runOK(t, s, withBreaker(outcome(DeliveryID(msgs[0], 0), 1, t0+ms(10), ResultRetry, 500, t0+ms(100)), true, false))
	update := func(state string, at int64) {
		runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: at, State: ptr(state)}})
	}
	update(StateDisabled, t0+ms(20))
	ep := getEndpoint(t, s, epID("a"))
	if ep.State != StateDisabled || ep.DisabledReason != ReasonOperator || ep.DisabledAt != t0+ms(20) || !ep.Health.BreakerOpen() {
		t.Fatalf("endpoint disabled by an operator: %+v", ep)
	}
	update(StateEnabled, t0+ms(30))
	ep = getEndpoint(t, s, epID("a"))
	if ep.State != StateEnabled || ep.DisabledReason != "" || ep.DisabledAt != 0 || ep.Health != (EndpointHealth{}) {
		t.Fatalf("endpoint enabled again: %+v", ep)
	}
	var kinds []string
	for _, c := range *changes {
		kinds = append(kinds, c.Kind+":"+c.Reason)
	}
	want := []string{ChangeBreakerOpened + ":1 attempt in a row failed since 2030-01-02T03:04:05Z",
		ChangeDisabled + ":" + ReasonOperator, ChangeBreakerClosed + ":the endpoint was enabled"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("changes %q, want %q", kinds, want)
	}
}

func TestBreakerOnlyWithAFailure(t *testing.T) {
	s, msgs, _ := healthSetup(t, 1)
	for _, res := range []string{ResultSucceeded, ResultCancelled} {
		for _, c := range []Command{
			withBreaker(outcome(DeliveryID(msgs[0], 0), 1, t0, res, 200, 0), true, false),
			withBreaker(outcome(DeliveryID(msgs[0], 0), 1, t0, res, 200, 0), false, true),
		} {
			if r := run(t, s, c); invalidField(r[0].Err) != "outcome.result" {
				t.Fatalf("%s with open_breaker %v, disable %v: %v", res, c.Outcome.OpenBreaker, c.Outcome.Disable, r[0].Err)
			}
		}
	}
}

// TestRequeueOfAnEndpoint: a Requeue naming an endpoint re-queues its
// failed and cancelled deliveries in the window, and no other endpoint's.
func TestRequeueOfAnEndpoint(t *testing.T) {
	s, msgs, _ := healthSetup(t, 3)
	runOK(t, s,
		outcome(DeliveryID(msgs[0], 0), 1, t0+ms(10), ResultFailed, 500, 0),
		outcome(DeliveryID(msgs[1], 0), 1, t0+ms(10), ResultCancelled, 0, 0),
		outcome(DeliveryID(msgs[2], 1), 1, t0+ms(10), ResultFailed, 500, 0), // b's
	)
	res := runOK(t, s, Command{Requeue: &Requeue{Since: t0, Until: t0 + ms(1000), At: t0 + ms(50), EndpointID: epID("a")}})
	if res[0].Count != 2 {
		t.Fatalf("re-queued %d, want 2", res[0].Count)
	}
	for _, id := range []string{DeliveryID(msgs[0], 0), DeliveryID(msgs[1], 0)} {
		if d := getDelivery(t, s, id); d.Status != StatusPending || d.NextAttemptAt != t0+ms(50) {
			t.Fatalf("a's delivery %+v", d)
		}
	}
	if d := getDelivery(t, s, DeliveryID(msgs[2], 1)); d.Status != StatusFailed {
		t.Fatalf("b's failed delivery was re-queued: %+v", d)
	}
	r := run(t, s, Command{Requeue: &Requeue{Since: t0, At: t0 + ms(50), EndpointID: "ep_x"}})
	if invalidField(r[0].Err) != "requeue.endpoint_id" || errors.Is(r[0].Err, ErrNotFound) {
		t.Fatalf("a malformed endpoint id: %v", r[0].Err)
	}
}
