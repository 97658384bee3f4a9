package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// upgradeManifest describes testdata/upgrade/v0: a data dir written by
// herald before tenants.
type upgradeManifest struct {
	EndpointOK   struct{ ID string } `json:"ep-ok"`
	EndpointDown struct{ ID string } `json:"ep-down"`
	Message1     struct {
		ID        string
		CreatedAt time.Time `json:"created_at"`
	} `json:"msg-1"`
	Message2 struct{ ID string } `json:"msg-2"`
	Message3 struct{ ID string } `json:"msg-3"`
}

// A data dir written before tenants opens with everything in the default
// tenant: its endpoints, its messages and their pending delivery (still due
// when it was), its idempotency key; new messages fan out as before.
func TestUpgradeFromBeforeTenants(t *testing.T) {
	t.Parallel()
	var man upgradeManifest
	raw, err := os.ReadFile("../testdata/upgrade/v0/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../testdata/upgrade/v0/data")); err != nil {
		t.Fatal(err)
	}
	// The fixture's own time, running: its pending delivery is due in the
	// hour, and nothing has aged out of its retention.
	base, start := man.Message1.CreatedAt.Add(time.Minute), time.Now()
	e := openEngine(t, func(c *Config) {
		c.DataDir = filepath.Clean(dir)
		c.Now = func() time.Time { return base.Add(time.Since(start)) }
	})

	eps, err := e.Endpoints(ctxb, "")
	if err != nil || len(eps) != 2 || eps[0].ID != man.EndpointOK.ID || eps[1].ID != man.EndpointDown.ID || eps[0].Tenant != DefaultTenant {
		t.Fatalf("endpoints after the upgrade: %+v, %v", eps, err)
	}
	m, err := e.Message(ctxb, "", man.Message1.ID)
	if err != nil || m.Tenant != DefaultTenant || m.Status != StatusPending || len(m.Deliveries) != 2 {
		t.Fatalf("msg-1 after the upgrade: %+v, %v", m, err)
	}
	var pending *Delivery
	for i := range m.Deliveries {
		if m.Deliveries[i].Status == StatusPending {
			pending = &m.Deliveries[i]
		}
	}
	if pending == nil || pending.EndpointID != man.EndpointDown.ID || pending.NextAttemptAt == nil ||
		pending.NextAttemptAt.Sub(pending.Attempts[0].At) < 50*time.Minute {
		t.Fatalf("msg-1's delivery to ep-down after the upgrade: %+v; want pending, due an hour after its attempt", pending)
	}
	if e.Stats().Scheduled != 1 {
		t.Errorf("%d deliveries scheduled, want msg-1's pending one", e.Stats().Scheduled)
	}
	for _, id := range []string{man.Message2.ID, man.Message3.ID} {
		if m, err := e.Message(ctxb, "", id); err != nil || m.Status != StatusSucceeded {
			t.Errorf("%s after the upgrade: %+v, %v", id, m, err)
		}
	}
	again, created, err := e.Enqueue(ctxb, MessageInput{Type: "job.done", Data: []byte(`{"job":1}`), IdempotencyKey: "job-1"})
	if err != nil || created || again.ID != man.Message1.ID {
		t.Fatalf("job-1 again after the upgrade: %+v created %v, %v; want msg-1", again, created, err)
	}
	if _, created, _ := e.Enqueue(ctxb, MessageInput{Tenant: "acme", Type: "job.done", Data: []byte(`{}`), IdempotencyKey: "job-1"}); !created {
		t.Error("job-1 in another tenant was taken for the default tenant's")
	}
	fresh := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	if m, _ := e.Message(ctxb, "", fresh.ID); len(m.Deliveries) != 2 {
		t.Errorf("a new job.done in the default tenant has %d deliveries, want both endpoints", len(m.Deliveries))
	}
	other := mustEnqueue(t, e, MessageInput{Tenant: "acme", Type: "job.done"})
	if m, _ := e.Message(ctxb, "acme", other.ID); len(m.Deliveries) != 0 {
		t.Errorf("a message in another tenant went to the default tenant's endpoints: %+v", m.Deliveries)
	}
}
