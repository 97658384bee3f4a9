package main

import (
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// closedPort returns a loopback URL nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestClientUnreachable(t *testing.T) {
	t.Setenv("HERALD_SERVER", "")
	base := closedPort(t)
	for _, args := range [][]string{
		{"send", "--type", "a.b", "--data", "{}"},
		{"endpoints", "list"},
		{"endpoints", "create", "--url", "https://example.com"},
		{"messages", "get", "msg_1"},
		{"messages", "list"},
		{"messages", "retry", "msg_1"},
		{"cluster", "status"},
		{"tenants", "list"},
		{"endpoints", "list", "--tenant", "acme"},
	} {
		stdout, stderr, code := cli(t, append(args, "--server", base)...)
		if code != 1 || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q", args, code, stdout)
		}
		oneLine(t, stderr, "herald: cannot reach "+base+": connection refused")
	}
	// HERALD_SERVER is the default --server.
	t.Setenv("HERALD_SERVER", base)
	_, stderr, code := cli(t, "cluster", "status")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	oneLine(t, stderr, "cannot reach "+base)
}

func TestClientUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"send"},
		{"send", "--type", "a.b", "--data", "{not json"},
		{"send", "--type", "a.b", "--data", "@" + filepath.Join(dir, "missing.json")},
		{"send", "--type", "a.b", "--user-metadata", "nope", "--uri", "https://x"},
		{"send", "--type", "a.b", "stray"},
		{"send", "--type", "a.b", "--server", "ftp://example.com"},
		{"send", "--type", "a.b", "--server", "not a url"},
		{"send", "--bogus"},
		{"endpoints"},
		{"endpoints", "frobnicate"},
		{"endpoints", "create"},
		{"endpoints", "create", "--url", "https://x", "extra"},
		{"endpoints", "list", "extra"},
		{"endpoints", "get"},
		{"endpoints", "rotate-secret"},
		{"messages"},
		{"messages", "get"},
		{"messages", "get", "a", "b"},
		{"messages", "retry"},
		{"messages", "list", "--limit", "x"},
		{"messages", "list", "--limit", "-1"},
		{"messages", "recover"},
		{"cluster"},
		{"cluster", "status", "--verbose"},
		{"cluster", "status", "--tenant", "acme"},
		{"endpoints", "list", "--tenant", "bad/id"},
		{"endpoints", "get", "ep_1", "--tenant", "-x"},
		{"send", "--type", "a.b", "--tenant", "has space"},
		{"messages", "list", "--tenant", strings.Repeat("t", 65)},
		{"tenants"},
		{"tenants", "bogus"},
		{"tenants", "list", "extra"},
		{"tenants", "list", "--limit", "-1"},
		{"tenants", "delete"},
		{"tenants", "delete", "a", "b"},
		{"tenants", "delete", "a/b"},
		{"tenants", "token", "acme"},
		{"tenants", "token", "--ttl", "1h"},
		{"tenants", "token", "acme", "--ttl", "soon"},
		{"tenants", "token", "acme", "--ttl", "1h", "--tenant", "acme"},
		{"tenants", "revoke-tokens"},
		{"tenants", "revoke-tokens", ".x"},
	} {
		stdout, stderr, code := cli(t, args...)
		if code != 2 || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		// Our own checks print one "herald: …" line; the flag package's
		// errors come first, followed by the usage (run.go's parseFlags).
		first, _, _ := strings.Cut(stderr, "\n")
		if first == "" || strings.Contains(stderr, "goroutine") ||
			(!strings.HasPrefix(first, "herald: ") && !strings.Contains(first, "flag")) {
			t.Errorf("%q: stderr %q", args, stderr)
		}
	}
}

// fakeAPI records requests and answers with a fixed response.
type fakeAPI struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
	status int
	answer string
}

