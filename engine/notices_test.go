package engine

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// operator registers a receiver as an endpoint of NoticeTenant subscribed
// to types, and returns it with a verifier of its signatures.
func operator(t *testing.T, e *Engine, types ...string) (*receiver, *signer.Verifier) {
	t.Helper()
	rc := newReceiver(t, nil)
	ep := mustCreateEndpoint(t, e, EndpointInput{Tenant: NoticeTenant, URL: rc.URL, EventTypes: types})
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{ep.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	return rc, v
}

// event is an operational event as the operator's receiver got it.
type event struct {
	Type string `json:"type"`
	Data Notice `json:"data"`
}

// waitEvent waits for the n-th (1-based) request to rc, checks its
// signature and returns its event.
func waitEvent(t *testing.T, rc *receiver, v *signer.Verifier, n int) event {
	t.Helper()
	r := waitRequests(t, rc, n)[n-1]
	if err := v.Verify(r.Header, r.Body); err != nil {
		t.Fatalf("operational event not signed by the endpoint's secret: %v", err)
	}
	var ev event
	if err := json.Unmarshal(r.Body, &ev); err != nil {
		t.Fatalf("event body %s: %v", r.Body, err)
	}
	return ev
}

func TestGoneSendsEndpointDisabledAndExhausted(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond))
	ops, v := operator(t, e, EventEndpointDisabled)
	exhausted, vx := operator(t, e, EventAttemptExhausted)
	gone := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	ep := mustCreateEndpoint(t, e, EndpointInput{Tenant: "acme", URL: gone.URL})
	msg := mustEnqueue(t, e, MessageInput{Tenant: "acme", Type: "job.done"})

	ev := waitEvent(t, ops, v, 1)
	got := ev.Data
	if ev.Type != EventEndpointDisabled || got.Tenant != "acme" || got.EndpointID != ep.ID ||
		got.State != string(StateDisabledFailing) || got.Reason != store.ReasonGone || got.At.IsZero() {
		t.Fatalf("endpoint.disabled event %+v", ev)
	}
	xev := waitEvent(t, exhausted, vx, 1)
	x := xev.Data
	if xev.Type != EventAttemptExhausted || x.Tenant != "acme" || x.EndpointID != ep.ID || x.MessageID != msg.ID ||
		x.DeliveryID == "" || x.LastStatusCode != 410 || x.AttemptCount != 1 || x.Reason != store.ReasonGone {
		t.Fatalf("message.attempt.exhausted event %+v", xev)
	}
	view, err := e.Endpoint(ctxb, "acme", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if view.DisabledReason != store.ReasonGone || view.DisabledAt == nil || !view.DisabledAt.Equal(got.At) || view.Breaker != BreakerClosed {
		t.Fatalf("endpoint view %+v", view)
	}
}

