package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/engine"
)

// testAPI is an API server over a real single-node engine.
type testAPI struct {
	*httptest.Server
	e     *engine.Engine
	api   *api
	token string
}

type apiOptions struct {
	token         string
	allowPrivate  bool // default in startAPI: true
	denyPrivate   bool
	retrySchedule []time.Duration  // default: one retry after 50ms
	now           func() time.Time // the engine's clock; default time.Now
}

// startAPI opens a single-node engine in a temp dir, waits until it leads,
// and serves the API over it on 127.0.0.1.
func startAPI(t *testing.T, opts apiOptions) *testAPI {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := newMetrics()
	schedule := opts.retrySchedule
	if schedule == nil {
		schedule = []time.Duration{50 * time.Millisecond}
	}
	e, err := engine.Open(context.Background(), engine.Config{
		DataDir:              t.TempDir(),
		RaftAddr:             "127.0.0.1:0",
		AllowPrivateNetworks: !opts.denyPrivate,
		AttemptTimeout:       5 * time.Second,
		RetrySchedule:        schedule,
		Logger:               log,
		OnAttempt:            m.observeAttempt,
		Now:                  opts.now,
	})
	if err != nil {
		t.Fatalf("engine.Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	m.watch(e)
	waitUntil(t, 10*time.Second, "leadership", func() bool { return e.IsLeader() && e.Ready() })
	a := newAPI(e, opts.token, log, m).(*api)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &testAPI{Server: srv, e: e, api: a, token: opts.token}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

// response is one API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic map.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// errCode returns the error code of an error answer, checking its shape.
func (r response) errCode(t *testing.T) string {
	t.Helper()
	var eb struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == nil || eb.Error.Message == "" {
		t.Fatalf("not an error body: %q", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	return eb.Error.Code
}

func (r response) errMessage(t *testing.T) string {
	t.Helper()
	r.errCode(t)
	return r.json(t)["error"].(map[string]any)["message"].(string)
}

// call sends a request with the server's token; headers come in pairs. A
// POST, PUT or PATCH carries Content-Type: application/json unless headers
// say otherwise; a header given as "" is removed; "Host" sets the Host.
func (s *testAPI) call(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	switch method {
	case "POST", "PUT", "PATCH":
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect checks the status code.
func expect(t *testing.T, r response, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// hook is an httptest receiver that records request bodies and headers.
type hook struct {
	*httptest.Server
	mu     sync.Mutex
	got    []http.Header
	bodies [][]byte
	status int // answer; 0 means 204
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, r.Header.Clone())
		h.bodies = append(h.bodies, b)
		status := h.status
		h.mu.Unlock()
		if status == 0 {
			status = http.StatusNoContent
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func (h *hook) setStatus(code int) {
	h.mu.Lock()
	h.status = code
	h.mu.Unlock()
}

func (h *hook) header(i int) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[i]
}

func TestAPIEndpoints(t *testing.T) {
	s := startAPI(t, apiOptions{})
	rcv := newHook(t)

	r := expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "`+rcv.URL+`/hook", "name": "billing", "event_types": ["batch.succeeded"]}`), 201)
	ep := r.json(t)
	id, _ := ep["id"].(string)
	if !strings.HasPrefix(id, "ep_") || ep["state"] != "enabled" || ep["name"] != "billing" || ep["url"] != rcv.URL+"/hook" {
		t.Fatalf("created endpoint = %s", r.body)
	}
	secret, _ := ep["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < 30 {
		t.Fatalf("secret = %q, want a full whsec_ secret", secret)
	}
	if _, err := time.Parse(time.RFC3339, ep["created_at"].(string)); err != nil {
		t.Errorf("created_at: %v", err)
	}

	// Without event types it subscribes to everything: an empty list.
	all := expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "`+rcv.URL+`/all"}`), 201).json(t)
	if types, ok := all["event_types"].([]any); !ok || len(types) != 0 {
		t.Errorf("event_types = %v, want []", all["event_types"])
	}

	got := expect(t, s.call(t, "GET", "/v1/endpoints/"+id, ""), 200).json(t)
	if got["id"] != id || got["secret"] == secret || !strings.HasPrefix(got["secret"].(string), "whsec_") {
		t.Errorf("GET endpoint = %v; the secret must be truncated", got)
	}

	list := expect(t, s.call(t, "GET", "/v1/endpoints", ""), 200).json(t)
	if data, _ := list["data"].([]any); len(data) != 2 {
		t.Fatalf("list = %v, want 2 endpoints", list)
	}

	up := expect(t, s.call(t, "PATCH", "/v1/endpoints/"+id, `{"state": "disabled", "name": "renamed"}`), 200).json(t)
	if up["state"] != "disabled" || up["name"] != "renamed" || up["url"] != rcv.URL+"/hook" {
		t.Errorf("PATCH = %v", up)
	}
	if c := expect(t, s.call(t, "PATCH", "/v1/endpoints/"+id, `{"state": "paused"}`), 400).errCode(t); c != "invalid_argument" {
		t.Errorf("bad state code = %q", c)
	}
	// A disabled endpoint is not pinged: 409 saying so, and no message.
	r = expect(t, s.call(t, "POST", "/v1/endpoints/"+id+"/ping", ""), 409)
	if code, msg := r.errCode(t), r.errMessage(t); code != "conflict" || msg != "endpoint "+id+" is disabled: enable it first" {
		t.Errorf("ping of a disabled endpoint: %s %q", code, msg)
	}
	if data, _ := expect(t, s.call(t, "GET", "/v1/messages", ""), 200).json(t)["data"].([]any); len(data) != 0 {
		t.Errorf("a refused ping made a message: %v", data)
	}
	expect(t, s.call(t, "PATCH", "/v1/endpoints/"+id, `{"state": "enabled"}`), 200)

	rot := expect(t, s.call(t, "POST", "/v1/endpoints/"+id+"/rotate-secret", ""), 200).json(t)
	if ns, _ := rot["secret"].(string); !strings.HasPrefix(ns, "whsec_") || ns == secret {
		t.Errorf("rotate-secret = %v", rot)
	}
	expect(t, s.call(t, "POST", "/v1/endpoints/"+id+"/rotate-secret", `{"revoke": "immediately"}`), 200)
	if m := expect(t, s.call(t, "POST", "/v1/endpoints/"+id+"/rotate-secret", `{"revoke": "tomorrow"}`), 400).errMessage(t); !strings.Contains(m, "revoke") {
		t.Errorf("bad revoke message = %q", m)
	}

	ping := expect(t, s.call(t, "POST", "/v1/endpoints/"+id+"/ping", ""), 202).json(t)
	if pid, _ := ping["id"].(string); !strings.HasPrefix(pid, "msg_") || ping["type"] != "webhook.ping" {
		t.Fatalf("ping = %v", ping)
	}
	waitUntil(t, 10*time.Second, "the ping", func() bool { return rcv.count() == 1 })
	if wid := rcv.header(0).Get("webhook-id"); wid != ping["id"] {
		t.Errorf("webhook-id = %q, want %v", wid, ping["id"])
	}

	expect(t, s.call(t, "DELETE", "/v1/endpoints/"+id, ""), 204)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/endpoints/" + id, ""},
		{"GET", "/v1/endpoints/ep_missing", ""},
		{"PATCH", "/v1/endpoints/ep_missing", `{"name": "x"}`},
		{"DELETE", "/v1/endpoints/ep_missing", ""},
		{"POST", "/v1/endpoints/ep_missing/rotate-secret", ""},
		{"POST", "/v1/endpoints/ep_missing/ping", ""},
	} {
		r := s.call(t, c.method, c.path, c.body)
		if r.status != 404 || r.errCode(t) != "not_found" {
			t.Errorf("%s %s = %d %s, want 404 not_found", c.method, c.path, r.status, r.body)
		}
	}
}

func TestAPIMessages(t *testing.T) {
	s := startAPI(t, apiOptions{})
	rcv := newHook(t)
	expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "`+rcv.URL+`"}`), 201)

	r := expect(t, s.call(t, "POST", "/v1/messages", `{"type": "batch.succeeded", "data": {"batch": 7}}`), 202)
	msg := r.json(t)
	id, _ := msg["id"].(string)
	if !strings.HasPrefix(id, "msg_") || msg["type"] != "batch.succeeded" || msg["status"] != "pending" {
		t.Fatalf("created = %s", r.body)
	}
	if ts, _ := msg["created_at"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("created_at = %q, want RFC 3339 UTC", ts)
	}

	waitUntil(t, 10*time.Second, "delivery", func() bool {
		return s.call(t, "GET", "/v1/messages/"+id, "").json(t)["status"] == "succeeded"
	})
	full := expect(t, s.call(t, "GET", "/v1/messages/"+id, ""), 200).json(t)
	ds, _ := full["deliveries"].([]any)
	if len(ds) != 1 {
		t.Fatalf("deliveries = %v", full["deliveries"])
	}
	d := ds[0].(map[string]any)
	if d["status"] != "succeeded" || d["attempt_count"] != 1.0 || d["last_status_code"] != 204.0 {
		t.Errorf("delivery = %v", d)
	}
	if as, _ := d["attempts"].([]any); len(as) != 1 {
		t.Errorf("attempts = %v", d["attempts"])
	}
	var env map[string]any
	if err := json.Unmarshal(rcv.bodies[0], &env); err != nil || env["type"] != "batch.succeeded" || env["version"] != "v1" {
		t.Errorf("receiver got %s", rcv.bodies[0])
	}

	// Idempotency: 202 then 200 with the same id, and nothing new created.
	first := expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`, "Idempotency-Key", "k-1"), 202).json(t)
	again := expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`, "Idempotency-Key", "k-1"), 200)
	if again.json(t)["id"] != first["id"] {
		t.Errorf("repeat id = %v, want %v", again.json(t)["id"], first["id"])
	}
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed header missing")
	}
	if reused := s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {"other": 1}}`, "Idempotency-Key", "k-1"); reused.status != 422 ||
		reused.errCode(t) != "idempotency_key_reused" {
		t.Errorf("the key for another request = %d %s, want 422 idempotency_key_reused", reused.status, reused.body)
	}
	if too := s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`, "Idempotency-Key", strings.Repeat("k", 300)); too.status != 400 {
		t.Errorf("long key = %d", too.status)
	}

	// Listing, newest first, with a cursor.
	page := expect(t, s.call(t, "GET", "/v1/messages?limit=1", ""), 200).json(t)
	data, _ := page["data"].([]any)
	cursor, _ := page["next_cursor"].(string)
	if len(data) != 1 || data[0].(map[string]any)["id"] != first["id"] || cursor == "" {
		t.Fatalf("page 1 = %v", page)
	}
	rest := expect(t, s.call(t, "GET", "/v1/messages?after="+cursor, ""), 200).json(t)
	if data, _ := rest["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id || rest["next_cursor"] != nil {
		t.Fatalf("page 2 = %v", rest)
	}
	if data, _ := expect(t, s.call(t, "GET", "/v1/messages?status=failed", ""), 200).json(t)["data"].([]any); len(data) != 0 {
		t.Errorf("failed messages = %v", data)
	}
	if data, _ := expect(t, s.call(t, "GET", "/v1/messages?type=batch.succeeded", ""), 200).json(t)["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != id {
		t.Errorf("messages of type batch.succeeded = %v", data)
	}
	if data, _ := expect(t, s.call(t, "GET", "/v1/tenants/default/messages?type=a.b", ""), 200).json(t)["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != first["id"] {
		t.Errorf("messages of type a.b = %v", data)
	}
	for _, q := range []string{"status=bogus", "type=a%20b", "type=" + strings.Repeat("t", 257), "limit=abc", "limit=0", "limit=100000", "after=garbage"} {
		if c := expect(t, s.call(t, "GET", "/v1/messages?"+q, ""), 400).errCode(t); c != "invalid_argument" {
			t.Errorf("%s: code %q", q, c)
		}
	}

	// A message that fails (one retry in the test schedule), then retry
	// and recover re-queue it.
	waitUntil(t, 10*time.Second, "earlier deliveries", func() bool {
		data, _ := s.call(t, "GET", "/v1/messages?status=pending", "").json(t)["data"].([]any)
		return len(data) == 0
	})
	rcv.setStatus(500)
	failed := expect(t, s.call(t, "POST", "/v1/messages", `{"type": "c.d", "data": {}}`), 202).json(t)
	fid := failed["id"].(string)
	waitUntil(t, 10*time.Second, "failure", func() bool {
		return s.call(t, "GET", "/v1/messages/"+fid, "").json(t)["status"] == "failed"
	})
	rq := expect(t, s.call(t, "POST", "/v1/messages/"+fid+"/retry", ""), 200).json(t)
	if _, hasReason := rq["reason"]; rq["requeued"] != 1.0 || hasReason {
		t.Errorf("retry = %v", rq)
	}
	// Nothing to re-queue: the answer says why.
	rq = expect(t, s.call(t, "POST", "/v1/messages/"+id+"/retry", ""), 200).json(t)
	if rq["requeued"] != 0.0 || rq["reason"] != "no failed deliveries: 1 succeeded" {
		t.Errorf("retry of a delivered message = %v", rq)
	}
	waitUntil(t, 10*time.Second, "failure again", func() bool {
		return s.call(t, "GET", "/v1/messages/"+fid, "").json(t)["status"] == "failed"
	})
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	rc := expect(t, s.call(t, "POST", "/v1/messages/recover", `{"since": "`+since+`"}`), 200).json(t)
	if _, hasReason := rc["reason"]; rc["requeued"] != 1.0 || hasReason {
		t.Errorf("recover = %v", rc)
	}
	rc = expect(t, s.call(t, "POST", "/v1/messages/recover", `{"since": "2001-01-01T00:00:00Z", "until": "2001-01-02T00:00:00Z"}`), 200).json(t)
	if rc["requeued"] != 0.0 || rc["reason"] != "no message was created between 2001-01-01T00:00:00Z and 2001-01-02T00:00:00Z" {
		t.Errorf("recover of an empty window = %v", rc)
	}
	for _, body := range []string{`{}`, `{"since": "yesterday"}`, `{"since": "` + since + `", "until": "later"}`, `{"since": "` + since + `", "until": "` + since + `"}`} {
		if c := expect(t, s.call(t, "POST", "/v1/messages/recover", body), 400).errCode(t); c != "invalid_argument" {
			t.Errorf("recover %s: code %q", body, c)
		}
	}

	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/messages/msg_missing"},
		{"POST", "/v1/messages/msg_missing/retry"},
	} {
		if r := s.call(t, c.method, c.path, ""); r.status != 404 || r.errCode(t) != "not_found" || !strings.Contains(r.errMessage(t), "msg_missing") {
			t.Errorf("%s %s = %d %s", c.method, c.path, r.status, r.body)
		}
	}
}

func TestAPIOverride(t *testing.T) {
	s := startAPI(t, apiOptions{})
	rcv := newHook(t)
	body := `{"type": "video.rendered", "data": {"v": 1}, "webhook_config": {"uris": ["` + rcv.URL + `/cb"], "user_metadata": {"job": "j1"}}}`
	id := expect(t, s.call(t, "POST", "/v1/messages", body), 202).json(t)["id"]
	waitUntil(t, 10*time.Second, "override delivery", func() bool { return rcv.count() == 1 })
	h := rcv.header(0)
	if h.Get("webhook-id") != id || !strings.HasPrefix(h.Get("webhook-signature"), "v1a,") {
		t.Errorf("override headers = %v", h)
	}
	if !bytes.Contains(rcv.bodies[0], []byte(`"user_metadata":{"job":"j1"}`)) {
		t.Errorf("override body = %s", rcv.bodies[0])
	}
}

func TestAPIBadRequests(t *testing.T) {
	s := startAPI(t, apiOptions{})
	big := `{"type": "a.b", "data": {"x": "` + strings.Repeat("a", engine.MaxPayloadBytes) + `"}}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code, mention            string
	}{
		{"malformed JSON", "POST", "/v1/messages", `{"type": `, 400, "invalid_argument", "JSON"},
		{"not JSON", "POST", "/v1/messages", `hello`, 400, "invalid_argument", "JSON"},
		{"empty body", "POST", "/v1/messages", ``, 400, "invalid_argument", "required"},
		{"array body", "POST", "/v1/messages", `[1]`, 400, "invalid_argument", "object"},
		{"trailing data", "POST", "/v1/messages", `{"type": "a.b", "data": {}} {}`, 400, "invalid_argument", "after"},
		{"unknown field", "POST", "/v1/messages", `{"type": "a.b", "data": {}, "colour": 1}`, 400, "invalid_argument", "colour"},
		{"unknown nested field", "POST", "/v1/messages", `{"type": "a.b", "data": {}, "webhook_config": {"urls": []}}`, 400, "invalid_argument", "urls"},
		{"wrong field type", "POST", "/v1/messages", `{"type": 5, "data": {}}`, 400, "invalid_argument", "type"},
		{"invalid type", "POST", "/v1/messages", `{"type": "has space", "data": {}}`, 400, "invalid_argument", "type"},
		{"missing type", "POST", "/v1/messages", `{"data": {}}`, 400, "invalid_argument", "type"},
		{"data not an object", "POST", "/v1/messages", `{"type": "a.b", "data": [1]}`, 400, "invalid_argument", "data"},
		{"missing data", "POST", "/v1/messages", `{"type": "a.b"}`, 400, "invalid_argument", "data"},
		{"empty uris", "POST", "/v1/messages", `{"type": "a.b", "data": {}, "webhook_config": {"uris": []}}`, 400, "invalid_argument", "uris"},
		{"bad override uri", "POST", "/v1/messages", `{"type": "a.b", "data": {}, "webhook_config": {"uris": ["ftp://x"]}}`, 400, "invalid_argument", "uris"},
		{"too large", "POST", "/v1/messages", big, 413, "payload_too_large", "bytes"},
		{"endpoint bad URL", "POST", "/v1/endpoints", `{"url": "not a url"}`, 400, "invalid_argument", "url"},
		{"endpoint no URL", "POST", "/v1/endpoints", `{}`, 400, "invalid_argument", "url"},
		{"endpoint bad scheme", "POST", "/v1/endpoints", `{"url": "gopher://example.com"}`, 400, "invalid_argument", "url"},
		{"endpoint bad event type", "POST", "/v1/endpoints", `{"url": "https://example.com", "event_types": ["a b"]}`, 400, "invalid_argument", "event_types"},
		{"endpoint negative rate", "POST", "/v1/endpoints", `{"url": "https://example.com", "rate_limit_per_s": -1}`, 400, "invalid_argument", "rate_limit_per_s"},
		{"endpoint unknown field", "POST", "/v1/endpoints", `{"url": "https://example.com", "secret": "x"}`, 400, "invalid_argument", "secret"},
		{"ping with a body", "POST", "/v1/endpoints/ep_x/ping", `{"x": 1}`, 400, "invalid_argument", "x"},
		{"unknown route", "GET", "/v1/nothing", ``, 404, "not_found", "/v1/nothing"},
		{"unknown top-level route", "GET", "/favicon.ico", ``, 404, "not_found", "favicon"},
		{"wrong method", "DELETE", "/v1/messages", ``, 405, "method_not_allowed", "DELETE"},
		{"wrong method on item", "PUT", "/v1/endpoints/ep_x", ``, 405, "method_not_allowed", "PUT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.call(t, c.method, c.path, c.body)
			if r.status != c.status {
				t.Fatalf("status = %d, want %d; body %.300s", r.status, c.status, r.body)
			}
			if code := r.errCode(t); code != c.code {
				t.Errorf("code = %q, want %q", code, c.code)
			}
			if m := r.errMessage(t); !strings.Contains(m, c.mention) {
				t.Errorf("message %q does not mention %q", m, c.mention)
			}
			if strings.Contains(string(r.body), "goroutine") || strings.Contains(string(r.body), "engine:") {
				t.Errorf("body leaks internals: %s", r.body)
			}
		})
	}
	if allow := s.call(t, "DELETE", "/v1/messages", "").header.Get("Allow"); !strings.Contains(allow, "POST") || !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q", allow)
	}
}

