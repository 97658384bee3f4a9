package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// The SSRF guard (AllowPrivateNetworks false) refuses non-public
// destinations when they are registered and again when they are dialled.

func TestBlockedAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip      string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"10.0.0.1", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"100.64.0.1", true},      // carrier-grade NAT
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"192.0.0.8", true},
		{"198.18.0.1", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		{"::1", true},
		{"::", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"ff02::1", true},
		{"ff05::2", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped loopback
		{"::ffff:10.1.2.3", true},
		{"::ffff:169.254.169.254", true},
		{"64:ff9b::a00:1", true}, // NAT64 of 10.0.0.1

		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"93.184.215.14", false},
		{"172.32.0.1", false}, // just past 172.16/12
		{"100.128.0.1", false},
		{"::ffff:8.8.8.8", false},
		{"2606:4700:4700::1111", false},
		{"2001:4860:4860::8888", false},
	} {
		ip := netip.MustParseAddr(tc.ip)
		if got := blockedAddr(ip); got != tc.blocked {
			t.Errorf("blockedAddr(%s) = %v, want %v", tc.ip, got, tc.blocked)
		}
	}
}

// loopbackHostname returns a name other than localhost that resolves only
// to loopback on this machine (often the host's own name), or "".
func loopbackHostname(t *testing.T) string {
	name, err := os.Hostname()
	if err != nil || strings.EqualFold(name, "localhost") {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return ""
		}
	}
	return name
}

func TestSSRFGuardRefusesPrivateDestinations(t *testing.T) {
	t.Parallel()
	e := openEngine(t, func(c *Config) { c.AllowPrivateNetworks = false })
	refused := []string{
		"http://127.0.0.1:8080/hook",
		"http://localhost:8080/hook",
		"http://LOCALHOST./hook",
		"http://api.localhost/hook",
		"http://10.0.0.1/",
		"http://172.16.5.4/",
		"http://192.168.0.10/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::1]/",
		"http://[::ffff:127.0.0.1]/",
		"http://[fe80::1%25eth0]/",
		"http://0.0.0.0/",
		"http://100.64.0.1/",
		"http://[fc00::1]/",
		"ftp://example.com/hook",
		"file:///etc/passwd",
		"gopher://example.com/",
		"http:///no-host",
		"example.com/hook",
		"https://user:pass@example.com/hook",
		"https://example.com/" + strings.Repeat("a", maxURLLength),
	}
	if name := loopbackHostname(t); name != "" {
		refused = append(refused, "http://"+name+":8080/hook")
	} else {
		t.Log("no non-localhost name resolves to loopback here; skipping that case")
	}
	for _, u := range refused {
		var inv *InvalidError
		if _, err := e.CreateEndpoint(ctxb, EndpointInput{URL: u}); !errors.As(err, &inv) || inv.Field != "url" {
			t.Errorf("CreateEndpoint(%s) error = %v, want *InvalidError on url", u, err)
		}
		_, _, err := e.Enqueue(ctxb, MessageInput{Type: "a", Data: []byte(`{}`), URIs: []string{"https://93.184.215.14/ok", u}})
		if !errors.As(err, &inv) || inv.Field != "webhook_config.uris" {
			t.Errorf("Enqueue(URIs %s) error = %v, want *InvalidError on webhook_config.uris", u, err)
		}
	}
	if eps, _ := e.Endpoints(ctxb); len(eps) != 0 {
		t.Fatalf("refused URLs registered %d endpoints", len(eps))
	}
	if msgs, _, _ := e.ListMessages(ctxb, ListOptions{}); len(msgs) != 0 {
		t.Fatalf("refused URIs enqueued %d messages", len(msgs))
	}

	// Public literals need no DNS and are accepted.
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: "https://93.184.215.14/hook"})
	for _, u := range []string{"http://127.0.0.1/", "http://[::1]:9/"} {
		var inv *InvalidError
		if _, err := e.UpdateEndpoint(ctxb, ep.ID, EndpointUpdate{URL: &u}); !errors.As(err, &inv) {
			t.Errorf("UpdateEndpoint(url %s) error = %v, want *InvalidError", u, err)
		}
	}
	if got, _ := e.Endpoint(ctxb, ep.ID); got.URL != "https://93.184.215.14/hook" {
		t.Fatalf("refused update changed the URL to %s", got.URL)
	}
}

func TestGuardedDialerChecksTheDialledAddress(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	port := rc.Listener.Addr().(*net.TCPAddr).Port
	post := func(tr http.RoundTripper, u string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	guarded, open := newTransport(false), newTransport(true)
	t.Cleanup(guarded.CloseIdleConnections)
	t.Cleanup(open.CloseIdleConnections)

	// Names are resolved by the dialer, and the address it connects to is
	// the one checked: a name that resolves to loopback is refused even
	// though it is not an IP literal (as after DNS rebinding).
	urls := []string{
		rc.URL,
		"http://localhost:" + strconv.Itoa(port) + "/",
		"http://[::ffff:127.0.0.1]:" + strconv.Itoa(port) + "/",
	}
	if name := loopbackHostname(t); name != "" {
		urls = append(urls, "http://"+name+":"+strconv.Itoa(port)+"/")
	}
	for _, u := range urls {
		err := post(guarded, u)
		var blocked *blockedAddrError
		if !errors.As(err, &blocked) {
			t.Errorf("guarded POST %s: error = %v, want *blockedAddrError", u, err)
			continue
		}
		if !blockedAddr(blocked.ip) {
			t.Errorf("guarded POST %s: blocked %s, which is public", u, blocked.ip)
		}
		if msg := describeSendError(err, time.Second); !strings.Contains(msg, "non-public address") {
			t.Errorf("describeSendError = %q", msg)
		}
	}
	if n := rc.count(); n != 0 {
		t.Fatalf("the guarded transport reached the loopback receiver %d times", n)
	}
	if err := post(open, rc.URL); err != nil {
		t.Fatalf("unguarded POST: %v", err)
	}
	if n := rc.count(); n != 1 {
		t.Fatalf("receiver got %d requests, want 1 from the unguarded transport", n)
	}
}

// An endpoint whose name resolved to a public address when it was
// registered but resolves to loopback when dialled (DNS rebinding) must not
// be reached. The endpoint is written through Raft directly, as validation
// would have seen the earlier, public answer.
func TestDeliveryToRebindingNameIsRefusedAtConnect(t *testing.T) {
	t.Parallel()
	e := openEngine(t, func(c *Config) {
		c.AllowPrivateNetworks = false
		c.RetrySchedule = []time.Duration{50 * time.Millisecond}
	})
	rc := newReceiver(t, nil)
	u := "http://localhost:" + strconv.Itoa(rc.Listener.Addr().(*net.TCPAddr).Port) + "/hook"
	now := time.Now().UnixNano()
	ep := store.Endpoint{ID: "ep_rebinding", URL: u, State: store.StateEnabled,
		Secrets: []store.Secret{{Key: signer.GenerateHMACSecret()}}, CreatedAt: now, UpdatedAt: now}
	if _, err := e.apply(ctxb, store.Command{CreateEndpoint: &store.CreateEndpoint{Endpoint: ep}}); err != nil {
		t.Fatal(err)
	}
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	m := waitStatus(t, e, msg.ID, "failed")
	d := m.Deliveries[0]
	if d.AttemptCount != 2 || d.LastStatusCode != 0 || !strings.Contains(d.LastError, "non-public address") {
		t.Fatalf("delivery = %+v, want refused at connect on every attempt", d)
	}
	if n := rc.count(); n != 0 {
		t.Fatalf("receiver on loopback got %d requests", n)
	}
}
