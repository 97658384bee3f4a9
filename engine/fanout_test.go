package engine

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald/signer"
)

func TestIdempotencyKeyCreatesOneMessage(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	rc := newReceiver(t, nil)
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})

	in := MessageInput{Type: "job.done", Data: json.RawMessage(`{"job":1}`), IdempotencyKey: "job-1-done"}
	first, created, err := e.Enqueue(ctxb, in)
	if err != nil || !created {
		t.Fatalf("first Enqueue = %v, %v", created, err)
	}
	// Concurrent repeats race each other and the first message's delivery.
	const repeats = 8
	var wg sync.WaitGroup
	ids := make([]string, repeats)
	for i := range repeats {
		wg.Go(func() {
			m, created, err := e.Enqueue(ctxb, in)
			if err != nil || created {
				t.Errorf("repeat Enqueue = created %v, %v; want the first message", created, err)
				return
			}
			ids[i] = m.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != first.ID {
			t.Fatalf("repeat returned %s, want %s", id, first.ID)
		}
	}
	waitStatus(t, e, first.ID, "succeeded")
	again, created, err := e.Enqueue(ctxb, in)
	if err != nil || created || again.ID != first.ID || again.Status != "succeeded" {
		t.Fatalf("Enqueue after delivery = %+v, created %v, %v; want the first message, succeeded", again, created, err)
	}
	if n := rc.count(); n != 1 {
		t.Fatalf("receiver got %d requests for one idempotency key, want 1", n)
	}

	other := mustEnqueue(t, e, MessageInput{Type: "job.done", Data: in.Data, IdempotencyKey: "job-2-done"})
	if other.ID == first.ID {
		t.Fatal("a different key returned the same message")
	}
	waitStatus(t, e, other.ID, "succeeded")
	msgs, _, err := e.ListMessages(ctxb, ListOptions{})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("ListMessages = %d messages, %v; want 2", len(msgs), err)
	}
	if n := rc.count(); n != 2 {
		t.Fatalf("receiver got %d requests for two keys, want 2", n)
	}
}

func TestFanOutFollowsEventTypeFilters(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	recvA, recvB, recvAll, recvOff := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	mustCreateEndpoint(t, e, EndpointInput{URL: recvA.URL, EventTypes: []string{"a"}})
	mustCreateEndpoint(t, e, EndpointInput{URL: recvB.URL, EventTypes: []string{"b"}})
	mustCreateEndpoint(t, e, EndpointInput{URL: recvAll.URL})
	off := mustCreateEndpoint(t, e, EndpointInput{URL: recvOff.URL})
	disabled := StateDisabled
	if ep, err := e.UpdateEndpoint(ctxb, "", off.ID, EndpointUpdate{State: &disabled}); err != nil || ep.State != StateDisabled {
		t.Fatalf("UpdateEndpoint(disable) = %+v, %v", ep, err)
	}

	msgA := mustEnqueue(t, e, MessageInput{Type: "a"})
	msgB := mustEnqueue(t, e, MessageInput{Type: "b"})
	msgC := mustEnqueue(t, e, MessageInput{Type: "c"})
	for _, id := range []string{msgA.ID, msgB.ID, msgC.ID} {
		waitStatus(t, e, id, "succeeded")
	}

	want := map[*receiver][]string{
		recvA:   {msgA.ID},
		recvB:   {msgB.ID},
		recvAll: {msgA.ID, msgB.ID, msgC.ID},
		recvOff: nil,
	}
	names := map[*receiver]string{recvA: "subscribed to a", recvB: "subscribed to b", recvAll: "subscribed to all", recvOff: "disabled"}
	byID := map[string][]received{} // every request for a message, across receivers
	for rc, ids := range want {
		var got []string
		for _, r := range rc.requests() {
			id := r.Header.Get("webhook-id")
			got = append(got, id)
			byID[id] = append(byID[id], r)
		}
		slices.Sort(got)
		slices.Sort(ids)
		if !slices.Equal(got, ids) {
			t.Errorf("endpoint %s got %v, want %v", names[rc], got, ids)
		}
	}
	// Each endpoint's copy carries the message id and the same envelope.
	for id, reqs := range byID {
		for _, r := range reqs[1:] {
			if string(r.Body) != string(reqs[0].Body) {
				t.Errorf("message %s: endpoints got different bodies", id)
			}
		}
	}
	if len(byID[msgA.ID]) != 2 || len(byID[msgB.ID]) != 2 || len(byID[msgC.ID]) != 1 {
		t.Fatalf("requests per message: a %d, b %d, c %d; want 2, 2, 1", len(byID[msgA.ID]), len(byID[msgB.ID]), len(byID[msgC.ID]))
	}

	// Ping goes to the one endpoint named, whatever its filter.
	ping, err := e.Ping(ctxb, "", mustEndpointID(t, e, recvB.URL))
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, ping.ID, "succeeded")
	reqs := recvB.requests()
	last := reqs[len(reqs)-1]
	if last.Header.Get("webhook-id") != ping.ID || !strings.Contains(string(last.Body), `"type":"webhook.ping"`) {
		t.Fatalf("ping request = %s %s", last.Header.Get("webhook-id"), last.Body)
	}
	if recvA.count() != 1 || recvAll.count() != 3 {
		t.Fatalf("ping reached other endpoints: a %d, all %d requests", recvA.count(), recvAll.count())
	}
}

