package engine

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Tenants are isolated: fan-out, idempotency keys, reads, lists, retries
// and recovery stay within one; an id of another tenant is not found.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(10*time.Millisecond))
	acmeRC, globexRC := newReceiver(t, nil), newReceiver(t, nil)
	acmeEP := mustCreateEndpoint(t, e, EndpointInput{Tenant: "acme", URL: acmeRC.URL})
	mustCreateEndpoint(t, e, EndpointInput{Tenant: "globex", URL: globexRC.URL})
	if acmeEP.Tenant != "acme" {
		t.Fatalf("endpoint tenant %q", acmeEP.Tenant)
	}

	a := mustEnqueue(t, e, MessageInput{Tenant: "acme", Type: "job.done", IdempotencyKey: "k"})
	g := mustEnqueue(t, e, MessageInput{Tenant: "globex", Type: "job.done", IdempotencyKey: "k"}) // same key, other tenant
	d := mustEnqueue(t, e, MessageInput{Type: "job.done", IdempotencyKey: "k"})                   // the default tenant has no endpoint
	if a.ID == g.ID || g.ID == d.ID {
		t.Fatal("one idempotency key in three tenants made fewer than three messages")
	}
	waitTenantStatus(t, e, "acme", a.ID, "succeeded")
	waitTenantStatus(t, e, "globex", g.ID, "succeeded")
	if acmeRC.count() != 1 || globexRC.count() != 1 {
		t.Fatalf("acme's receiver got %d, globex's %d; want one each", acmeRC.count(), globexRC.count())
	}
	if m, _ := e.Message(ctxb, "", d.ID); m.Deliveries == nil || len(m.Deliveries) != 0 || d.Status != StatusSucceeded {
		t.Fatalf("a default-tenant message (answered %s) has deliveries %#v; want none (and an empty list), and succeeded", d.Status, m.Deliveries)
	}
	if again, created, err := e.Enqueue(ctxb, MessageInput{Tenant: "acme", Type: "job.done", Data: []byte(` { } `), IdempotencyKey: "k"}); err != nil || created || again.ID != a.ID {
		t.Fatalf("the key again in acme: %+v created %v, %v; want acme's first message", again, created, err)
	}
	for _, other := range []MessageInput{
		{Tenant: "acme", Type: "job.failed", Data: []byte(`{}`), IdempotencyKey: "k"},
		{Tenant: "acme", Type: "job.done", Data: []byte(`{"n":2}`), IdempotencyKey: "k"},
		{Tenant: "acme", Type: "job.done", Data: []byte(`{}`), URIs: []string{acmeRC.URL}, IdempotencyKey: "k"},
	} {
		if _, _, err := e.Enqueue(ctxb, other); !errors.Is(err, ErrIdempotencyKeyReused) {
			t.Errorf("the key again in acme for another request %+v: %v, want ErrIdempotencyKeyReused", other, err)
		}
	}

	// Another tenant's ids are not found, whatever the call.
	for name, err := range map[string]error{
		"Message":  second(e.Message(ctxb, "globex", a.ID)),
		"Wait":     second(e.WaitDelivered(ctxb, "globex", a.ID)),
		"Retry":    second(e.RetryMessage(ctxb, "globex", a.ID)),
		"Endpoint": second(e.Endpoint(ctxb, "globex", acmeEP.ID)),
		"Update":   second(e.UpdateEndpoint(ctxb, "globex", acmeEP.ID, EndpointUpdate{Name: new(string)})),
		"Delete":   e.DeleteEndpoint(ctxb, "globex", acmeEP.ID),
		"Rotate":   second(e.RotateSecret(ctxb, "globex", acmeEP.ID, true)),
		"Ping":     second(e.Ping(ctxb, "globex", acmeEP.ID)),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of acme's record through globex: %v, want ErrNotFound", name, err)
		}
	}
	for _, tenant := range []string{"acme", "globex", ""} {
		msgs, _, err := e.ListMessages(ctxb, ListOptions{Tenant: tenant})
		eps, err2 := e.Endpoints(ctxb, tenant)
		if err != nil || err2 != nil || len(msgs) != 1 || msgs[0].Tenant != tenantOr(tenant) {
			t.Errorf("tenant %q lists %d messages (%v, %v)", tenant, len(msgs), err, err2)
		}
		if want := map[string]int{"acme": 1, "globex": 1, "": 0}[tenant]; len(eps) != want {
			t.Errorf("tenant %q lists %d endpoints, want %d", tenant, len(eps), want)
		}
	}
	if n, err := e.Recover(ctxb, "globex", time.Now().Add(-time.Hour), time.Time{}); err != nil || n.Requeued != 0 {
		t.Errorf("Recover in globex = %+v, %v", n, err)
	}
	if _, _, err := e.Enqueue(ctxb, MessageInput{Tenant: "no spaces", Type: "job.done", Data: []byte(`{}`)}); !isInvalid(err, "tenant") {
		t.Errorf("a malformed tenant: %v, want an InvalidError on tenant", err)
	}

	tenants, _, err := e.Tenants(ctxb, "", 0)
	if err != nil || len(tenants) != 3 || tenants[0].ID != "acme" || tenants[0].Endpoints != 1 || tenants[0].Messages != 1 {
		t.Fatalf("Tenants = %+v, %v", tenants, err)
	}
	if err := e.DeleteTenant(ctxb, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Message(ctxb, "acme", a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("acme's message after DeleteTenant: %v", err)
	}
	if tenants, _, _ := e.Tenants(ctxb, "", 0); len(tenants) != 2 || tenants[0].ID == "acme" {
		t.Errorf("Tenants after deleting acme = %+v", tenants)
	}
}

