package main

import (
	"net/http"
	"strings"
	"testing"
)

// writeRoutes returns the API's POST, PUT and PATCH routes as method and
// path, with every {wildcard} filled in, walking the router's own list so
// that a new route is covered without touching the tests.
func writeRoutes(t *testing.T, a *api) [][2]string {
	t.Helper()
	var out [][2]string
	for _, p := range a.patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Fatalf("route %q has no method", p)
		}
		switch method {
		case "POST", "PUT", "PATCH":
		default:
			continue
		}
		segs := strings.Split(path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, "{") {
				segs[i] = "x_missing"
			}
		}
		out = append(out, [2]string{method, strings.Join(segs, "/")})
	}
	return out
}

// TestAPIWritesNeedJSON: every write route refuses a body that is not
// declared as JSON with 415, before doing anything, whatever the body.
func TestAPIWritesNeedJSON(t *testing.T) {
	s := startAPI(t, apiOptions{})
	routes := writeRoutes(t, s.api)
	for _, want := range []string{"POST /v1/messages", "PATCH /v1/endpoints/x_missing", "POST /v1/cluster/nodes",
		"POST /v1/tenants/x_missing/messages", "PATCH /v1/tenants/x_missing/endpoints/x_missing",
		"POST /v1/tenants/x_missing/messages/recover", "POST /v1/tenants/x_missing/tokens"} {
		found := false
		for _, r := range routes {
			found = found || r[0]+" "+r[1] == want
		}
		if !found {
			t.Errorf("write routes lack %s: %v", want, routes)
		}
	}
	bodies := map[string]string{
		"":                                  `{"url": "https://example.com"}`,
		"text/plain":                        `{"url": "https://example.com"}`,
		"text/plain; charset=utf-8":         `{"type": "a.b", "data": {}}`,
		"application/x-www-form-urlencoded": `url=https%3A%2F%2Fexample.com`,
		"multipart/form-data; boundary=b":   "--b\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\nhttps://example.com\r\n--b--\r\n",
		"application/jsonp":                 `{}`,
		"application/json-seq":              `{}`,
		"text/json":                         `{}`,
		"application/json; charset":         `{}`, // malformed parameter
	}
	for _, r := range routes {
		for ct, body := range bodies {
			for _, b := range []string{body, ""} {
				got := s.call(t, r[0], r[1], b, "Content-Type", ct)
				if got.status != http.StatusUnsupportedMediaType || got.errCode(t) != "unsupported_media_type" {
					t.Errorf("%s %s with Content-Type %q, body %q: %d %s, want 415 unsupported_media_type",
						r[0], r[1], ct, b, got.status, got.body)
				}
			}
		}
	}
	// Two Content-Type headers are refused too, even if one is JSON.
	req, _ := http.NewRequest("POST", s.URL+"/v1/endpoints", strings.NewReader(`{"url": "https://example.com"}`))
	req.Header.Add("Content-Type", "application/json")
	req.Header.Add("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("two Content-Types: %d, want 415", resp.StatusCode)
	}
	// Nothing was created by the refused writes.
	if data, _ := expect(t, s.call(t, "GET", "/v1/endpoints", ""), 200).json(t)["data"].([]any); len(data) != 0 {
		t.Fatalf("refused writes created endpoints: %v", data)
	}
	if data, _ := expect(t, s.call(t, "GET", "/v1/tenants", ""), 200).json(t)["data"].([]any); len(data) != 0 {
		t.Fatalf("refused writes created tenants: %v", data)
	}

	// JSON, with parameters or in capitals, is accepted.
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "https://example.com/`+ct+`"}`, "Content-Type", ct), 201)
	}
	// A bodiless write needs the type too, and works with it.
	id := expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`), 202).json(t)["id"].(string)
	expect(t, s.call(t, "POST", "/v1/messages/"+id+"/retry", ""), 200)
	// DELETE needs no content type; unknown routes and methods keep their
	// answers; GET is not affected.
	ep := expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "https://example.com/d"}`), 201).json(t)["id"].(string)
	expect(t, s.call(t, "DELETE", "/v1/endpoints/"+ep, "", "Content-Type", ""), 204)
	expect(t, s.call(t, "POST", "/v1/nothing", `{}`, "Content-Type", "text/plain"), 404)
	expect(t, s.call(t, "PUT", "/v1/endpoints/x", `{}`, "Content-Type", "text/plain"), 405)
	expect(t, s.call(t, "GET", "/v1/endpoints", "", "Content-Type", "text/plain"), 200)
}

// TestAPIWritesNeedJSONAfterAuth: without the token the answer is 401,
// whatever the content type, so nothing about the routes leaks; with a
// tenant token, a route outside its tenant is 403 first.
func TestAPIWritesNeedJSONAfterAuth(t *testing.T) {
	s := startAPI(t, apiOptions{token: "tok"})
	anon := &testAPI{Server: s.Server, api: s.api}
	tenant := s.as(expect(t, s.call(t, "POST", "/v1/tenants/x_missing/tokens", `{"ttl": "1h"}`), 201).json(t)["token"].(string))
	for _, r := range writeRoutes(t, s.api) {
		if got := anon.call(t, r[0], r[1], `{}`, "Content-Type", "text/plain"); got.status != 401 {
			t.Errorf("%s %s without token: %d, want 401", r[0], r[1], got.status)
		}
		if got := s.call(t, r[0], r[1], `{}`, "Content-Type", "text/plain"); got.status != 415 {
			t.Errorf("%s %s with token: %d, want 415", r[0], r[1], got.status)
		}
		want := 403
		if strings.HasPrefix(r[1], "/v1/tenants/x_missing/") && !strings.HasSuffix(r[1], "/tokens") {
			want = 415
		}
		if got := tenant.call(t, r[0], r[1], `{}`, "Content-Type", "text/plain"); got.status != want {
			t.Errorf("%s %s with a tenant token: %d, want %d", r[0], r[1], got.status, want)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "localhost:8080": true, "LocalHost:80": true, "localhost.": true, "localhost.:8080": true,
		"127.0.0.1": true, "127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]:8080": true, "[::1]": true,
		"[::ffff:127.0.0.1]:80": true,
		"":                      false, "evil.example": false, "evil.example:8080": false, "localhost.evil.example": false,
		"app.localhost": false, "127.0.0.1.nip.io:80": false, "0.0.0.0:8080": false, "[::]:80": false, "::1": false,
		"10.0.0.1:80": false, "127.1:80": false, "[fe80::1%25lo]:80": false, "2130706433:80": false, "[::1]x": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestAPIHostCheck: without a token only loopback Host names are answered
// (DNS rebinding); with a token any Host is.
func TestAPIHostCheck(t *testing.T) {
	open := startAPI(t, apiOptions{})
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/endpoints", ""},
		{"POST", "/v1/messages", `{"type": "a.b", "data": {}}`},
		{"POST", "/v1/cluster/nodes", `{"id": "n9", "raft_addr": "127.0.0.1:9"}`},
		{"POST", "/v1/tenants/t1/tokens", `{"ttl": "1h"}`},
		{"GET", "/v1/tenants/t1/endpoints", ""},
		{"GET", "/metrics", ""},
		{"GET", "/healthz", ""},
		{"GET", "/.well-known/jwks.json", ""},
	} {
		for _, host := range []string{"evil.example", "evil.example:" + portOf(open.URL), "0.0.0.0:" + portOf(open.URL)} {
			r := open.call(t, c.method, c.path, c.body, "Host", host)
			if r.status != http.StatusMisdirectedRequest || r.errCode(t) != "misdirected_request" {
				t.Errorf("no token, Host %s: %s %s = %d %s, want 421 misdirected_request", host, c.method, c.path, r.status, r.body)
			}
		}
	}
	for _, host := range []string{"localhost:" + portOf(open.URL), "127.0.0.1:" + portOf(open.URL), "localhost"} {
		expect(t, open.call(t, "GET", "/v1/endpoints", "", "Host", host), 200)
	}
	if nodes, _ := expect(t, open.call(t, "GET", "/v1/cluster", ""), 200).json(t)["nodes"].([]any); len(nodes) != 1 {
		t.Errorf("a refused request changed the cluster: %v", nodes)
	}

	authed := startAPI(t, apiOptions{token: "tok"})
	expect(t, authed.call(t, "GET", "/v1/endpoints", "", "Host", "herald.example.com"), 200)
	expect(t, authed.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`, "Host", "10.1.2.3:8080"), 202)
	expect(t, authed.call(t, "GET", "/healthz", "", "Host", "10.1.2.3:8080"), 200)
}

