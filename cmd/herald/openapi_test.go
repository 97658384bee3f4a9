package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// openAPIFile is the API's OpenAPI document, relative to this package.
const openAPIFile = "../../docs/openapi.yaml"

// unlistedRoutes are the public routes registered outside api.patterns.
var unlistedRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics"}

// loadOpenAPI loads and validates the document. With closed set, every
// object schema that declares its properties is made to refuse others, so
// that a field the server answers but the document does not describe fails
// the test (the document itself stays open, for clients of later versions).
func loadOpenAPI(t *testing.T, closed bool) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatalf("load %s: %v", openAPIFile, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", openAPIFile, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("%s: openapi is %q, want 3.1", openAPIFile, doc.OpenAPI)
	}
	if closed {
		seen := map[*openapi3.Schema]bool{}
		for _, s := range doc.Components.Schemas {
			closeObjects(s, seen)
		}
		for _, r := range doc.Components.Responses {
			for _, mt := range r.Value.Content {
				closeObjects(mt.Schema, seen)
			}
		}
		for _, item := range doc.Paths.Map() {
			for _, op := range item.Operations() {
				for _, r := range op.Responses.Map() {
					for _, mt := range r.Value.Content {
						closeObjects(mt.Schema, seen)
					}
				}
			}
		}
	}
	return doc
}

// closeObjects sets additionalProperties: false on every object schema
// with properties under ref that does not say otherwise.
func closeObjects(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if s.Type != nil && s.Type.Includes("object") && len(s.Properties) > 0 &&
		s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		s.AdditionalProperties.Has = new(false)
	}
	for _, p := range s.Properties {
		closeObjects(p, seen)
	}
	closeObjects(s.Items, seen)
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
		for _, sub := range list {
			closeObjects(sub, seen)
		}
	}
}

// docOperations returns "METHOD /path" for every operation of the document.
func docOperations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// TestOpenAPIRoutes: the document describes every public route of the
// server, and nothing else: each route has its operation, and each
// operation is routed by the server's mux to the very same pattern.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t, false)
	a := startAPI(t, apiOptions{token: "admin-token"}).api
	ops := docOperations(doc)

	for _, route := range append(slices.Clone(a.patterns), unlistedRoutes...) {
		if !slices.Contains(ops, route) {
			t.Errorf("route %q is not described in %s", route, openAPIFile)
		}
	}
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		req := httptest.NewRequest(method, fillTemplate(path), nil)
		if _, pattern := a.mux.Handler(req); pattern != op {
			t.Errorf("%s describes %q, which the server routes to %q", openAPIFile, op, pattern)
		}
	}
}

// fillTemplate gives each {parameter} of a path template a sample value.
func fillTemplate(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = "x" + s[1:len(s)-1]
		}
	}
	return strings.Join(segs, "/")
}

// contract checks real answers of a running server against the document.
type contract struct {
	t   *testing.T
	doc *openapi3.T
	// covered counts the calls checked against each operation.
	covered map[string]int
}

// call makes a request through s (as s.call does), expects status want
// and checks the answer against the operation the server routed it to:
// the status must be one the operation lists, with its body and headers.
// A successful request is checked against the document too.
func (c *contract) call(s *testAPI, want int, method, path, body string, headers ...string) response {
	t := c.t
	t.Helper()
	r := s.call(t, method, path, body, headers...)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	req := httptest.NewRequest(method, s.URL+path, strings.NewReader(body))
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if method == "POST" || method == "PATCH" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		switch {
		case headers[i] == "Host":
		case headers[i+1] == "":
			req.Header.Del(headers[i])
		default:
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	_, pattern := s.api.mux.Handler(req)
	_, tmpl, _ := strings.Cut(pattern, " ")
	item := c.doc.Paths.Value(tmpl)
	if item == nil || item.GetOperation(method) == nil {
		t.Fatalf("%s %s: the server routes it to %q, which %s does not describe", method, path, pattern, openAPIFile)
	}
	c.covered[pattern]++
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: pathParams(tmpl, req.URL.Path),
		Route: &routers.Route{Spec: c.doc, Path: tmpl, PathItem: item,
			Method: method, Operation: item.GetOperation(method)},
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	ctx := context.Background()
	if r.status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s: the request does not match %s: %v", method, path, openAPIFile, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s %s: the answer %d %s does not match %s: %v", method, path, r.status, r.body, openAPIFile, err)
	}
	return r
}