// A tenant token names its tenant until it expires or is revoked; only its
// hash is stored.
func TestTenantTokens(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var later atomic.Int64 // added to now
	e := openEngine(t, func(c *Config) { c.Now = func() time.Time { return now.Add(time.Duration(later.Load())) } })
	tok, err := e.CreateTenantToken(ctxb, "acme", time.Hour)
	if err != nil || tok.Tenant != "acme" || len(tok.Token) < 40 || !tok.ExpiresAt.Equal(now.Add(time.Hour).UTC()) {
		t.Fatalf("CreateTenantToken = %+v, %v", tok, err)
	}
	if tenant, ok, err := e.TokenTenant(tok.Token); err != nil || !ok || tenant != "acme" {
		t.Fatalf("TokenTenant = %q %v %v", tenant, ok, err)
	}
	for _, bad := range []string{"", "htk_nope", tok.Token + "x", "Bearer " + tok.Token} {
		if _, ok, _ := e.TokenTenant(bad); ok {
			t.Errorf("TokenTenant(%q) accepted", bad)
		}
	}
	if _, err := e.CreateTenantToken(ctxb, "acme", time.Second); !isInvalid(err, "ttl") {
		t.Errorf("a one-second token: %v", err)
	}
	if _, err := e.CreateTenantToken(ctxb, "", time.Hour); !isInvalid(err, "tenant") {
		t.Errorf("a token without a tenant: %v", err)
	}
	// Expired.
	later.Store(int64(time.Hour))
	if _, ok, _ := e.TokenTenant(tok.Token); ok {
		t.Error("an expired token is accepted")
	}
	later.Store(0)
	// Revoked.
	if n, err := e.RevokeTenantTokens(ctxb, "acme"); err != nil || n != 1 {
		t.Fatalf("RevokeTenantTokens = %d, %v", n, err)
	}
	if _, ok, _ := e.TokenTenant(tok.Token); ok {
		t.Error("a revoked token is accepted")
	}
}

func second[T any](_ T, err error) error { return err }

func tenantOr(t string) string {
	if t == "" {
		return DefaultTenant
	}
	return t
}

func isInvalid(err error, field string) bool {
	var inv *InvalidError
	return errors.As(err, &inv) && inv.Field == field
}