func newFakeAPI(t *testing.T, status int, answer string) *fakeAPI {
	f := &fakeAPI{status: status, answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		if strings.HasPrefix(f.answer, "{") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.answer)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no request")
	}
	return f.reqs[len(f.reqs)-1], f.bodies[len(f.bodies)-1]
}

func TestClientRequests(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_TENANT", "")
	f := newFakeAPI(t, 200, `{"id":"x","ok":true}`)
	data := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(data, []byte(`{"from": "file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args         []string
		method, path string
		body         string // JSON, compared semantically; "" for none
		header       [2]string
	}{
		{[]string{"send", "--type", "a.b", "--data", `{"n": 1}`, "--idempotency-key", "k1"},
			"POST", "/v1/messages", `{"type": "a.b", "data": {"n": 1}, "webhook_config": null}`, [2]string{"Idempotency-Key", "k1"}},
		{[]string{"send", "--type", "a.b", "--data", "@" + data, "--uri", "https://a.example", "--uri", "https://b.example", "--user-metadata", `{"m": 2}`},
			"POST", "/v1/messages", `{"type": "a.b", "data": {"from": "file"}, "webhook_config": {"uris": ["https://a.example", "https://b.example"], "user_metadata": {"m": 2}}}`, [2]string{}},
		{[]string{"endpoints", "create", "--url", "https://e.example", "--event-type", "a", "--event-type", "b", "--name", "n", "--rate-limit", "5"},
			"POST", "/v1/endpoints", `{"url": "https://e.example", "event_types": ["a", "b"], "name": "n", "rate_limit_per_s": 5}`, [2]string{}},
		{[]string{"endpoints", "list"}, "GET", "/v1/endpoints", "", [2]string{}},
		{[]string{"endpoints", "get", "ep_1"}, "GET", "/v1/endpoints/ep_1", "", [2]string{}},
		{[]string{"endpoints", "delete", "ep_1"}, "DELETE", "/v1/endpoints/ep_1", "", [2]string{}},
		{[]string{"endpoints", "ping", "ep_1"}, "POST", "/v1/endpoints/ep_1/ping", "", [2]string{}},
		{[]string{"endpoints", "rotate-secret", "ep_1", "--revoke-now"}, "POST", "/v1/endpoints/ep_1/rotate-secret", `{"revoke": "immediately"}`, [2]string{}},
		{[]string{"messages", "get", "msg_1"}, "GET", "/v1/messages/msg_1", "", [2]string{}},
		{[]string{"messages", "list", "--status", "failed", "--limit", "3", "--after", "msg_9"}, "GET", "/v1/messages?after=msg_9&limit=3&status=failed", "", [2]string{}},
		{[]string{"messages", "list", "--type", "order.paid"}, "GET", "/v1/messages?type=order.paid", "", [2]string{}},
		{[]string{"messages", "retry", "msg_1"}, "POST", "/v1/messages/msg_1/retry", "", [2]string{}},
		{[]string{"messages", "recover", "--since", "2026-01-01T00:00:00Z"}, "POST", "/v1/messages/recover", `{"since": "2026-01-01T00:00:00Z", "until": ""}`, [2]string{}},
		{[]string{"cluster", "status"}, "GET", "/v1/cluster", "", [2]string{}},

		// --tenant moves the endpoint and message routes under /v1/tenants/T.
		{[]string{"send", "--tenant", "acme", "--type", "a.b", "--idempotency-key", "k1"},
			"POST", "/v1/tenants/acme/messages", `{"type": "a.b", "data": {}, "webhook_config": null}`, [2]string{"Idempotency-Key", "k1"}},
		{[]string{"endpoints", "create", "--tenant", "acme", "--url", "https://e.example"},
			"POST", "/v1/tenants/acme/endpoints", `{"url": "https://e.example", "event_types": null, "name": "", "rate_limit_per_s": 0}`, [2]string{}},
		{[]string{"endpoints", "list", "--tenant", "acme"}, "GET", "/v1/tenants/acme/endpoints", "", [2]string{}},
		{[]string{"endpoints", "get", "ep_1", "--tenant", "a.b-c_D"}, "GET", "/v1/tenants/a.b-c_D/endpoints/ep_1", "", [2]string{}},
		{[]string{"endpoints", "delete", "--tenant=acme", "ep_1"}, "DELETE", "/v1/tenants/acme/endpoints/ep_1", "", [2]string{}},
		{[]string{"endpoints", "ping", "ep_1", "--tenant", "acme"}, "POST", "/v1/tenants/acme/endpoints/ep_1/ping", "", [2]string{}},
		{[]string{"endpoints", "rotate-secret", "ep_1", "--tenant", "acme"}, "POST", "/v1/tenants/acme/endpoints/ep_1/rotate-secret", `{"revoke": "after_24h"}`, [2]string{}},
		{[]string{"messages", "get", "msg_1", "--tenant", "acme"}, "GET", "/v1/tenants/acme/messages/msg_1", "", [2]string{}},
		{[]string{"messages", "list", "--tenant", "acme", "--limit", "3"}, "GET", "/v1/tenants/acme/messages?limit=3", "", [2]string{}},
		{[]string{"messages", "retry", "msg_1", "--tenant", "acme"}, "POST", "/v1/tenants/acme/messages/msg_1/retry", "", [2]string{}},
		{[]string{"messages", "recover", "--tenant", "acme", "--since", "2026-01-01T00:00:00Z"}, "POST", "/v1/tenants/acme/messages/recover", `{"since": "2026-01-01T00:00:00Z", "until": ""}`, [2]string{}},
		{[]string{"endpoints", "list", "--tenant", ""}, "GET", "/v1/endpoints", "", [2]string{}},

		{[]string{"tenants", "list"}, "GET", "/v1/tenants", "", [2]string{}},
		{[]string{"tenants", "list", "--limit", "2", "--after", "acme"}, "GET", "/v1/tenants?after=acme&limit=2", "", [2]string{}},
		{[]string{"tenants", "delete", "acme"}, "DELETE", "/v1/tenants/acme", "", [2]string{}},
		{[]string{"tenants", "token", "acme", "--ttl", "90m"}, "POST", "/v1/tenants/acme/tokens", `{"ttl": "90m"}`, [2]string{}},
		{[]string{"tenants", "revoke-tokens", "acme"}, "DELETE", "/v1/tenants/acme/tokens", "", [2]string{}},
	}
	for _, c := range cases {
		stdout, stderr, code := cli(t, append(c.args, "--server", f.URL+"/", "--api-token", "tk")...)
		if code != 0 {
			t.Errorf("%q: exit %d: %s", c.args, code, stderr)
			continue
		}
		if stdout != "{\n  \"id\": \"x\",\n  \"ok\": true\n}\n" {
			t.Errorf("%q: stdout %q", c.args, stdout)
		}
		r, body := f.last(t)
		if r.Method != c.method || r.URL.RequestURI() != c.path {
			t.Errorf("%q: sent %s %s, want %s %s", c.args, r.Method, r.URL.RequestURI(), c.method, c.path)
		}
		if r.Header.Get("Authorization") != "Bearer tk" {
			t.Errorf("%q: Authorization %q", c.args, r.Header.Get("Authorization"))
		}
		wantCT := ""
		if c.method == "POST" || c.method == "PUT" || c.method == "PATCH" {
			wantCT = "application/json" // on every write, body or not: the API requires it
		}
		if ct := r.Header.Get("Content-Type"); ct != wantCT {
			t.Errorf("%q: Content-Type %q, want %q", c.args, ct, wantCT)
		}
		if c.header[0] != "" && r.Header.Get(c.header[0]) != c.header[1] {
			t.Errorf("%q: %s = %q", c.args, c.header[0], r.Header.Get(c.header[0]))
		}
		switch {
		case c.body == "" && body != "":
			t.Errorf("%q: unexpected body %s", c.args, body)
		case c.body != "":
			var got, want any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Errorf("%q: body %q: %v", c.args, body, err)
			}
			json.Unmarshal([]byte(c.body), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q: body %s, want %s", c.args, body, c.body)
			}
		}
	}
}

func TestClientAPIErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		answer string
		want   string
	}{
		{404, `{"error": {"code": "not_found", "message": "message \"m\" not found"}}`, `herald: not_found: message "m" not found`},
		{503, `{"error": {"code": "unavailable", "message": "no leader"}}`, "herald: unavailable: no leader"},
		{502, "<html>Bad Gateway</html>\n<p>more</p>", "herald: HTTP 502: <html>Bad Gateway</html>"},
		{500, "", "herald: HTTP 500: Internal Server Error"},
	} {
		f := newFakeAPI(t, c.status, c.answer)
		stdout, stderr, code := cli(t, "messages", "get", "m", "--server", f.URL)
		if code != 1 || stdout != "" {
			t.Errorf("%d: exit %d, stdout %q", c.status, code, stdout)
		}
		oneLine(t, stderr, c.want)
	}
	// 204 prints nothing.
	f := newFakeAPI(t, 204, "")
	stdout, _, code := cli(t, "endpoints", "delete", "ep_1", "--server", f.URL)
	if code != 0 || stdout != "" {
		t.Errorf("204: exit %d, stdout %q", code, stdout)
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, c := range []struct {
		args []string
		pos  []string
		x    string
	}{
		{[]string{"ID"}, []string{"ID"}, ""},
		{[]string{"ID", "--x", "1"}, []string{"ID"}, "1"},
		{[]string{"--x", "1", "ID"}, []string{"ID"}, "1"},
		{[]string{"A", "--x=2", "B"}, []string{"A", "B"}, "2"},
		{[]string{"--", "--x"}, []string{"--x"}, ""},
		{nil, nil, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		x := fs.String("x", "", "")
		pos, err := parseInterleaved(fs, c.args)
		if err != nil || !reflect.DeepEqual(pos, c.pos) || *x != c.x {
			t.Errorf("%q: pos %q x %q err %v; want %q %q", c.args, pos, *x, err, c.pos, c.x)
		}
	}
}

// TestClientTenantEnv: HERALD_TENANT is the default --tenant of the
// endpoint, message and send commands, and of no other.
func TestClientTenantEnv(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_TENANT", "envt")
	f := newFakeAPI(t, 200, `{}`)
	for _, c := range []struct {
		args []string
		path string
	}{
		{[]string{"endpoints", "get", "ep_1"}, "/v1/tenants/envt/endpoints/ep_1"},
		{[]string{"messages", "list"}, "/v1/tenants/envt/messages"},
		{[]string{"send", "--type", "a.b"}, "/v1/tenants/envt/messages"},
		{[]string{"endpoints", "list", "--tenant", "flag"}, "/v1/tenants/flag/endpoints"},
		{[]string{"endpoints", "list", "--tenant", ""}, "/v1/endpoints"},
		{[]string{"cluster", "status"}, "/v1/cluster"},
		{[]string{"tenants", "delete", "other"}, "/v1/tenants/other"},
		{[]string{"tenants", "list"}, "/v1/tenants"},
	} {
		if _, stderr, code := cli(t, append(c.args, "--server", f.URL)...); code != 0 {
			t.Errorf("%q: exit %d: %s", c.args, code, stderr)
			continue
		}
		if r, _ := f.last(t); r.URL.RequestURI() != c.path {
			t.Errorf("%q with HERALD_TENANT=envt: sent %s, want %s", c.args, r.URL.RequestURI(), c.path)
		}
	}
	t.Setenv("HERALD_TENANT", "bad/tenant")
	if _, stderr, code := cli(t, "endpoints", "list", "--server", f.URL); code != 2 {
		t.Errorf("a bad HERALD_TENANT: exit %d", code)
	} else {
		oneLine(t, stderr, `--tenant "bad/tenant"`)
	}
}
