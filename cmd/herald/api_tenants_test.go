package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// as returns a client of the same server that sends another bearer token
// ("" for none).
func (s *testAPI) as(token string) *testAPI {
	return &testAPI{Server: s.Server, e: s.e, api: s.api, token: token}
}

// ids returns the "id" of every element of a list answer's "data".
func ids(t *testing.T, r response) []string {
	t.Helper()
	data, ok := r.json(t)["data"].([]any)
	if !ok {
		t.Fatalf("no data list in %s", r.body)
	}
	out := []string{}
	for _, d := range data {
		out = append(out, d.(map[string]any)["id"].(string))
	}
	return out
}

// tenantInfo returns the tenant's entry of GET /v1/tenants, or nil.
func tenantInfo(t *testing.T, s *testAPI, tenant string) map[string]any {
	t.Helper()
	data, _ := expect(t, s.call(t, "GET", "/v1/tenants?limit=250", ""), 200).json(t)["data"].([]any)
	for _, d := range data {
		if m := d.(map[string]any); m["id"] == tenant {
			return m
		}
	}
	return nil
}

// waitStatus polls a message (at path) until its status is want.
func waitStatus(t *testing.T, s *testAPI, path, want string) map[string]any {
	t.Helper()
	var m map[string]any
	waitUntil(t, 10*time.Second, path+" "+want, func() bool {
		m = expect(t, s.call(t, "GET", path, ""), 200).json(t)
		return m["status"] == want
	})
	return m
}