func TestAPIAuth(t *testing.T) {
	s := startAPI(t, apiOptions{token: "s3cret"})
	anon := &testAPI{Server: s.Server}
	wrong := &testAPI{Server: s.Server, token: "s3cre"}
	for _, c := range []struct {
		who  *testAPI
		name string
	}{{anon, "no token"}, {wrong, "wrong token"}} {
		for _, path := range []string{"/v1/endpoints", "/v1/messages", "/v1/cluster", "/v1/nothing", "/v1/tenants", "/v1/tenants/a/endpoints"} {
			r := c.who.call(t, "GET", path, "")
			if r.status != 401 || r.errCode(t) != "unauthorized" {
				t.Errorf("%s: GET %s = %d %s", c.name, path, r.status, r.body)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate = %q", c.name, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	if r := anon.call(t, "GET", "/v1/endpoints", "", "Authorization", "Basic czNjcmV0"); r.status != 401 {
		t.Errorf("Basic auth accepted: %d", r.status)
	}
	expect(t, s.call(t, "GET", "/v1/endpoints", ""), 200)
	expect(t, anon.call(t, "GET", "/v1/endpoints", "", "Authorization", "bearer s3cret"), 200)
	// Outside /v1/ no token is needed.
	expect(t, anon.call(t, "GET", "/.well-known/jwks.json", ""), 200)
	expect(t, anon.call(t, "GET", "/healthz", ""), 200)
	expect(t, anon.call(t, "GET", "/readyz", ""), 200)
	expect(t, anon.call(t, "GET", "/metrics", ""), 200)
}

func TestAPISSRFGuard(t *testing.T) {
	s := startAPI(t, apiOptions{denyPrivate: true})
	for _, u := range []string{"http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://10.0.0.1/hook", "http://[::1]:9/", "http://169.254.169.254/latest"} {
		r := s.call(t, "POST", "/v1/endpoints", `{"url": "`+u+`"}`)
		if r.status != 400 || r.errCode(t) != "invalid_argument" || !strings.Contains(r.errMessage(t), "url") {
			t.Errorf("endpoint %s = %d %s, want 400 invalid_argument", u, r.status, r.body)
		}
		r = s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}, "webhook_config": {"uris": ["`+u+`"]}}`)
		if r.status != 400 || r.errCode(t) != "invalid_argument" {
			t.Errorf("override %s = %d %s, want 400 invalid_argument", u, r.status, r.body)
		}
	}
	if data, _ := expect(t, s.call(t, "GET", "/v1/endpoints", ""), 200).json(t)["data"].([]any); len(data) != 0 {
		t.Errorf("endpoints were created: %v", data)
	}
}

func TestAPIKeysClusterHealthMetrics(t *testing.T) {
	s := startAPI(t, apiOptions{})

	// The leader creates the first signing key just after it starts leading.
	waitUntil(t, 10*time.Second, "a signing key", func() bool {
		keys, _ := s.call(t, "GET", "/.well-known/jwks.json", "").json(t)["keys"].([]any)
		return len(keys) > 0
	})
	r := expect(t, s.call(t, "GET", "/.well-known/jwks.json", ""), 200)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("JWKS Content-Type = %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "max-age=300") {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
	keys, _ := r.json(t)["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["kty"] != "OKP" || keys[0].(map[string]any)["kid"] == "" {
		t.Fatalf("JWKS = %s", r.body)
	}
	rot := expect(t, s.call(t, "POST", "/v1/signing-keys/rotate", ""), 200).json(t)
	if keys, _ := rot["keys"].([]any); len(keys) != 2 {
		t.Errorf("after rotation JWKS = %v, want the new and the retired key", rot)
	}
	if keys, _ := expect(t, s.call(t, "GET", "/.well-known/jwks.json", ""), 200).json(t)["keys"].([]any); len(keys) != 2 {
		t.Errorf("published keys = %d, want 2", len(keys))
	}

	cl := expect(t, s.call(t, "GET", "/v1/cluster", ""), 200).json(t)
	nodes, _ := cl["nodes"].([]any)
	if cl["leader"] != "node1" || len(nodes) != 1 || nodes[0].(map[string]any)["state"] != "leader" {
		t.Errorf("cluster = %v", cl)
	}
	for _, k := range []string{"term", "commit_index", "applied_index"} {
		if _, ok := cl[k].(float64); !ok {
			t.Errorf("cluster %s = %v", k, cl[k])
		}
	}

	if r := expect(t, s.call(t, "GET", "/healthz", ""), 200); strings.TrimSpace(string(r.body)) != "ok" {
		t.Errorf("healthz = %q", r.body)
	}
	expect(t, s.call(t, "GET", "/readyz", ""), 200)

	// A message through the API shows in the metrics.
	rcv := newHook(t)
	expect(t, s.call(t, "POST", "/v1/endpoints", `{"url": "`+rcv.URL+`"}`), 201)
	expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`), 202)
	waitUntil(t, 10*time.Second, "delivery", func() bool { return rcv.count() == 1 })
	waitUntil(t, 10*time.Second, "attempt metric", func() bool {
		return strings.Contains(string(s.call(t, "GET", "/metrics", "").body), `herald_attempts_total{result="success"} 1`)
	})
	m := expect(t, s.call(t, "GET", "/metrics", ""), 200)
	if ct := m.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("metrics Content-Type = %q", ct)
	}
	for _, want := range []string{
		"# TYPE herald_messages_accepted_total counter",
		"herald_messages_accepted_total 1",
		`herald_deliveries_finished_total{status="succeeded"} 1`,
		`herald_http_requests_total{code="202",method="POST",route="POST /v1/messages"} 1`,
		"herald_leader 1",
		"herald_ready 1",
		"herald_deliveries_scheduled 0",
		"herald_raft_applied_index ",
		"herald_store_bytes ",
		"go_goroutines",
	} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Once the engine stops, writes are 503 with Retry-After and readyz fails.
	if err := s.e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = expect(t, s.call(t, "POST", "/v1/messages", `{"type": "a.b", "data": {}}`), 503)
	if r.errCode(t) != "unavailable" || r.header.Get("Retry-After") != "1" {
		t.Errorf("after stop: %s, Retry-After %q", r.body, r.header.Get("Retry-After"))
	}
	expect(t, s.call(t, "GET", "/readyz", ""), 503)
	expect(t, s.call(t, "GET", "/healthz", ""), 200)
}