// pathParams matches a path against its template.
func pathParams(tmpl, path string) map[string]string {
	params := map[string]string{}
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	for i, s := range ts {
		if strings.HasPrefix(s, "{") && i < len(ps) {
			params[strings.Trim(s, "{}")] = ps[i]
		}
	}
	return params
}

// jsonString returns a string field of a JSON answer.
func jsonString(t *testing.T, r response, field string) string {
	t.Helper()
	s, ok := r.json(t)[field].(string)
	if !ok {
		t.Fatalf("answer %s has no string %q", r.body, field)
	}
	return s
}

// TestOpenAPIAnswers: the answers of a running server, successes and
// errors, on every operation, match the document.
func TestOpenAPIAnswers(t *testing.T) {
	c := &contract{t: t, doc: loadOpenAPI(t, true), covered: map[string]int{}}
	s := startAPI(t, apiOptions{token: "admin-token"})
	rcv, failing := newHook(t), newHook(t)
	failing.setStatus(http.StatusInternalServerError)

	// Endpoints of the tenant "default".
	ep := jsonString(t, c.call(s, 201, "POST", "/v1/endpoints",
		`{"url":"`+rcv.URL+`","event_types":["order.paid"],"name":"shop","rate_limit_per_s":50}`), "id")
	bad := jsonString(t, c.call(s, 201, "POST", "/v1/endpoints", `{"url":"`+failing.URL+`/fail"}`), "id")
	c.call(s, 200, "GET", "/v1/endpoints", "")
	c.call(s, 200, "GET", "/v1/endpoints/"+ep, "")
	c.call(s, 200, "PATCH", "/v1/endpoints/"+ep, `{"name":null,"event_types":["order.paid","order.shipped"]}`)
	c.call(s, 200, "POST", "/v1/endpoints/"+ep+"/rotate-secret", `{"revoke":"after_24h"}`)
	ping := jsonString(t, c.call(s, 202, "POST", "/v1/endpoints/"+ep+"/ping", ""), "id")
	waitStatus(t, s, "/v1/messages/"+ping, "succeeded")
	c.call(s, 200, "GET", "/v1/messages/"+ping, "")

	// Messages: send, replay, list, a failed one retried, recover.
	msg := jsonString(t, c.call(s, 202, "POST", "/v1/messages", `{"type":"order.paid","data":{"order":1}}`,
		"Idempotency-Key", "order-1"), "id")
	c.call(s, 200, "POST", "/v1/messages", `{"type":"order.paid","data":{"order":1}}`, "Idempotency-Key", "order-1")
	c.call(s, 422, "POST", "/v1/messages", `{"type":"order.paid","data":{"order":2}}`, "Idempotency-Key", "order-1")
	uris := jsonString(t, c.call(s, 202, "POST", "/v1/messages",
		`{"type":"call.done","data":{},"webhook_config":{"uris":["`+rcv.URL+`/cb"],"user_metadata":{"job":"42"}}}`), "id")
	waitStatus(t, s, "/v1/messages/"+uris, "succeeded")
	c.call(s, 200, "GET", "/v1/messages/"+uris, "")
	waitStatus(t, s, "/v1/messages/"+msg, "failed")
	c.call(s, 200, "GET", "/v1/messages/"+msg, "")
	c.call(s, 200, "POST", "/v1/messages/"+msg+"/retry", "")
	c.call(s, 200, "POST", "/v1/messages/"+msg+"/retry", "{}") // nothing failed now: a reason
	c.call(s, 200, "GET", "/v1/messages?limit=1", "")          // a next_cursor
	c.call(s, 200, "GET", "/v1/messages?status=pending&limit=250", "")
	c.call(s, 200, "GET", "/v1/messages?type=order.paid", "")
	c.call(s, 200, "POST", "/v1/messages/recover", `{"since":"2020-01-01T00:00:00Z"}`)
	c.call(s, 202, "POST", "/v1/messages/batch", `{"messages":[{"type":"order.paid","data":{"order":1},"idempotency_key":"order-1"},`+
		`{"type":"order.paid","data":{"order":2},"idempotency_key":"order-1"},{"type":"call.done","data":{},"webhook_config":{"uris":["ftp://example.com/x"]}},`+
		`{"type":"call.done","data":{},"webhook_config":{"uris":["`+rcv.URL+`/cb"]},"idempotency_key":"b-1"}]}`)
	c.call(s, 400, "POST", "/v1/messages/batch", `{"messages":[]}`)
	c.call(s, 200, "PATCH", "/v1/endpoints/"+bad, `{"state":"disabled"}`)
	c.call(s, 409, "POST", "/v1/endpoints/"+bad+"/ping", "")
	c.call(s, 204, "DELETE", "/v1/endpoints/"+bad, "")

	// Errors.
	c.call(s, 400, "POST", "/v1/endpoints", `{"url":"ftp://example.com"}`)
	c.call(s, 400, "POST", "/v1/endpoints", `{"url":"`+rcv.URL+`","colour":"red"}`)
	c.call(s, 400, "GET", "/v1/messages?limit=0", "")
	c.call(s, 400, "GET", "/v1/endpoints?limit=5", "")
	c.call(s, 404, "GET", "/v1/endpoints/ep_nope", "")
	c.call(s, 404, "DELETE", "/v1/endpoints/"+bad, "")
	c.call(s, 404, "GET", "/v1/messages/msg_nope", "")
	c.call(s, 404, "POST", "/v1/messages/msg_nope/retry", "")
	c.call(s, 415, "POST", "/v1/messages", `{"type":"a","data":{}}`, "Content-Type", "text/plain")
	c.call(s, 413, "POST", "/v1/endpoints", `{"url":"`+strings.Repeat("a", maxBodyBytes)+`"}`)
	c.call(s, 403, "POST", "/v1/endpoints", `{"url":"`+rcv.URL+`"}`, "Sec-Fetch-Site", "cross-site")
	c.call(s.as("wrong-token"), 401, "GET", "/v1/endpoints", "")
	c.call(s.as(""), 401, "GET", "/v1/cluster", "")

	// Tenants: a token, the tenant's own routes with it, then revoked.
	tok := jsonString(t, c.call(s, 201, "POST", "/v1/tenants/acme/tokens", `{"ttl":"1h"}`), "token")
	c.call(s, 201, "POST", "/v1/tenants/acme/tokens", `{"ttl":3600}`)
	acme := s.as(tok)
	aep := jsonString(t, c.call(acme, 201, "POST", "/v1/tenants/acme/endpoints", `{"url":"`+rcv.URL+`"}`), "id")
	c.call(acme, 200, "GET", "/v1/tenants/acme/endpoints", "")
	c.call(acme, 200, "GET", "/v1/tenants/acme/endpoints/"+aep, "")
	c.call(acme, 200, "PATCH", "/v1/tenants/acme/endpoints/"+aep, `{"state":"disabled"}`)
	c.call(acme, 409, "POST", "/v1/tenants/acme/endpoints/"+aep+"/ping", "")
	c.call(acme, 200, "PATCH", "/v1/tenants/acme/endpoints/"+aep,
		`{"state":"enabled","recover_since":"2020-01-01T00:00:00Z"}`)
	c.call(acme, 200, "POST", "/v1/tenants/acme/endpoints/"+aep+"/rotate-secret", "")
	c.call(acme, 202, "POST", "/v1/tenants/acme/endpoints/"+aep+"/ping", "{}")
	amsg := jsonString(t, c.call(acme, 202, "POST", "/v1/tenants/acme/messages", `{"type":"a","data":{"n":1}}`), "id")
	waitStatus(t, acme, "/v1/tenants/acme/messages/"+amsg, "succeeded")
	c.call(acme, 200, "GET", "/v1/tenants/acme/messages/"+amsg, "")
	c.call(acme, 200, "GET", "/v1/tenants/acme/messages", "")
	c.call(acme, 202, "POST", "/v1/tenants/acme/messages/batch", `{"messages":[{"type":"a","data":{"n":2}}]}`)
	c.call(acme, 200, "POST", "/v1/tenants/acme/messages/"+amsg+"/retry", "")
	c.call(acme, 200, "POST", "/v1/tenants/acme/messages/recover", `{"since":"2020-01-01T00:00:00Z","until":"2030-01-01T00:00:00Z"}`)
	c.call(acme, 404, "GET", "/v1/tenants/acme/messages/"+msg, "") // the default tenant's
	c.call(acme, 403, "GET", "/v1/endpoints", "")
	c.call(acme, 403, "GET", "/v1/tenants", "")
	c.call(acme, 403, "GET", "/v1/tenants/other/endpoints", "")
	c.call(acme, 204, "DELETE", "/v1/tenants/acme/endpoints/"+aep, "")
	c.call(s, 400, "GET", "/v1/tenants/-bad/endpoints", "")
	c.call(s, 200, "GET", "/v1/tenants", "")
	c.call(s, 200, "GET", "/v1/tenants?limit=1", "")
	c.call(s, 200, "DELETE", "/v1/tenants/acme/tokens", "")
	c.call(acme, 401, "GET", "/v1/tenants/acme/endpoints", "")
	c.call(s, 204, "DELETE", "/v1/tenants/acme", "")
	c.call(s, 400, "POST", "/v1/tenants/acme/tokens", `{"ttl":"forever"}`)

	// Signing keys, cluster, backup and the open routes.
	c.call(s, 200, "POST", "/v1/signing-keys/rotate", "")
	cl := c.call(s, 200, "GET", "/v1/cluster", "")
	self := cl.json(t)["nodes"].([]any)[0].(map[string]any)
	c.call(s, 200, "POST", "/v1/cluster/nodes", `{"id":"`+self["id"].(string)+`","raft_addr":"`+self["raft_addr"].(string)+`"}`)
	c.call(s, 400, "POST", "/v1/cluster/nodes", `{"id":"n2","raft_addr":"nohost"}`)
	c.call(s, 409, "POST", "/v1/cluster/nodes", `{"id":"n2","raft_addr":"`+self["raft_addr"].(string)+`"}`)
	c.call(s, 404, "DELETE", "/v1/cluster/nodes/ghost", "")
	c.call(s, 409, "DELETE", "/v1/cluster/nodes/"+self["id"].(string), "")
	c.call(s, 200, "GET", "/v1/backup", "")
	c.call(s, 200, "GET", "/.well-known/jwks.json", "")
	c.call(s, 200, "GET", "/healthz", "")
	c.call(s, 200, "GET", "/readyz", "")
	c.call(s, 200, "GET", "/metrics", "")

	// A node catching up answers 503 with Retry-After, but GET /v1/cluster.
	s.api.catchingUp = func() (uint64, bool) { return 5000, true }
	c.call(s, 503, "GET", "/v1/messages", "")
	c.call(s, 503, "POST", "/v1/messages", `{"type":"a","data":{}}`)
	c.call(s, 200, "GET", "/v1/cluster", "")

	// Loopback mode: a foreign Host is 421, on /v1 and elsewhere.
	lo := startAPI(t, apiOptions{})
	c.call(lo, 421, "GET", "/v1/endpoints", "", "Host", "example.com")
	c.call(lo, 421, "GET", "/healthz", "", "Host", "example.com")

	for _, op := range docOperations(c.doc) {
		if c.covered[op] == 0 {
			t.Errorf("no call checked %s against %s", op, openAPIFile)
		}
	}
}