// TestAPITenantIsolation: through the API, each tenant's endpoints,
// messages and idempotency keys are its own; the routes without a tenant
// are the tenant "default".
func TestAPITenantIsolation(t *testing.T) {
	s := startAPI(t, apiOptions{})
	rcvA, rcvB, rcvD := newHook(t), newHook(t), newHook(t)

	epA := expect(t, s.call(t, "POST", "/v1/tenants/a/endpoints", `{"url": "`+rcvA.URL+`"}`), 201).json(t)
	epB := expect(t, s.call(t, "POST", "/v1/tenants/b/endpoints", `{"url": "`+rcvB.URL+`"}`), 201).json(t)
	epD := expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "`+rcvD.URL+`"}`), 201).json(t)
	if epA["tenant"] != "a" || epB["tenant"] != "b" || epD["tenant"] != "default" {
		t.Fatalf("endpoint tenants: %v, %v, %v", epA["tenant"], epB["tenant"], epD["tenant"])
	}
	a, b, d := epA["id"].(string), epB["id"].(string), epD["id"].(string)

	// Lists show only the tenant's endpoints; /v1/tenants/default is /v1.
	for path, want := range map[string]string{
		"/v1/tenants/a/endpoints": a, "/v1/tenants/b/endpoints": b,
		"/v1/endpoints": d, "/v1/tenants/default/endpoints": d,
	} {
		if got := ids(t, expect(t, s.call(t, "GET", path, ""), 200)); len(got) != 1 || got[0] != want {
			t.Errorf("GET %s = %v, want [%s]", path, got, want)
		}
	}
	if got := ids(t, expect(t, s.call(t, "GET", "/v1/tenants/nobody/endpoints", ""), 200)); len(got) != 0 {
		t.Errorf("a tenant with nothing lists %v", got)
	}
	if got := expect(t, s.call(t, "GET", "/v1/tenants/a/endpoints/"+a, ""), 200).json(t); got["id"] != a || got["tenant"] != "a" {
		t.Errorf("GET a's endpoint = %v", got)
	}

	// Another tenant's endpoint is not found, by any route, and is left
	// untouched.
	for _, prefix := range []string{"/v1/tenants/b", "/v1", "/v1/tenants/default"} {
		for _, c := range []struct{ method, suffix, body string }{
			{"GET", "", ""},
			{"PATCH", "", `{"name": "stolen"}`},
			{"POST", "/rotate-secret", `{"revoke": "immediately"}`},
			{"POST", "/ping", ""},
			{"DELETE", "", ""},
		} {
			path := prefix + "/endpoints/" + a + c.suffix
			if r := s.call(t, c.method, path, c.body); r.status != 404 || r.errCode(t) != "not_found" {
				t.Errorf("%s %s = %d %s, want 404", c.method, path, r.status, r.body)
			}
		}
	}
	if got := expect(t, s.call(t, "GET", "/v1/tenants/a/endpoints/"+a, ""), 200).json(t); got["name"] != nil || got["state"] != "enabled" {
		t.Errorf("a's endpoint was changed through another tenant: %v", got)
	}

	// Fan-out: a message goes only to its own tenant's endpoints.
	mb := expect(t, s.call(t, "POST", "/v1/tenants/b/messages", `{"type": "a.b", "data": {"n": 1}}`), 202).json(t)
	if mb["tenant"] != "b" {
		t.Errorf("created message = %v, want tenant b", mb)
	}
	mbID := mb["id"].(string)
	full := waitStatus(t, s, "/v1/tenants/b/messages/"+mbID, "succeeded")
	if ds, _ := full["deliveries"].([]any); len(ds) != 1 || ds[0].(map[string]any)["endpoint_id"] != b || full["tenant"] != "b" {
		t.Errorf("b's message = %v, want one delivery, to %s", full, b)
	}
	md := expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {"n": 2}}`), 202).json(t)
	mdID := md["id"].(string)
	full = waitStatus(t, s, "/v1/tenants/default/messages/"+mdID, "succeeded")
	if ds, _ := full["deliveries"].([]any); len(ds) != 1 || ds[0].(map[string]any)["endpoint_id"] != d || md["tenant"] != "default" {
		t.Errorf("default's message = %v (created %v), want one delivery, to %s", full, md, d)
	}
	if rcvA.count() != 0 || rcvB.count() != 1 || rcvD.count() != 1 {
		t.Errorf("receivers got a %d, b %d, default %d; want 0, 1, 1", rcvA.count(), rcvB.count(), rcvD.count())
	}

	// Idempotency keys are per tenant.
	k1 := expect(t, s.call(t, "POST", "/v1/tenants/a/messages", `{"type": "k.k", "data": {}}`, "Idempotency-Key", "same"), 202).json(t)["id"]
	k2 := expect(t, s.call(t, "POST", "/v1/tenants/b/messages", `{"type": "k.k", "data": {}}`, "Idempotency-Key", "same"), 202).json(t)["id"]
	k3 := expect(t, s.call(t, "POST", "/v1/messages", `{"type": "k.k", "data": {}}`, "Idempotency-Key", "same"), 202).json(t)["id"]
	if k1 == k2 || k2 == k3 || k1 == k3 {
		t.Errorf("one key in three tenants made %v, %v, %v; want three messages", k1, k2, k3)
	}
	again := expect(t, s.call(t, "POST", "/v1/tenants/a/messages", `{"type": "k.k", "data": {}}`, "Idempotency-Key", "same"), 200)
	if again.json(t)["id"] != k1 || again.json(t)["tenant"] != "a" || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("repeat in a = %s, want %v replayed", again.body, k1)
	}

	// Messages: get and list see only the tenant's.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tenants/a/messages/" + mbID},
		{"GET", "/v1/messages/" + mbID},
		{"GET", "/v1/tenants/b/messages/" + mdID},
		{"POST", "/v1/tenants/a/messages/" + mbID + "/retry"},
	} {
		if r := s.call(t, c.method, c.path, ""); r.status != 404 || r.errCode(t) != "not_found" {
			t.Errorf("%s %s = %d %s, want 404", c.method, c.path, r.status, r.body)
		}
	}
	for path, want := range map[string][]string{
		"/v1/tenants/b/messages":       {k2.(string), mbID},
		"/v1/messages":                 {k3.(string), mdID},
		"/v1/tenants/default/messages": {k3.(string), mdID},
		"/v1/tenants/a/messages":       {k1.(string)},
		"/v1/tenants/z/messages":       {},
	} {
		if got := ids(t, expect(t, s.call(t, "GET", path, ""), 200)); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("GET %s = %v, want %v", path, got, want)
		}
	}

	// Retry and recover act on the tenant's failed deliveries only.
	rcvA.setStatus(500)
	fail := expect(t, s.call(t, "POST", "/v1/tenants/a/messages", `{"type": "f.f", "data": {}}`), 202).json(t)["id"].(string)
	waitStatus(t, s, "/v1/tenants/a/messages/"+fail, "failed")
	waitUntil(t, 10*time.Second, "a's pending deliveries", func() bool {
		return len(ids(t, s.call(t, "GET", "/v1/tenants/a/messages?status=pending", ""))) == 0
	})
	for _, path := range []string{"/v1/messages/" + fail + "/retry", "/v1/tenants/b/messages/" + fail + "/retry"} {
		if r := s.call(t, "POST", path, ""); r.status != 404 {
			t.Errorf("POST %s = %d %s, want 404", path, r.status, r.body)
		}
	}
	since := `{"since": "` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `"}`
	for _, path := range []string{"/v1/messages/recover", "/v1/tenants/b/messages/recover"} {
		if rq := expect(t, s.call(t, "POST", path, since), 200).json(t); rq["requeued"] != 0.0 {
			t.Errorf("POST %s = %v, want nothing requeued", path, rq)
		}
	}
	if rq := expect(t, s.call(t, "POST", "/v1/tenants/a/messages/"+fail+"/retry", ""), 200).json(t); rq["requeued"] != 1.0 {
		t.Errorf("retry in a = %v", rq)
	}
	waitStatus(t, s, "/v1/tenants/a/messages/"+fail, "failed")
	if rq := expect(t, s.call(t, "POST", "/v1/tenants/a/messages/recover", since), 200).json(t); rq["requeued"] != 1.0 {
		t.Errorf("recover in a = %v", rq)
	}

	// Override URIs work in any tenant, and the message stays its tenant's.
	rcvC := newHook(t)
	oc := expect(t, s.call(t, "POST", "/v1/tenants/c/messages",
		`{"type": "o.o", "data": {}, "webhook_config": {"uris": ["`+rcvC.URL+`/cb"]}}`), 202).json(t)["id"].(string)
	full = waitStatus(t, s, "/v1/tenants/c/messages/"+oc, "succeeded")
	if ds, _ := full["deliveries"].([]any); len(ds) != 1 || ds[0].(map[string]any)["url"] != rcvC.URL+"/cb" || rcvC.count() != 1 {
		t.Errorf("override in c = %v; receiver got %d", full, rcvC.count())
	}
	expect(t, s.call(t, "GET", "/v1/messages/"+oc, ""), 404)

	// A tenant id the engine refuses is a 400 naming the tenant.
	for _, path := range []string{"/v1/tenants/-x/endpoints", "/v1/tenants/" + strings.Repeat("t", 65) + "/messages", "/v1/tenants/a%20b/messages"} {
		if r := s.call(t, "GET", path, ""); r.status != 400 || !strings.Contains(r.errMessage(t), "tenant") {
			t.Errorf("GET %s = %d %s, want 400 about the tenant", path, r.status, r.body)
		}
	}

	// Route labels are the patterns, {tenant} and all, never the tenant.
	m := string(expect(t, s.call(t, "GET", "/metrics", ""), 200).body)
	if !strings.Contains(m, `route="POST /v1/tenants/{tenant}/messages"`) || strings.Contains(m, "/v1/tenants/a/") {
		t.Errorf("metrics route labels: %s", m)
	}
}

