package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

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

// TestEnvelopeIsTheDocumentedJSON checks the hand-assembled envelope
// against encoding/json for payloads with whitespace, escapes and nesting.
func TestEnvelopeIsTheDocumentedJSON(t *testing.T) {
	at := time.Date(2026, 11, 26, 20, 41, 7, 123456789, time.UTC)
	for _, tc := range []struct{ data, metadata string }{
		{`{}`, ``},
		{` {"a": [1, {"b": "\u2028é\"<>"}],` + "\n" + `"c": null} `, `{"run":"r1"}`},
	} {
		raw := envelope("batch.succeeded", at, json.RawMessage(tc.data), json.RawMessage(tc.metadata))
		var got struct {
			Type         string          `json:"type"`
			Version      string          `json:"version"`
			Timestamp    time.Time       `json:"timestamp"`
			Data         json.RawMessage `json:"data"`
			UserMetadata json.RawMessage `json:"user_metadata"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("envelope %s is not JSON: %v", raw, err)
		}
		if got.Type != "batch.succeeded" || got.Version != "v1" || !got.Timestamp.Equal(at) {
			t.Fatalf("envelope %s: type/version/timestamp wrong", raw)
		}
		if !jsonEqual(t, got.Data, tc.data) || (tc.metadata != "") != (got.UserMetadata != nil) {
			t.Fatalf("envelope %s does not carry data %s and metadata %q", raw, tc.data, tc.metadata)
		}
	}
}

func jsonEqual(t *testing.T, a json.RawMessage, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestStatsShowTheBacklog checks that Stats counts a delivery waiting for
// its retry, and no longer once it has succeeded.
func TestStatsShowTheBacklog(t *testing.T) {
	ctx := context.Background()
	e := openEngine(t, func(c *Config) { c.RetrySchedule = []time.Duration{500 * time.Millisecond} })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	if _, err := e.CreateEndpoint(ctx, EndpointInput{URL: rc.URL}); err != nil {
		t.Fatal(err)
	}
	msg, _, err := e.Enqueue(ctx, MessageInput{Type: "job.done", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the retry to be scheduled", func() bool { return rc.count() == 1 && e.Stats().Scheduled == 1 })
	if st := e.Stats(); st.AppliedIndex == 0 || st.StoreBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	waitStatus(t, e, msg.ID, "succeeded")
	waitFor(t, 10*time.Second, "an empty schedule", func() bool { return e.Stats().Scheduled == 0 && e.Stats().InFlight == 0 })
}