// TestAPIQueryParameters checks that query strings are held to what each
// route takes: limit from 1 to 250 and only when given, well-formed
// cursors, no unknown, repeated or empty parameters; routes outside /v1
// ignore them.
func TestAPIQueryParameters(t *testing.T) {
	s := startAPI(t, apiOptions{})
	msg := expect(t, s.call(t, "POST", "/v1/tenants/acme/messages", `{"type": "a.b", "data": {}}`), 202).json(t)["id"].(string)
	for _, c := range []struct{ path, mention string }{
		{"/v1/messages?limit=0", "limit"},
		{"/v1/messages?limit=-1", "limit"},
		{"/v1/messages?limit=abc", "limit"},
		{"/v1/messages?limit=1.5", "limit"},
		{"/v1/messages?limit=251", "limit"},
		{"/v1/messages?limit=", "limit"},
		{"/v1/messages?limit=1&limit=2", "limit"},
		{"/v1/messages?after=garbage", "after"},
		{"/v1/messages?after=", "after"},
		{"/v1/messages?after=" + strings.ToLower(msg), "after"},
		{"/v1/messages?status=", "status"},
		{"/v1/messages?type=", "type"},
		{"/v1/messages?colour=red", `"colour"`},
		{"/v1/messages?%zz", "query"},
		{"/v1/tenants/acme/messages?after=garbage", "after"},
		{"/v1/tenants/acme/messages?limit=0", "limit"},
		{"/v1/tenants?limit=0", "limit"},
		{"/v1/tenants?limit=", "limit"},
		{"/v1/tenants?after=no%20spaces", "after"},
		{"/v1/tenants?after=", "after"},
		{"/v1/tenants?status=pending", `"status"`},
		{"/v1/endpoints?limit=10", `"limit"`},
		{"/v1/endpoints/ep_x?verbose=1", `"verbose"`},
		{"/v1/messages/" + msg + "?expand=attempts", `"expand"`},
		{"/v1/cluster?verbose", `"verbose"`},
		{"/v1/backup?format=json", `"format"`},
	} {
		r := s.call(t, "GET", c.path, "")
		if r.status != 400 || r.errCode(t) != "invalid_argument" || !strings.Contains(r.errMessage(t), c.mention) {
			t.Errorf("GET %s = %d %s, want 400 invalid_argument mentioning %s", c.path, r.status, r.body, c.mention)
		}
	}
	if m := s.call(t, "GET", "/v1/endpoints?limit=10", "").errMessage(t); m != `unknown query parameter "limit": this route takes none` {
		t.Errorf("unknown parameter message = %q", m)
	}
	if m := s.call(t, "GET", "/v1/messages?colour=red", "").errMessage(t); m != `unknown query parameter "colour": this route takes status, type, limit, after` {
		t.Errorf("unknown parameter message = %q", m)
	}

	// Every /v1 route refuses a parameter it does not take, before acting.
	for _, pattern := range s.api.patterns {
		method, path, _ := strings.Cut(pattern, " ")
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		path = strings.NewReplacer("{tenant}", "acme", "{id}", "x1").Replace(path)
		r := s.call(t, method, path+"?bogus=1", "")
		if r.status != 400 || r.errCode(t) != "invalid_argument" || !strings.Contains(r.errMessage(t), `"bogus"`) {
			t.Errorf("%s %s?bogus=1 = %d %s", method, path, r.status, r.body)
		}
	}
	if r := s.call(t, "GET", "/v1/tenants/acme/messages/"+msg, ""); r.status != 200 {
		t.Errorf("acme's message after DELETE /v1/tenants/acme?bogus=1: %d", r.status)
	}

	// What the routes take still works.
	for _, path := range []string{
		"/v1/messages?limit=1", "/v1/messages?limit=250", "/v1/messages?status=failed",
		"/v1/tenants/acme/messages?limit=1&after=" + msg, "/v1/tenants?limit=1&after=a",
		"/.well-known/jwks.json?v=2", "/healthz?probe=1",
	} {
		expect(t, s.call(t, "GET", path, ""), 200)
	}
	page := expect(t, s.call(t, "GET", "/v1/tenants/acme/messages?after="+msg, ""), 200).json(t)
	if data, _ := page["data"].([]any); len(data) != 0 || page["next_cursor"] != nil {
		t.Errorf("the page after the only message = %v", page)
	}
}

// TestServeDataDirInUse checks that `herald serve` on a data dir another
// herald is using stops at once with one line naming the file and the
// process.
func TestServeDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(context.Background(), engine.Config{DataDir: dir, RaftAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	start := time.Now()
	_, stderr, code := cli(t, "serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("serve took %v to give up", took)
	}
	oneLine(t, stderr, fmt.Sprintf("%s is locked by another herald (pid %d)?", filepath.Join(dir, "state.db"), os.Getpid()))
}