// TestAPITenantsListAndDelete: GET /v1/tenants counts each tenant's
// records; DELETE /v1/tenants/{tenant} cancels its pending deliveries and
// removes everything it held, and nothing of another tenant.
func TestAPITenantsListAndDelete(t *testing.T) {
	// A failed attempt leaves the delivery pending for an hour.
	s := startAPI(t, apiOptions{retrySchedule: []time.Duration{time.Hour}})
	rcv, other := newHook(t), newHook(t)
	rcv.setStatus(500)

	if got := ids(t, expect(t, s.call(t, "GET", "/v1/tenants", ""), 200)); len(got) != 0 {
		t.Fatalf("tenants of a new server = %v", got)
	}
	for range 2 {
		expect(t, s.call(t, "POST", "/v1/tenants/acme/endpoints", `{"url": "`+rcv.URL+`"}`), 201)
	}
	expect(t, s.call(t, "POST", "/v1/tenants/beta/endpoints", `{"url": "`+other.URL+`"}`), 201)
	expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "`+other.URL+`"}`), 201)
	msg := expect(t, s.call(t, "POST", "/v1/tenants/acme/messages", `{"type": "a.b", "data": {}}`, "Idempotency-Key", "k"), 202).json(t)["id"].(string)
	waitUntil(t, 10*time.Second, "both failed attempts", func() bool { return rcv.count() == 2 })
	expect(t, s.call(t, "POST", "/v1/tenants/acme/tokens", `{"ttl": "1h"}`), 201)

	list := expect(t, s.call(t, "GET", "/v1/tenants", ""), 200).json(t)
	if list["next_cursor"] != nil {
		t.Errorf("next_cursor = %v, want null", list["next_cursor"])
	}
	want := map[string]map[string]float64{
		"acme":    {"endpoints": 2, "pending_deliveries": 2, "messages": 1, "tokens": 1},
		"beta":    {"endpoints": 1, "pending_deliveries": 0, "messages": 0, "tokens": 0},
		"default": {"endpoints": 1, "pending_deliveries": 0, "messages": 0, "tokens": 0},
	}
	if got := ids(t, expect(t, s.call(t, "GET", "/v1/tenants", ""), 200)); strings.Join(got, ",") != "acme,beta,default" {
		t.Fatalf("tenants = %v, want acme, beta, default", got)
	}
	for id, counts := range want {
		info := tenantInfo(t, s, id)
		for k, n := range counts {
			if info[k] != n {
				t.Errorf("tenant %s: %s = %v, want %v (%v)", id, k, info[k], n, info)
			}
		}
	}

	// Paging, like the message list.
	page := expect(t, s.call(t, "GET", "/v1/tenants?limit=2", ""), 200).json(t)
	cursor, _ := page["next_cursor"].(string)
	if data, _ := page["data"].([]any); len(data) != 2 || cursor != "beta" {
		t.Fatalf("page 1 = %v", page)
	}
	if got := ids(t, expect(t, s.call(t, "GET", "/v1/tenants?after="+cursor, ""), 200)); len(got) != 1 || got[0] != "default" {
		t.Errorf("page 2 = %v", got)
	}
	for _, q := range []string{"limit=x", "limit=0", "limit=-1", "limit=251"} {
		if c := expect(t, s.call(t, "GET", "/v1/tenants?"+q, ""), 400).errCode(t); c != "invalid_argument" {
			t.Errorf("%s: code %q", q, c)
		}
	}

	expect(t, s.call(t, "DELETE", "/v1/tenants/acme", ""), 204)
	if info := tenantInfo(t, s, "acme"); info != nil {
		t.Errorf("acme after its deletion: %v", info)
	}
	if got := ids(t, expect(t, s.call(t, "GET", "/v1/tenants/acme/endpoints", ""), 200)); len(got) != 0 {
		t.Errorf("acme's endpoints after its deletion: %v", got)
	}
	expect(t, s.call(t, "GET", "/v1/tenants/acme/messages/"+msg, ""), 404)
	if got := ids(t, expect(t, s.call(t, "GET", "/v1/tenants/acme/messages", ""), 200)); len(got) != 0 {
		t.Errorf("acme's messages after its deletion: %v", got)
	}
	for _, id := range []string{"beta", "default"} {
		if info := tenantInfo(t, s, id); info == nil || info["endpoints"] != 1.0 {
			t.Errorf("tenant %s after acme's deletion: %v", id, info)
		}
	}
	// The id starts afresh: its idempotency key is free again.
	again := expect(t, s.call(t, "POST", "/v1/tenants/acme/messages", `{"type": "a.b", "data": {}}`, "Idempotency-Key", "k"), 202).json(t)
	if again["id"] == msg {
		t.Errorf("a deleted tenant's idempotency key answered its old message")
	}
	// Deleting a tenant that holds nothing is done already.
	expect(t, s.call(t, "DELETE", "/v1/tenants/never", ""), 204)
	if r := s.call(t, "DELETE", "/v1/tenants/-x", ""); r.status != 400 || r.errCode(t) != "invalid_argument" {
		t.Errorf("DELETE of a bad tenant id = %d %s", r.status, r.body)
	}
}

// TestAPITenantTokens: a tenant token reaches its own tenant's routes and
// nothing else; the admin token reaches everything; revoked or unknown
// tokens are 401.
func TestAPITenantTokens(t *testing.T) {
	s := startAPI(t, apiOptions{token: "admin"})
	rcv := newHook(t)

	r := expect(t, s.call(t, "POST", "/v1/tenants/a/tokens", `{"ttl": "1h"}`), 201)
	tok := r.json(t)
	token, _ := tok["token"].(string)
	exp, err := time.Parse(time.RFC3339, tok["expires_at"].(string))
	if !strings.HasPrefix(token, "htk_") || tok["tenant"] != "a" || err != nil ||
		exp.Before(time.Now().Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Fatalf("token = %s", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token answer Cache-Control = %q", cc)
	}
	// The ttl is a duration or a number of seconds, in the engine's range.
	secs := expect(t, s.call(t, "POST", "/v1/tenants/b/tokens", `{"ttl": 120}`), 201).json(t)
	if exp, _ := time.Parse(time.RFC3339, secs["expires_at"].(string)); exp.After(time.Now().Add(3 * time.Minute)) {
		t.Errorf("ttl 120 = %v", secs)
	}
	tokenB := secs["token"].(string)
	for _, body := range []string{`{}`, `{"ttl": null}`, `{"ttl": "soon"}`, `{"ttl": "30s"}`, `{"ttl": "9000h"}`, `{"ttl": 59}`,
		`{"ttl": 0}`, `{"ttl": -60}`, `{"ttl": 1.5}`, `{"ttl": 1e3}`, `{"ttl": 99999999999999999999}`, `{"ttl": true}`,
		`{"ttl": ["1h"]}`, `{"ttl": "1h", "tenant": "b"}`} {
		if r := s.call(t, "POST", "/v1/tenants/a/tokens", body); r.status != 400 || r.errCode(t) != "invalid_argument" ||
			!strings.Contains(r.errMessage(t), "ttl") && !strings.Contains(r.errMessage(t), "tenant") {
			t.Errorf("token with %s = %d %s, want 400 about the ttl", body, r.status, r.body)
		}
	}

	ta := s.as(token)
	// Its own tenant's routes, every one.
	ep := expect(t, ta.call(t, "POST", "/v1/tenants/a/endpoints", `{"url": "`+rcv.URL+`"}`), 201).json(t)["id"].(string)
	expect(t, ta.call(t, "GET", "/v1/tenants/a/endpoints", ""), 200)
	expect(t, ta.call(t, "GET", "/v1/tenants/a/endpoints/"+ep, ""), 200)
	expect(t, ta.call(t, "PATCH", "/v1/tenants/a/endpoints/"+ep, `{"name": "mine"}`), 200)
	expect(t, ta.call(t, "POST", "/v1/tenants/a/endpoints/"+ep+"/rotate-secret", ""), 200)
	ping := expect(t, ta.call(t, "POST", "/v1/tenants/a/endpoints/"+ep+"/ping", ""), 202).json(t)["id"].(string)
	msg := expect(t, ta.call(t, "POST", "/v1/tenants/a/messages", `{"type": "a.b", "data": {}}`), 202).json(t)["id"].(string)
	waitStatus(t, ta, "/v1/tenants/a/messages/"+msg, "succeeded")
	waitStatus(t, ta, "/v1/tenants/a/messages/"+ping, "succeeded")
	if got := ids(t, expect(t, ta.call(t, "GET", "/v1/tenants/a/messages", ""), 200)); len(got) != 2 {
		t.Errorf("a's messages = %v", got)
	}
	expect(t, ta.call(t, "POST", "/v1/tenants/a/messages/"+msg+"/retry", ""), 200)
	expect(t, ta.call(t, "POST", "/v1/tenants/a/messages/recover", `{"since": "2020-01-01T00:00:00Z"}`), 200)
	// Unknown routes below its tenant answer as for the admin.
	expect(t, ta.call(t, "GET", "/v1/tenants/a/nothing", ""), 404)
	if r := expect(t, ta.call(t, "PUT", "/v1/tenants/a/endpoints/"+ep, `{}`), 405); !strings.Contains(r.header.Get("Allow"), "PATCH") {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}

	// Every other route under /v1 is 403, and does nothing; walk them all.
	waitUntil(t, 10*time.Second, "a signing key", func() bool {
		keys, _ := s.call(t, "GET", "/.well-known/jwks.json", "").json(t)["keys"].([]any)
		return len(keys) > 0
	})
	keys := len(expect(t, s.call(t, "GET", "/.well-known/jwks.json", ""), 200).json(t)["keys"].([]any))
	for _, p := range s.api.patterns {
		method, path, _ := strings.Cut(p, " ")
		if !strings.HasPrefix(path, "/v1") {
			continue
		}
		body := ""
		if method == "POST" || method == "PATCH" {
			body = `{}`
		}
		for _, tenant := range []string{"a", "b", "default"} {
			filled := strings.ReplaceAll(strings.ReplaceAll(path, "{tenant}", tenant), "{id}", "x_missing")
			r := ta.call(t, method, filled, body)
			own := s.api.access[p] == tenantScoped && tenant == "a"
			switch {
			case own && (r.status == 401 || r.status == 403):
				t.Errorf("a's token: %s %s = %d %s, want it let through", method, filled, r.status, r.body)
			case !own && (r.status != 403 || r.errCode(t) != "forbidden"):
				t.Errorf("a's token: %s %s = %d %s, want 403 forbidden", method, filled, r.status, r.body)
			}
			if !own && r.status == 403 && !strings.Contains(r.errMessage(t), `tenant "a"`) {
				t.Errorf("403 message %q does not name the token's tenant", r.errMessage(t))
			}
			// The admin is let through everywhere (in a tenant of its own).
			if tenant == "a" {
				filled = strings.ReplaceAll(strings.ReplaceAll(path, "{tenant}", "x_admin"), "{id}", "x_missing")
				if r := s.call(t, method, filled, body); r.status == 401 || r.status == 403 {
					t.Errorf("admin: %s %s = %d %s", method, filled, r.status, r.body)
				}
			}
		}
	}
	for _, path := range []string{"/v1/nothing", "/v1", "/v1/tenants/b/nothing", "/v1/tenants/a", "/v1/tenants/a/../b/endpoints", "/v1/tenants/a%2Fb/endpoints"} {
		if r := ta.call(t, "GET", path, ""); r.status != 403 {
			t.Errorf("a's token: GET %s = %d %s, want 403", path, r.status, r.body)
		}
	}
	// Nothing the 403s refused happened: a is whole, with its one token
	// (b's aside), no key was rotated by the token.
	if info := tenantInfo(t, s, "a"); info == nil || info["endpoints"] != 1.0 || info["tokens"] != 1.0 {
		t.Errorf("tenant a after the refused calls: %v", info)
	}
	if got := len(expect(t, s.call(t, "GET", "/.well-known/jwks.json", ""), 200).json(t)["keys"].([]any)); got != keys+1 {
		t.Errorf("signing keys: %d, want %d (one rotation, the admin's)", got, keys+1)
	}
	// The open routes stay open to it (readyz may be 503 a moment after the
	// walk's membership calls: that is readiness, not the token).
	for _, path := range []string{"/.well-known/jwks.json", "/healthz", "/readyz", "/metrics"} {
		if r := ta.call(t, "GET", path, ""); r.status != 200 && (path != "/readyz" || r.status != 503) {
			t.Errorf("a's token: GET %s = %d %s", path, r.status, r.body)
		}
	}
	// Browsers' cross-origin writes are refused before the token is read.
	if r := ta.call(t, "POST", "/v1/tenants/a/messages", `{"type": "a.b", "data": {}}`, "Sec-Fetch-Site", "cross-site"); r.status != 403 {
		t.Errorf("cross-origin write with a tenant token = %d", r.status)
	}

	// Revoked: 401, with the usual header and hint; b's token lives on.
	rv := expect(t, s.call(t, "DELETE", "/v1/tenants/a/tokens", ""), 200).json(t)
	if rv["revoked"] != 1.0 {
		t.Errorf("revoke = %v", rv)
	}
	for _, who := range []*testAPI{ta, s.as("htk_unknown"), s.as("htk_")} {
		r := who.call(t, "GET", "/v1/tenants/a/endpoints", "")
		if r.status != 401 || r.errCode(t) != "unauthorized" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") ||
			!strings.Contains(r.errMessage(t), "--api-token") || !strings.Contains(r.errMessage(t), "HERALD_API_TOKEN") {
			t.Errorf("token %q: %d %s %v, want 401", who.token, r.status, r.body, r.header)
		}
	}
	if rv := expect(t, s.call(t, "DELETE", "/v1/tenants/a/tokens", ""), 200).json(t); rv["revoked"] != 0.0 {
		t.Errorf("second revoke = %v", rv)
	}
	expect(t, s.as(tokenB).call(t, "GET", "/v1/tenants/b/endpoints", ""), 200)
	if m := s.as("nope").call(t, "GET", "/v1/endpoints", "").errMessage(t); !strings.Contains(m, "--api-token") || !strings.Contains(m, "HERALD_API_TOKEN") {
		t.Errorf("401 message %q does not say where the token goes", m)
	}
	// The admin token is the admin even on tenant routes.
	expect(t, s.call(t, "GET", "/v1/tenants/b/endpoints", ""), 200)
}

// testClock is an engine clock that tests move forward.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// TestAPITenantTokenExpiry: an expired token is 401. The engine's clock is
// moved past the shortest ttl, a minute, instead of waiting for it.
func TestAPITenantTokenExpiry(t *testing.T) {
	clock := &testClock{}
	s := startAPI(t, apiOptions{token: "admin", now: clock.now})
	token := expect(t, s.call(t, "POST", "/v1/tenants/a/tokens", `{"ttl": "1m"}`), 201).json(t)["token"].(string)
	ta := s.as(token)
	expect(t, ta.call(t, "GET", "/v1/tenants/a/endpoints", ""), 200)
	clock.advance(59 * time.Second)
	expect(t, ta.call(t, "GET", "/v1/tenants/a/endpoints", ""), 200)
	clock.advance(2 * time.Second)
	if r := ta.call(t, "GET", "/v1/tenants/a/endpoints", ""); r.status != 401 || r.errCode(t) != "unauthorized" {
		t.Errorf("expired token: %d %s, want 401", r.status, r.body)
	}
}

// TestAPITenantTokensWithoutAdminToken: without --api-token everything is
// open to requests without a tenant token, as before tenants; a tenant
// token still holds its bearer to its tenant.
func TestAPITenantTokensWithoutAdminToken(t *testing.T) {
	s := startAPI(t, apiOptions{})
	token := expect(t, s.call(t, "POST", "/v1/tenants/a/tokens", `{"ttl": "1h"}`), 201).json(t)["token"].(string)
	ta := s.as(token)
	expect(t, ta.call(t, "GET", "/v1/tenants/a/endpoints", ""), 200)
	for _, path := range []string{"/v1/endpoints", "/v1/tenants/b/endpoints", "/v1/tenants", "/v1/cluster"} {
		if r := ta.call(t, "GET", path, ""); r.status != 403 || r.errCode(t) != "forbidden" {
			t.Errorf("a's token: GET %s = %d %s, want 403", path, r.status, r.body)
		}
	}
	if r := ta.call(t, "POST", "/v1/tenants/a/tokens", `{"ttl": "1h"}`); r.status != 403 {
		t.Errorf("a's token making tokens: %d %s", r.status, r.body)
	}
	if r := s.as("htk_unknown").call(t, "GET", "/v1/endpoints", ""); r.status != 401 {
		t.Errorf("unknown tenant token: %d %s, want 401", r.status, r.body)
	}
	// Any other bearer token is ignored, as it always was here.
	expect(t, s.as("whatever").call(t, "GET", "/v1/tenants", ""), 200)
	expect(t, s.call(t, "GET", "/v1/cluster", ""), 200)
	// The Host check comes first, token or not.
	if r := ta.call(t, "GET", "/v1/tenants/a/endpoints", "", "Host", "evil.example"); r.status != http.StatusMisdirectedRequest {
		t.Errorf("tenant token with a foreign Host: %d", r.status)
	}
}
