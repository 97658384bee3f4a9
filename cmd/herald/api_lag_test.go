package main

import (
	"strings"
	"testing"
)

// TestAPICatchingUpNode checks what a node too far behind the leader
// answers: every /v1 request 503 unavailable with Retry-After, at once and
// before any token is read (a tenant token created a moment ago may not be
// known there yet), saying so; GET /v1/cluster, health, metrics and the
// JWKS still answer. That a real node rejoining after a long absence
// counts as catching up is tested on an in-process cluster in package
// engine (TestClusterCatchingUpNodeAnswersAtOnce).
func TestAPICatchingUpNode(t *testing.T) {
	s := startAPI(t, apiOptions{token: "admin-token"})
	s.api.catchingUp = func() (uint64, bool) { return 5000, true }
	const want = "this node is catching up with the leader (5000 entries behind); retry on another node"
	for _, c := range []struct {
		method, path, body string
		headers            []string
	}{
		{"GET", "/v1/messages", "", nil},
		{"POST", "/v1/messages", `{"type": "a.b", "data": {}}`, nil},
		{"GET", "/v1/tenants/acme/endpoints", "", []string{"Authorization", "Bearer htk_unknown"}},
		{"GET", "/v1/backup", "", nil},
	} {
		r := expect(t, s.call(t, c.method, c.path, c.body, c.headers...), 503)
		if code, msg := r.errCode(t), r.errMessage(t); code != "unavailable" || msg != want {
			t.Errorf("%s %s: %s %q, want unavailable %q", c.method, c.path, code, msg, want)
		}
		if ra := r.header.Get("Retry-After"); ra != "1" {
			t.Errorf("%s %s: Retry-After %q, want 1", c.method, c.path, ra)
		}
	}
	expect(t, s.call(t, "GET", "/v1/cluster", ""), 200)
	expect(t, s.call(t, "GET", "/healthz", ""), 200)
	expect(t, s.call(t, "GET", "/.well-known/jwks.json", ""), 200)
	m := expect(t, s.call(t, "GET", "/metrics", ""), 200)
	if !strings.Contains(string(m.body), `herald_http_requests_total{code="503",method="POST",route="POST /v1/messages"} 1`) {
		t.Error("the 503 is not counted in the metrics")
	}
	if !strings.Contains(string(m.body), "herald_catching_up 0") { // the real node, which leads
		t.Error("metrics lack herald_catching_up 0")
	}

	s.api.catchingUp = func() (uint64, bool) { return 3, false }
	expect(t, s.call(t, "GET", "/v1/messages", ""), 200)
	expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`), 202)
}