// mustEndpointID finds the endpoint registered for url.
func mustEndpointID(t *testing.T, e *Engine, url string) string {
	t.Helper()
	eps, err := e.Endpoints(ctxb, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if ep.URL == url {
			return ep.ID
		}
	}
	t.Fatalf("no endpoint for %s", url)
	return ""
}

// verifyToken checks one signature token of a request against one secret.
func verifyToken(t *testing.T, r received, token, secret string) error {
	t.Helper()
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	return v.VerifyValues(r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), token, r.Body)
}

func TestRotateSecretSignsWithBothUntilRevoked(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	rc := newReceiver(t, nil)
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	old := ep.Secret

	send := func() received {
		t.Helper()
		m := mustEnqueue(t, e, MessageInput{Type: "job.done"})
		waitStatus(t, e, m.ID, "succeeded")
		for _, r := range rc.requests() {
			if r.Header.Get("webhook-id") == m.ID {
				return r
			}
		}
		t.Fatalf("receiver has no request for %s", m.ID)
		return received{}
	}
	tokens := func(r received) []string { return strings.Split(r.Header.Get("webhook-signature"), " ") }

	if toks := tokens(send()); len(toks) != 1 {
		t.Fatalf("before rotation: %d tokens, want 1", len(toks))
	}

	fresh, err := e.RotateSecret(ctxb, "", ep.ID, false)
	if err != nil || !strings.HasPrefix(fresh, signer.SecretPrefix) || fresh == old {
		t.Fatalf("RotateSecret = %q, %v", fresh, err)
	}
	if got, _ := e.Endpoint(ctxb, "", ep.ID); got.Secret == fresh || !strings.HasPrefix(fresh, strings.TrimSuffix(got.Secret, "…")) {
		t.Fatalf("Endpoint shows secret %q: want the new secret, truncated", got.Secret)
	}
	r := send()
	toks := tokens(r)
	if len(toks) != 2 {
		t.Fatalf("during rotation: signature %q, want two v1 tokens", r.Header.Get("webhook-signature"))
	}
	for i, secret := range []string{fresh, old} {
		if !strings.HasPrefix(toks[i], "v1,") {
			t.Fatalf("token %d = %q, want v1", i, toks[i])
		}
		if err := verifyToken(t, r, toks[i], secret); err != nil {
			t.Errorf("token %d does not verify with its secret: %v", i, err)
		}
		other := []string{old, fresh}[i]
		if err := verifyToken(t, r, toks[i], other); !errors.Is(err, signer.ErrNoMatchingSignature) {
			t.Errorf("token %d verifies with the wrong secret: %v", i, err)
		}
	}

	newest, err := e.RotateSecret(ctxb, "", ep.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	r = send()
	if toks := tokens(r); len(toks) != 1 {
		t.Fatalf("after immediate revoke: signature %q, want one token", r.Header.Get("webhook-signature"))
	}
	if err := verifyToken(t, r, r.Header.Get("webhook-signature"), newest); err != nil {
		t.Fatalf("after revoke the token does not verify with the newest secret: %v", err)
	}
	for _, revoked := range []string{old, fresh} {
		if err := verifyToken(t, r, r.Header.Get("webhook-signature"), revoked); err == nil {
			t.Fatal("after revoke a revoked secret still verifies")
		}
	}
	if _, err := e.RotateSecret(ctxb, "", "ep_missing", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RotateSecret(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestEnqueueValidatesInput(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	big := `{"x":"` + strings.Repeat("a", MaxPayloadBytes) + `"}`
	for _, tc := range []struct {
		name  string
		in    MessageInput
		field string
	}{
		{"empty type", MessageInput{Data: []byte(`{}`)}, "type"},
		{"bad type", MessageInput{Type: "a b", Data: []byte(`{}`)}, "type"},
		{"array data", MessageInput{Type: "a", Data: []byte(`[1]`)}, "data"},
		{"invalid json", MessageInput{Type: "a", Data: []byte(`{"a":`)}, "data"},
		{"too large", MessageInput{Type: "a", Data: []byte(big)}, "data"},
		{"metadata not object", MessageInput{Type: "a", Data: []byte(`{}`), URIs: []string{"http://127.0.0.1:1/"}, UserMetadata: []byte(`"x"`)}, "webhook_config.user_metadata"},
		{"empty uris", MessageInput{Type: "a", Data: []byte(`{}`), URIs: []string{}}, "webhook_config.uris"},
		{"too many uris", MessageInput{Type: "a", Data: []byte(`{}`), URIs: slices.Repeat([]string{"http://127.0.0.1:1/"}, 11)}, "webhook_config.uris"},
		{"long key", MessageInput{Type: "a", Data: []byte(`{}`), IdempotencyKey: strings.Repeat("k", 257)}, "idempotency_key"},
	} {
		_, _, err := e.Enqueue(ctxb, tc.in)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field {
			t.Errorf("%s: error = %v, want *InvalidError on %s", tc.name, err, tc.field)
		}
	}
	msgs, _, err := e.ListMessages(ctxb, ListOptions{})
	if err != nil || len(msgs) != 0 {
		t.Fatalf("invalid input created %d messages (%v)", len(msgs), err)
	}
}
