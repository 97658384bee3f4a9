package engine

import (
	"testing"
	"time"
)

// An endpoint's ring counts its latest RecentWindow attempts and keeps its
// last error; the record forgets the least recently attempted endpoint
// first, and ignores cancelled attempts and override URIs.
func TestRecentOutcomes(t *testing.T) {
	r := newRecentOutcomes(2)
	a := recentKey{tenant: "acme", endpoint: "ep_a"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fail := AttemptEvent{Tenant: "acme", EndpointID: "ep_a", Status: StatusPending, StatusCode: 503, Error: "HTTP 503", At: at}
	r.observe([]AttemptEvent{fail})
	for range RecentWindow - 1 {
		r.observe([]AttemptEvent{{Tenant: "acme", EndpointID: "ep_a", Status: StatusSucceeded}})
	}
	got := r.get(a)
	if got.Attempts != RecentWindow || got.Succeeded != RecentWindow-1 || got.LastError != "HTTP 503" || got.LastStatusCode != 503 || !got.LastErrorAt.Equal(at) {
		t.Fatalf("after a full window: %+v", got)
	}
	// The next success pushes the failure out of the window; the last
	// error stays.
	r.observe([]AttemptEvent{{Tenant: "acme", EndpointID: "ep_a", Status: StatusSucceeded},
		{Tenant: "acme", EndpointID: "ep_a", Status: StatusCancelled, Error: "endpoint deleted or disabled"},
		{Tenant: "acme", URL: "http://127.0.0.1:9/", Status: StatusFailed, Error: "refused"}})
	got = r.get(a)
	if got.Attempts != RecentWindow || got.Succeeded != RecentWindow || got.SuccessRate() != 1 || got.LastError != "HTTP 503" {
		t.Fatalf("after the window moved: %+v", got)
	}

	// ep_b, then ep_c: ep_a is the least recently attempted and goes.
	r.observe([]AttemptEvent{{Tenant: "acme", EndpointID: "ep_b", Status: StatusFailed, Error: "refused"}})
	r.observe([]AttemptEvent{{Tenant: "acme", EndpointID: "ep_a", Status: StatusSucceeded}})
	r.observe([]AttemptEvent{{Tenant: "other", EndpointID: "ep_c", Status: StatusSucceeded}})
	if got := r.get(recentKey{tenant: "acme", endpoint: "ep_b"}); got.Attempts != 0 {
		t.Errorf("ep_b was kept: %+v", got)
	}
	if got := r.get(a); got.Attempts != RecentWindow {
		t.Errorf("ep_a was forgotten: %+v", got)
	}
	if got := r.get(recentKey{tenant: "other", endpoint: "ep_c"}); got.Attempts != 1 || got.SuccessRate() != 1 || got.LastError != "" {
		t.Errorf("ep_c: %+v", got)
	}
	if len(r.byKey) != 2 || r.order.Len() != 2 {
		t.Errorf("%d endpoints kept, want 2", len(r.byKey))
	}
}
