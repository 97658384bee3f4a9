package main

import (
	"net/http"
	"testing"
	"time"
)

// TestAPIEndpointHealth: a 410 disables an endpoint, which shows why and
// when; enabling it with recover_since re-queues what failed, under a
// tenant too.
func TestAPIEndpointHealth(t *testing.T) {
	s := startAPI(t, apiOptions{})
	rcv := newHook(t)
	rcv.setStatus(http.StatusGone)
	base := "/v1/tenants/acme"
	ep := expect(t, s.call(t, "POST", base+"/endpoints", `{"url": "`+rcv.URL+`"}`), 201).json(t)
	id := ep["id"].(string)
	if ep["breaker"] != "closed" || ep["disabled_reason"] != nil || ep["disabled_at"] != nil || ep["breaker_since"] != nil {
		t.Fatalf("new endpoint = %v", ep)
	}
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	msg := expect(t, s.call(t, "POST", base+"/messages", `{"type": "job.done", "data": {}}`), 202).json(t)
	msgID := msg["id"].(string)
	waitUntil(t, 10*time.Second, "the 410 to disable the endpoint", func() bool {
		return expect(t, s.call(t, "GET", base+"/endpoints/"+id, ""), 200).json(t)["state"] == "disabled_due_to_failed_deliveries"
	})
	got := expect(t, s.call(t, "GET", base+"/endpoints/"+id, ""), 200).json(t)
	if got["disabled_reason"] != "the endpoint answered 410 Gone" || got["breaker"] != "closed" {
		t.Fatalf("disabled endpoint = %v", got)
	}
	if _, err := time.Parse(time.RFC3339, got["disabled_at"].(string)); err != nil {
		t.Fatalf("disabled_at: %v", err)
	}
	if _, err := time.Parse(time.RFC3339, got["failing_since"].(string)); err != nil {
		t.Fatalf("failing_since: %v", err)
	}

	for body, code := range map[string]string{
		`{"state": "enabled", "recover_since": "yesterday"}`:            "invalid_argument",
		`{"recover_since": "` + since + `"}`:                            "invalid_argument",
		`{"state": "enabled", "recover_since": "2999-01-01T00:00:00Z"}`: "invalid_argument",
	} {
		if c := expect(t, s.call(t, "PATCH", base+"/endpoints/"+id, body), 400).errCode(t); c != code {
			t.Errorf("PATCH %s: code %q", body, c)
		}
	}
	rcv.setStatus(0)
	up := expect(t, s.call(t, "PATCH", base+"/endpoints/"+id, `{"state": "enabled", "recover_since": "`+since+`"}`), 200).json(t)
	if up["state"] != "enabled" || up["disabled_reason"] != nil || up["disabled_at"] != nil || up["failing_since"] != nil {
		t.Fatalf("enabled endpoint = %v", up)
	}
	waitUntil(t, 10*time.Second, "the recovered message to succeed", func() bool {
		return expect(t, s.call(t, "GET", base+"/messages/"+msgID, ""), 200).json(t)["status"] == "succeeded"
	})
}