func TestExhaustedScheduleSendsAnEvent(t *testing.T) {
	t.Parallel()
	// Retries far apart next to how long an outcome may wait for company
	// (outcomeLinger), so each is made inside the window.
	e := openEngine(t, withSchedule(200*time.Millisecond, 200*time.Millisecond))
	ops, v := operator(t, e, EventAttemptExhausted)
	failing := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	// A failure in the operator's own tenant makes no event: no loop.
	mustCreateEndpoint(t, e, EndpointInput{Tenant: NoticeTenant, URL: failing.URL, EventTypes: []string{"own"}})
	own := mustEnqueue(t, e, MessageInput{Tenant: NoticeTenant, Type: "own"})
	waitTenantStatus(t, e, NoticeTenant, own.ID, "failed")

	ep := mustCreateEndpoint(t, e, EndpointInput{URL: failing.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	waitStatus(t, e, msg.ID, "failed")
	ev := waitEvent(t, ops, v, 1)
	if ev.Type != EventAttemptExhausted || ev.Data.Tenant != DefaultTenant || ev.Data.EndpointID != ep.ID || ev.Data.MessageID != msg.ID ||
		ev.Data.AttemptCount != 3 || ev.Data.LastStatusCode != 500 || !strings.Contains(ev.Data.Reason, "exhausted") {
		t.Fatalf("event %+v (the first the operator got: none about its own tenant)", ev)
	}
}

// TestBreakerEvents commits outcomes that open and close a breaker, as the
// deliverer does, and checks the events and the endpoint view.
func TestBreakerEvents(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(time.Hour))
	ops, v := operator(t, e, EventBreakerOpened, EventBreakerClosed)
	hanging := newHangingReceiver(t)
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: hanging.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	waitRequests(t, hanging, 1) // its outcome, when it ends, is a duplicate of ours
	m := waitStatus(t, e, msg.ID, "pending")
	dlv := m.Deliveries[0].ID

	at := time.Now().UTC().Truncate(time.Second)
	commit := func(o store.Outcome) {
		t.Helper()
		o.DeliveryID = dlv
		if _, err := e.w.commit(ctxb, store.Command{Outcome: &o}); err != nil {
			t.Fatal(err)
		}
	}
	commit(store.Outcome{Attempt: 1, At: at.UnixNano(), StatusCode: 500, Result: store.ResultRetry,
		NextAttemptAt: at.Add(time.Hour).UnixNano(), OpenBreaker: true})
	ev := waitEvent(t, ops, v, 1)
	if ev.Type != EventBreakerOpened || ev.Data.EndpointID != ep.ID || !ev.Data.At.Equal(at) || ev.Data.State != string(StateEnabled) ||
		ev.Data.Reason != "1 attempt in a row failed since "+at.Format(time.RFC3339) {
		t.Fatalf("breaker_opened event %+v", ev)
	}
	view, err := e.Endpoint(ctxb, "", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if view.Breaker != BreakerOpen || view.BreakerSince == nil || !view.BreakerSince.Equal(at) || view.FailingSince == nil {
		t.Fatalf("endpoint view with an open breaker: %+v", view)
	}
	commit(store.Outcome{Attempt: 2, At: at.Add(time.Second).UnixNano(), StatusCode: 200, Result: store.ResultSucceeded})
	if ev := waitEvent(t, ops, v, 2); ev.Type != EventBreakerClosed || ev.Data.EndpointID != ep.ID {
		t.Fatalf("breaker_closed event %+v", ev)
	}
	if view, err = e.Endpoint(ctxb, "", ep.ID); err != nil || view.Breaker != BreakerClosed || view.BreakerSince != nil || view.FailingSince != nil {
		t.Fatalf("endpoint view after a success: %+v, %v", view, err)
	}
}

func TestEnableWithRecoverSince(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(20*time.Millisecond))
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	other := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL, EventTypes: []string{"a"}})
	mustCreateEndpoint(t, e, EndpointInput{URL: other.URL, EventTypes: []string{"b"}})
	since := time.Now().Add(-time.Second)
	failed := mustEnqueue(t, e, MessageInput{Type: "a"})
	otherFailed := mustEnqueue(t, e, MessageInput{Type: "b"})
	waitStatus(t, e, failed.ID, "failed")
	waitStatus(t, e, otherFailed.ID, "failed")

	disabled := StateDisabled
	if _, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{State: &disabled}); err != nil {
		t.Fatal(err)
	}
	enabled := StateEnabled
	if _, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{RecoverSince: &since}); err == nil {
		t.Fatal("recover_since without enabling was accepted")
	}
	future := time.Now().Add(time.Hour)
	if _, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{State: &enabled, RecoverSince: &future}); err == nil {
		t.Fatal("recover_since in the future was accepted")
	}
	view, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{State: &enabled, RecoverSince: &since})
	if err != nil {
		t.Fatal(err)
	}
	if view.State != StateEnabled || view.DisabledReason != "" || view.DisabledAt != nil || view.FailingSince != nil {
		t.Fatalf("endpoint enabled again: %+v", view)
	}
	waitStatus(t, e, failed.ID, "succeeded")
	// Another endpoint's failed delivery stays failed.
	if m, err := e.Message(ctxb, "", otherFailed.ID); err != nil || m.Status != StatusFailed || m.Deliveries[0].AttemptCount != 2 {
		t.Fatalf("another endpoint's message: %+v, %v", m, err)
	}
}
