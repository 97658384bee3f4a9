package engine

import (
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// The SSRF guard (AllowPrivateNetworks false) refuses non-public
// destinations when they are registered and again when they are dialled.

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
		"https://example.com/" + strings.Repeat("a", 2048),
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
	if eps, _ := e.Endpoints(ctxb, ""); len(eps) != 0 {
		t.Fatalf("refused URLs registered %d endpoints", len(eps))
	}
	if msgs, _, _ := e.ListMessages(ctxb, ListOptions{}); len(msgs) != 0 {
		t.Fatalf("refused URIs enqueued %d messages", len(msgs))
	}

	// Public literals need no DNS and are accepted.
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: "https://93.184.215.14/hook"})
	for _, u := range []string{"http://127.0.0.1/", "http://[::1]:9/"} {
		var inv *InvalidError
		if _, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{URL: &u}); !errors.As(err, &inv) {
			t.Errorf("UpdateEndpoint(url %s) error = %v, want *InvalidError", u, err)
		}
	}
	if got, _ := e.Endpoint(ctxb, "", ep.ID); got.URL != "https://93.184.215.14/hook" {
		t.Fatalf("refused update changed the URL to %s", got.URL)
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
	now := time.Now()
	id, err := store.NewID("ep", now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ep := store.Endpoint{ID: id, URL: u, State: store.StateEnabled,
		Secrets: []store.Secret{{Key: signer.GenerateHMACSecret()}}, CreatedAt: now.UnixNano(), UpdatedAt: now.UnixNano()}
	if _, err := e.w.commit(ctxb, store.Command{CreateEndpoint: &store.CreateEndpoint{Endpoint: ep}}); err != nil {
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
