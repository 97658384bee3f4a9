package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestClientTenantsEndToEnd drives a real API through run(): the admin
// makes a tenant token with herald tenants token; the tenant works with it
// and --tenant (or HERALD_TENANT) and is kept to its own tenant; the admin
// lists, revokes and deletes.
func TestClientTenantsEndToEnd(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_SERVER", "")
	t.Setenv("HERALD_TENANT", "")
	s := startAPI(t, apiOptions{token: "admin"})
	rcv, dflt := newHook(t), newHook(t)
	admin := []string{"--server", s.URL, "--api-token", "admin"}

	out, stderr, code := cli(t, append([]string{"tenants", "token", "acme", "--ttl", "1h"}, admin...)...)
	var tok struct {
		Token, Tenant string
		ExpiresAt     time.Time `json:"expires_at"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || !strings.HasPrefix(tok.Token, "htk_") || tok.Tenant != "acme" ||
		time.Until(tok.ExpiresAt) < 59*time.Minute {
		t.Fatalf("tenants token: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	tenant := []string{"--server", s.URL, "--api-token", tok.Token}

	// The default tenant's endpoint, made by the admin without --tenant.
	if _, stderr, code := cli(t, append([]string{"endpoints", "create", "--url", dflt.URL}, admin...)...); code != 0 {
		t.Fatalf("endpoints create (default): %d %s", code, stderr)
	}
	out, stderr, code = cli(t, append([]string{"endpoints", "create", "--tenant", "acme", "--url", rcv.URL}, tenant...)...)
	var ep struct{ ID, Tenant string }
	if code != 0 || json.Unmarshal([]byte(out), &ep) != nil || ep.Tenant != "acme" {
		t.Fatalf("endpoints create --tenant acme: exit %d, %q %q", code, out, stderr)
	}

	// HERALD_TENANT stands for --tenant.
	t.Setenv("HERALD_TENANT", "acme")
	out, stderr, code = cli(t, append([]string{"send", "--type", "a.b", "--data", `{"n": 1}`}, tenant...)...)
	var msg struct{ ID, Tenant string }
	if code != 0 || json.Unmarshal([]byte(out), &msg) != nil || msg.Tenant != "acme" {
		t.Fatalf("send with HERALD_TENANT: exit %d, %q %q", code, out, stderr)
	}
	waitUntil(t, 10*time.Second, "acme's delivery", func() bool {
		out, _, _ := cli(t, append([]string{"messages", "get", msg.ID}, tenant...)...)
		return strings.Contains(out, `"status": "succeeded"`)
	})
	if rcv.count() != 1 || dflt.count() != 0 {
		t.Errorf("receivers: acme %d, default %d; want 1, 0", rcv.count(), dflt.count())
	}
	out, _, code = cli(t, append([]string{"endpoints", "list"}, tenant...)...)
	if code != 0 || !strings.Contains(out, ep.ID) || strings.Count(out, `"id"`) != 1 {
		t.Errorf("endpoints list in acme: %d %s", code, out)
	}
	t.Setenv("HERALD_TENANT", "")

	// The tenant's token is held to its tenant: one line each, exit 1.
	for _, args := range [][]string{
		{"endpoints", "list"},
		{"endpoints", "list", "--tenant", "default"},
		{"messages", "get", msg.ID, "--tenant", "other"},
		{"tenants", "list"},
		{"tenants", "token", "acme", "--ttl", "1h"},
		{"cluster", "status"},
	} {
		_, stderr, code := cli(t, append(args, tenant...)...)
		if code != 1 {
			t.Errorf("%q with acme's token: exit %d", args, code)
		}
		oneLine(t, stderr, `forbidden: a token of tenant "acme"`)
	}
	if _, stderr, _ := cli(t, append([]string{"endpoints", "list"}, tenant...)...); !strings.Contains(stderr, "--tenant acme") {
		t.Errorf("the 403 of a route without a tenant does not suggest --tenant: %q", stderr)
	}
	// The admin sees acme's message only through acme's routes.
	if _, stderr, code := cli(t, append([]string{"messages", "get", msg.ID}, admin...)...); code != 1 {
		t.Errorf("acme's message through the default routes: exit %d", code)
	} else {
		oneLine(t, stderr, "not_found")
	}

	out, _, code = cli(t, append([]string{"tenants", "list"}, admin...)...)
	var list struct {
		Data []map[string]any
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Data) != 2 || list.Data[0]["id"] != "acme" ||
		list.Data[0]["endpoints"] != 1.0 || list.Data[0]["messages"] != 1.0 || list.Data[0]["tokens"] != 1.0 || list.Data[1]["id"] != "default" {
		t.Errorf("tenants list: %d %s", code, out)
	}

	out, _, code = cli(t, append([]string{"tenants", "revoke-tokens", "acme"}, admin...)...)
	if code != 0 || !strings.Contains(out, `"revoked": 1`) {
		t.Errorf("tenants revoke-tokens: %d %q", code, out)
	}
	_, stderr, code = cli(t, append([]string{"endpoints", "list", "--tenant", "acme"}, tenant...)...)
	if code != 1 {
		t.Errorf("a revoked token: exit %d", code)
	}
	oneLine(t, stderr, "unauthorized: ")

	out, stderr, code = cli(t, append([]string{"tenants", "delete", "acme"}, admin...)...)
	if code != 0 || out != "" {
		t.Errorf("tenants delete: exit %d, %q %q", code, out, stderr)
	}
	out, _, _ = cli(t, append([]string{"tenants", "list"}, admin...)...)
	if strings.Contains(out, "acme") || !strings.Contains(out, `"default"`) {
		t.Errorf("tenants list after the deletion: %s", out)
	}
	out, _, _ = cli(t, append([]string{"endpoints", "list", "--tenant", "acme"}, admin...)...)
	if strings.Contains(out, ep.ID) {
		t.Errorf("acme's endpoints after the deletion: %s", out)
	}
}
