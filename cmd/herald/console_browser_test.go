package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// consoleDir holds the browser test's script and its pinned npm packages.
var consoleDir = filepath.Join("..", "..", "testdata", "console")

// TestConsoleBrowser drives the web console in headless Chromium
// (testdata/console/console.mjs, with playwright-core) against a real
// herald serve seeded through the API: sign-in, a failed message retried,
// an endpoint disabled and enabled, CSRF refusals, a tenant's portal, and
// no request leaving the server's origin. Without Node, the npm packages
// or Chromium it fails rather than skips, so that CI cannot pass without
// it. Screenshots go to testdata/console/screenshots.
func TestConsoleBrowser(t *testing.T) {
	nodeBin, chromium := consoleTools(t)
	t.Setenv("HERALD_API_TOKEN", "")
	const admin = "console-admin-token"
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	srv := startServe(t, "--api-token", admin, "--allow-private-networks", "--retry-schedule", "100ms,100ms")
	waitReady(t, http.DefaultClient, srv.base)

	call := func(method, path string, body any, out any) {
		t.Helper()
		consoleCall(t, srv.base, admin, method, path, body, out)
	}
	var ep, msg, tenantMsg struct{ ID, Status string }
	call("POST", "/v1/endpoints", map[string]any{"url": failing.URL}, &ep)
	call("POST", "/v1/messages", map[string]any{"type": "order.created", "data": map[string]any{"order": 1}}, &msg)
	call("POST", "/v1/tenants/acme/endpoints", map[string]any{"url": failing.URL}, nil)
	call("POST", "/v1/tenants/acme/messages", map[string]any{"type": "order.created", "data": map[string]any{"order": 2}}, &tenantMsg)
	var tok struct{ Token string }
	call("POST", "/v1/tenants/acme/tokens", map[string]any{"ttl": "1h"}, &tok)
	eventually(t, 20*time.Second, "the message to fail", func() bool {
		var m struct{ Status string }
		call("GET", "/v1/messages/"+msg.ID, nil, &m)
		return m.Status == "failed"
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "console.mjs")
	cmd.Dir = consoleDir
	cmd.Env = cleanEnv("CONSOLE_URL="+srv.base, "CONSOLE_ADMIN_TOKEN="+admin, "CONSOLE_TENANT=acme",
		"CONSOLE_TENANT_TOKEN="+tok.Token, "CONSOLE_MESSAGE_ID="+msg.ID, "CONSOLE_ENDPOINT_ID="+ep.ID,
		"CONSOLE_TENANT_MESSAGE_ID="+tenantMsg.ID, "CONSOLE_SCREENSHOTS=screenshots", "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("node console.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the console browser test failed: %v", err)
	}
}

// consoleTools finds Node, the pinned playwright-core and Chromium, and
// fails the test saying how to install what is missing.
func consoleTools(t *testing.T) (nodeBin, chromium string) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the console browser test needs Node.js 20+ on PATH: %v", err)
	}
	if _, err := os.Stat(filepath.Join(consoleDir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run `npm ci --prefix testdata/console` from the repository root (%v)", err)
	}
	chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the console browser test needs Chromium at %s: apt-get install chromium (%v)", chromium, err)
	}
	return nodeBin, chromium
}

// consoleCall makes one API call with the token and decodes its JSON
// answer into out (if not nil); an answer other than 2xx fails the test.
func consoleCall(t *testing.T, base, token, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}
