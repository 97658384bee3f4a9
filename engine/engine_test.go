package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/heraldhq/herald/signer"
)

func TestDeliversSignedMessageToEndpoint(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, nil)
	rc := newReceiver(t, nil)
	ep, err := e.CreateEndpoint(ctx, EndpointInput{URL: rc.URL})
	if err != nil {
		t.Fatal(err)
	}
	msg, created, err := e.Enqueue(ctx, MessageInput{Type: "batch.succeeded", Data: json.RawMessage(`{"batch":"b1"}`)})
	if err != nil || !created {
		t.Fatalf("Enqueue = %v, %v", created, err)
	}
	m := waitStatus(t, e, msg.ID, "succeeded")
	if len(m.Deliveries) != 1 || m.Deliveries[0].AttemptCount != 1 || m.Deliveries[0].EndpointID != ep.ID {
		t.Fatalf("deliveries = %+v", m.Deliveries)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{ep.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(reqs[0].Header, reqs[0].Body); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if got := reqs[0].Header.Get("webhook-id"); got != msg.ID {
		t.Fatalf("webhook-id = %q, want %q", got, msg.ID)
	}
	var env struct {
		Type    string          `json:"type"`
		Version string          `json:"version"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(reqs[0].Body, &env); err != nil || env.Type != "batch.succeeded" || env.Version != "v1" || string(env.Data) != `{"batch":"b1"}` {
		t.Fatalf("envelope = %s (%v)", reqs[0].Body, err)
	}
}