// TestAPICrossOrigin: writes that a browser marks as cross-origin are
// refused everywhere; other clients are unaffected.
func TestAPICrossOrigin(t *testing.T) {
	s := startAPI(t, apiOptions{})
	host := strings.TrimPrefix(s.URL, "http://")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/messages", `{"type": "a.b", "data": {}}`},
		{"POST", "/v1/cluster/nodes", `{"id": "n9", "raft_addr": "127.0.0.1:9"}`},
		{"DELETE", "/v1/cluster/nodes/node1", ""},
		{"POST", "/v1/tenants/t1/messages", `{"type": "a.b", "data": {}}`},
		{"POST", "/v1/tenants/t1/tokens", `{"ttl": "1h"}`},
		{"DELETE", "/v1/tenants/default", ""},
	} {
		for _, h := range [][2]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site"},
			{"Origin", "http://evil.example"},
			{"Origin", "null"},
		} {
			r := s.call(t, c.method, c.path, c.body, h[0], h[1])
			if r.status != http.StatusForbidden || r.errCode(t) != "forbidden" {
				t.Errorf("%s %s with %s: %s: %d %s, want 403 forbidden", c.method, c.path, h[0], h[1], r.status, r.body)
			}
		}
	}
	if nodes, _ := expect(t, s.call(t, "GET", "/v1/cluster", ""), 200).json(t)["nodes"].([]any); len(nodes) != 1 {
		t.Errorf("a refused request changed the cluster: %v", nodes)
	}
	if data, _ := expect(t, s.call(t, "GET", "/v1/tenants", ""), 200).json(t)["data"].([]any); len(data) != 0 {
		t.Errorf("refused requests made tenants: %v", data)
	}
	expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`, "Sec-Fetch-Site", "same-origin"), 202)
	expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`, "Origin", "http://"+host), 202)
	expect(t, s.call(t, "GET", "/v1/endpoints", "", "Origin", "http://evil.example"), 200)
}

// portOf returns the port of an httptest URL.
func portOf(u string) string {
	return u[strings.LastIndex(u, ":")+1:]
}

// TestAPIServesNoNodeToNodeRoutes: nodes call each other on the peer port
// (under mutual TLS when configured), never through the API port, where
// the API token would be all a caller needs.
func TestAPIServesNoNodeToNodeRoutes(t *testing.T) {
	s := startAPI(t, apiOptions{token: "tok"})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/internal/v1/propose", `{"rotate_signing_key": {}}`},
		{"GET", "/internal/v1/read-index", ""},
	} {
		r := s.call(t, c.method, c.path, c.body, "Authorization", "Bearer tok")
		if r.status != http.StatusNotFound {
			t.Errorf("%s %s on the API port = %d %s, want 404", c.method, c.path, r.status, r.body)
		}
	}
}
