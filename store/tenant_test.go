package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// inTenant sets the tenant of a command that names one.
func inTenant(tenant string, c Command) Command {
	switch {
	case c.Enqueue != nil:
		c.Enqueue.Tenant = tenant
	case c.CreateEndpoint != nil:
		c.CreateEndpoint.Endpoint.Tenant = tenant
	case c.UpdateEndpoint != nil:
		c.UpdateEndpoint.Tenant = tenant
	case c.DeleteEndpoint != nil:
		c.DeleteEndpoint.Tenant = tenant
	case c.RotateSecret != nil:
		c.RotateSecret.Tenant = tenant
	case c.Requeue != nil:
		c.Requeue.Tenant = tenant
	default:
		panic("inTenant: " + kindOf(&c))
	}
	return c
}

// endpointsOf returns the endpoint ids of deliveries, in order.
func endpointsOf(ds []Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.EndpointID)
	}
	return out
}

func messageIDs(ms []Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func tokenHash(name string) []byte {
	h := sha256.Sum256([]byte(name))
	return h[:]
}

func createToken(tenant, name string, at, expires int64) Command {
	return Command{CreateTenantToken: &CreateTenantToken{Tenant: tenant, Hash: tokenHash(name), CreatedAt: at, ExpiresAt: expires}}
}

// sameState fails unless s is as it was at before (the applied index
// aside).
func sameState(t *testing.T, s *Store, before map[string]map[string]string, what string) {
	t.Helper()
	after := mustDump(t, s)
	before, after = mapsClone(before), mapsClone(after)
	delete(before, "meta")
	delete(after, "meta")
	if d := diffDumps(before, after); d != "" {
		t.Fatalf("%s changed the state:\n%s", what, d)
	}
}

func mapsClone(d map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for k, v := range d {
		out[k] = v
	}
	return out
}

// TestTenantFanOut: a message goes to the enabled endpoints of its own
// tenant subscribed to its type (or to every type), in endpoint id order
// across both kinds of subscription, and to nothing of another tenant.
func TestTenantFanOut(t *testing.T) {
	s := openTest(t)
	off := inTenant("a", createEndpoint(epID("a5"), "https://a5.example", t0))
	off.CreateEndpoint.Endpoint.State = StateDisabled
	runOK(t, s,
		inTenant("a", createEndpoint(epID("a1"), "https://a1.example", t0)),
		inTenant("a", createEndpoint(epID("a2"), "https://a2.example", t0, "x")),
		inTenant("a", createEndpoint(epID("a3"), "https://a3.example", t0)),
		inTenant("a", createEndpoint(epID("a4"), "https://a4.example", t0, "x", "y", "x")),
		off,
		inTenant("b", createEndpoint(epID("b1"), "https://b1.example", t0)),
		inTenant("b", createEndpoint(epID("b2"), "https://b2.example", t0, "x")),
		createEndpoint(epID("d1"), "https://d1.example", t0, "x"),
	)
	a1, a2, a3, a4 := epID("a1"), epID("a2"), epID("a3"), epID("a4")
	b1, b2, d1 := epID("b1"), epID("b2"), epID("d1")
	tests := []struct {
		tenant, typ string
		want        []string
	}{
		{"a", "x", []string{a1, a2, a3, a4}},
		{"a", "y", []string{a1, a3, a4}},
		{"a", "z", []string{a1, a3}},
		{"b", "x", []string{b1, b2}},
		{"b", "y", []string{b1}},
		{"", "x", []string{d1}},
		{DefaultTenant, "x", []string{d1}},
		{DefaultTenant, "y", []string{}},
		{"c", "x", []string{}},
	}
	g := newIDs(200)
	for i, tt := range tests {
		at := t0 + ms(int64(i))
		id := g.next(t, "msg", at)
		// In one batch with a fan-out of the same kind elsewhere, which
		// must not share its cached list.
		other := g.next(t, "msg", at)
		runOK(t, s, inTenant(tt.tenant, fanOut(id, tt.typ, at)), inTenant("b", fanOut(other, tt.typ, at)))
		tenant := tt.tenant
		if tenant == "" {
			tenant = DefaultTenant
		}
		m, ds := getMessageIn(t, s, tenant, id)
		if got := endpointsOf(ds); !slices.Equal(got, tt.want) {
			t.Errorf("%s in %q went to %v, want %v", tt.typ, tt.tenant, got, tt.want)
		}
		for _, d := range ds {
			if ep := getEndpointIn(t, s, tenant, d.EndpointID); d.URL != ep.URL {
				t.Errorf("delivery to %s at %q, the endpoint is at %q", d.EndpointID, d.URL, ep.URL)
			}
		}
		if m.Tenant != tenant {
			t.Errorf("message tenant %q, want %q", m.Tenant, tenant)
		}
	}
	// A ping names endpoints: another tenant's are skipped like unknown
	// ones. Overrides go anywhere from any tenant.
	p := g.next(t, "msg", t0+ms(100))
	runOK(t, s, inTenant("a", ping(p, t0+ms(100), b1, a2, epID("none"))))
	if _, ds := getMessageIn(t, s, "a", p); !slices.Equal(endpointsOf(ds), []string{a2}) {
		t.Fatalf("ping went to %v", endpointsOf(ds))
	}
	o := g.next(t, "msg", t0+ms(101))
	runOK(t, s, inTenant("b", override(o, "x", t0+ms(101), "https://o.example")))
	if _, ds := getMessageIn(t, s, "b", o); len(ds) != 1 || !ds[0].Override() {
		t.Fatalf("override in b: %+v", ds)
	}
}

func getEndpointIn(t testing.TB, s *Store, tenant, id string) *Endpoint {
	t.Helper()
	ep, err := s.Endpoint(tenant, id)
	if err != nil {
		t.Fatalf("Endpoint(%s, %s): %v", tenant, id, err)
	}
	return ep
}

// getMessageIn reads one of a tenant's messages.
func getMessageIn(t testing.TB, s *Store, tenant, id string) (*Message, []Delivery) {
	t.Helper()
	m, ds, err := s.Message(tenant, id)
	if err != nil {
		t.Fatalf("Message(%s, %s): %v", tenant, id, err)
	}
	return m, ds
}

// TestFanOutKeyRanges: the ranges a fan-out reads end where the tenant's
// and the type's do, whatever ids and types sort next to them; and a
// fan-out reads no endpoint record (an undecodable one of another tenant,
// which a scan of the endpoints would trip on, is never met).
func TestFanOutKeyRanges(t *testing.T) {
	s := openTest(t)
	var cmds []Command
	for i, tenant := range []string{"a", "b-", "b.c", "b0", "b_", "bb", "B"} {
		cmds = append(cmds, inTenant(tenant, createEndpoint(epID(fmt.Sprint("n", i)), "https://n.example", t0, "x")),
			inTenant(tenant, createEndpoint(epID(fmt.Sprint("m", i)), "https://m.example", t0)))
	}
	for i, typ := range []string{"w", "x0", "x-1", "x.y", "x_", "xx", "X", "y"} {
		cmds = append(cmds, inTenant("b", createEndpoint(epID(fmt.Sprint("t", i)), "https://t.example", t0, typ)))
	}
	runOK(t, s, append(cmds,
		inTenant("b", createEndpoint(epID("x"), "https://x.example", t0, "x")),
		inTenant("b", createEndpoint(epID("all"), "https://all.example", t0)))...)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bEndpoints).Put([]byte(epID("corrupt")), []byte{0xc1})
	}); err != nil {
		t.Fatal(err)
	}
	m := newIDs(201).next(t, "msg", t0)
	res, err := s.Apply([]Entry{entry(t, 2, inTenant("b", fanOut(m, "x", t0)))})
	if err != nil || res[0][0].Err != nil {
		t.Fatalf("enqueue beside an undecodable endpoint: %v, %+v", err, res)
	}
	_, ds := getMessageIn(t, s, "b", m)
	if got := endpointsOf(ds); !slices.Equal(got, []string{epID("all"), epID("x")}) {
		t.Fatalf("x in b went to %v", got)
	}
	removeCorrupt(t, s)
	mustCheck(t, s)
}

// TestTenantIsolation: a command or read naming a record of another
// tenant finds nothing, and changes nothing.
func TestTenantIsolation(t *testing.T) {
	s := openTest(t)
	g := newIDs(202)
	aEP, bEP := epID("a"), epID("b")
	runOK(t, s,
		inTenant("a", createEndpoint(aEP, "https://a.example", t0)),
		inTenant("b", createEndpoint(bEP, "https://b.example", t0)),
	)
	day := ms(24 * 3600 * 1000)

	// Idempotency keys are per tenant.
	ma, mb := g.next(t, "msg", t0), g.next(t, "msg", t0)
	r := runOK(t, s, inTenant("a", withKey(fanOut(ma, "x", t0), "K", t0+day)), inTenant("b", withKey(fanOut(mb, "x", t0), "K", t0+day)))
	if r[0].Duplicate || r[1].Duplicate || r[1].MessageID != mb {
		t.Fatalf("one key in two tenants: %+v", r)
	}
	for tenant, want := range map[string]string{"a": ma, "b": mb} {
		if id, _, ok, err := s.IdempotentMessage(tenant, "K", t0); err != nil || !ok || id != want {
			t.Fatalf("IdempotentMessage(%s, K) = %q, %v, %v", tenant, id, ok, err)
		}
	}
	if _, _, ok, _ := s.IdempotentMessage(DefaultTenant, "K", t0); ok {
		t.Fatal("K is the default tenant's too")
	}
	again := g.next(t, "msg", t0+ms(1))
	if r := runOK(t, s, inTenant("a", withKey(fanOut(again, "x", t0+ms(1)), "K", t0+day))); r[0].MessageID != ma || !r[0].Duplicate {
		t.Fatalf("K again in a: %+v", r[0])
	}

	// Both messages fail, so that there is something to requeue.
	runOK(t, s, outcome(DeliveryID(ma, 0), 1, t0+ms(2), ResultFailed, 500, 0), outcome(DeliveryID(mb, 0), 1, t0+ms(2), ResultFailed, 500, 0))

	before := mustDump(t, s)
	cross := []struct {
		name string
		cmd  Command
		want error
	}{
		{"requeue", Command{Requeue: &Requeue{Tenant: "b", MessageID: ma, At: t0 + ms(3)}}, ErrNotFound},
		{"requeue in default", Command{Requeue: &Requeue{MessageID: ma, At: t0 + ms(3)}}, ErrNotFound},
		{"update", Command{UpdateEndpoint: &UpdateEndpoint{Tenant: "b", ID: aEP, At: t0, Name: ptr("x"), State: ptr(StateDisabled)}}, ErrNotFound},
		{"delete", Command{DeleteEndpoint: &DeleteEndpoint{Tenant: "b", ID: aEP, At: t0}}, ErrNotFound},
		{"rotate", Command{RotateSecret: &RotateSecret{Tenant: "b", EndpointID: aEP, Secret: testSecret("n"), At: t0, RevokeAt: t0}}, ErrNotFound},
		{"create with another's id", inTenant("b", createEndpoint(aEP, "https://x.example", t0)), ErrExists},
		{"enqueue with another's id", inTenant("b", fanOut(ma, "x", t0)), ErrExists},
	}
	for _, c := range cross {
		if r := run(t, s, c.cmd); !errors.Is(r[0].Err, c.want) {
			t.Errorf("%s across tenants: %v, want %v", c.name, r[0].Err, c.want)
		}
	}
	sameState(t, s, before, "commands naming another tenant's records")

	// Recovering a window requeues the tenant's messages only.
	if r := runOK(t, s, Command{Requeue: &Requeue{Tenant: "a", Since: t0, Until: t0 + ms(10), At: t0 + ms(20)}}); r[0].Count != 1 {
		t.Fatalf("recover in a requeued %d, want 1", r[0].Count)
	}
	if d := getDelivery(t, s, DeliveryID(mb, 0)); d.Status != StatusFailed {
		t.Fatalf("b's delivery after a's recover: %+v", d)
	}
	if r := runOK(t, s, Command{Requeue: &Requeue{Tenant: "b", MessageID: mb, At: t0 + ms(20)}}); r[0].Count != 1 {
		t.Fatalf("retry in b requeued %d", r[0].Count)
	}

	// Reads.
	if _, _, err := s.Message("b", ma); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Message(b, a's) = %v", err)
	}
	if _, err := s.Endpoint("b", aEP); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Endpoint(b, a's) = %v", err)
	}
	for tenant, want := range map[string][]string{"a": {aEP}, "b": {bEP}, "c": nil} {
		eps, err := s.Endpoints(tenant)
		var got []string
		for _, ep := range eps {
			got = append(got, ep.ID)
		}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("Endpoints(%s) = %v, %v", tenant, got, err)
		}
	}
	if ms, _, err := s.ListMessages("a", ListFilter{}, 10, ""); err != nil || !slices.Equal(messageIDs(ms), []string{ma}) {
		t.Fatalf("ListMessages(a) = %v, %v", messageIDs(ms), err)
	}
	for name, read := range map[string]func() error{
		"Message":           func() error { _, _, err := s.Message("a b", ma); return err },
		"Endpoint":          func() error { _, err := s.Endpoint("", aEP); return err },
		"Endpoints":         func() error { _, err := s.Endpoints("-a"); return err },
		"ListMessages":      func() error { _, _, err := s.ListMessages("a\x00", ListFilter{}, 1, ""); return err },
		"IdempotentMessage": func() error { _, _, _, err := s.IdempotentMessage(strings.Repeat("a", 65), "K", t0); return err },
		"Tenant":            func() error { _, err := s.Tenant("*"); return err },
	} {
		if f := invalidField(read()); f != "tenant" {
			t.Errorf("%s with an invalid tenant: %v", name, read())
		}
	}
}

// TestListMessagesPerTenant pages through interleaved tenants' messages.
func TestListMessagesPerTenant(t *testing.T) {
	s := openTest(t)
	g := newIDs(203)
	byTenant := map[string][]string{} // newest first
	tenants := []string{"a", "b", "a0", "a", "c", "b", "a", "a-"}
	for i, tenant := range tenants {
		at := t0 + ms(int64(i))
		id := g.next(t, "msg", at)
		runOK(t, s, inTenant(tenant, override(id, "x", at, "https://o.example")))
		if i%2 == 0 {
			runOK(t, s, outcome(DeliveryID(id, 0), 1, at, ResultSucceeded, 200, 0))
		}
		byTenant[tenant] = append([]string{id}, byTenant[tenant]...)
	}
	for tenant, want := range byTenant {
		for _, limit := range []int{1, 2, 10} {
			var got []string
			after := ""
			for {
				page, _, err := s.ListMessages(tenant, ListFilter{}, limit, after)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, messageIDs(page)...)
				after = page[len(page)-1].ID
			}
			if !slices.Equal(got, want) {
				t.Errorf("tenant %s limit %d: %v, want %v", tenant, limit, got, want)
			}
		}
	}
	// The status filter, and cursors outside the tenant's ids.
	if ms, _, _ := s.ListMessages("a", ListFilter{Status: StatusPending}, 10, ""); !slices.Equal(messageIDs(ms), []string{byTenant["a"][1]}) {
		t.Errorf("a's pending: %v", messageIDs(ms))
	}
	if ms, _, _ := s.ListMessages("a", ListFilter{}, 10, "msg_ZZZZZZZZZZZZZZZZZZZZZZZZZZ"); !slices.Equal(messageIDs(ms), byTenant["a"]) {
		t.Errorf("after an id past every message: %v", messageIDs(ms))
	}
	if ms, _, _ := s.ListMessages("a", ListFilter{}, 10, "msg_0"); len(ms) != 0 {
		t.Errorf("after an id before every message: %v", messageIDs(ms))
	}
	if ms, _, _ := s.ListMessages("none", ListFilter{}, 10, ""); len(ms) != 0 {
		t.Errorf("a tenant without messages: %v", messageIDs(ms))
	}
}

// TestEmptyTenantIsDefault: commands that name no tenant (entries written
// before tenants) act exactly as those that name the default tenant.
func TestEmptyTenantIsDefault(t *testing.T) {
	scenario := func(tenant string) *Store {
		s := openTest(t)
		g := newIDs(204)
		m, p := g.next(t, "msg", t0), g.next(t, "msg", t0)
		runOK(t, s,
			inTenant(tenant, createEndpoint(epID("a"), "https://a.example", t0)),
			inTenant(tenant, createEndpoint(epID("b"), "https://b.example", t0, "x")),
		)
		runOK(t, s, inTenant(tenant, withKey(fanOut(m, "x", t0), "K", t0+ms(1000))), inTenant(tenant, ping(p, t0, epID("b"))))
		runOK(t, s, outcome(DeliveryID(m, 0), 1, t0, ResultFailed, 500, 0))
		runOK(t, s,
			inTenant(tenant, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("b"), At: t0, EventTypes: ptr([]string{"y"})}}),
			inTenant(tenant, Command{RotateSecret: &RotateSecret{EndpointID: epID("a"), Secret: testSecret("2"), At: t0, RevokeAt: t0}}),
			inTenant(tenant, Command{Requeue: &Requeue{MessageID: m, At: t0 + 1}}),
			inTenant(tenant, Command{Requeue: &Requeue{Since: t0, At: t0 + 1}}),
			inTenant(tenant, Command{DeleteEndpoint: &DeleteEndpoint{ID: epID("b"), At: t0}}),
		)
		return s
	}
	sameDump(t, scenario(DefaultTenant), scenario(""), "empty tenant and default tenant")
}

// TestSubscriptionsFollowEndpoints changes one endpoint step by step; the
// fan-out (and Check, which rebuilds the index from the records) follow.
func TestSubscriptionsFollowEndpoints(t *testing.T) {
	s := openTest(t)
	e := epID("e")
	upd := func(u UpdateEndpoint) Command {
		u.Tenant, u.ID, u.At = "t", e, t0
		return Command{UpdateEndpoint: &u}
	}
	steps := []struct {
		name string
		cmd  Command
		x, y bool   // whether x and y messages go to it
		url  string // where they go
	}{
		{"created for x", inTenant("t", createEndpoint(e, "https://1.example", t0, "x")), true, false, "https://1.example"},
		{"types y", upd(UpdateEndpoint{EventTypes: ptr([]string{"y"})}), false, true, "https://1.example"},
		{"every type", upd(UpdateEndpoint{EventTypes: ptr([]string{})}), true, true, "https://1.example"},
		{"renamed", upd(UpdateEndpoint{Name: ptr("n"), RateLimitPerS: ptr(3)}), true, true, "https://1.example"},
		{"moved", upd(UpdateEndpoint{URL: ptr("https://2.example")}), true, true, "https://2.example"},
		{"disabled", upd(UpdateEndpoint{State: ptr(StateDisabled)}), false, false, ""},
		{"types while disabled", upd(UpdateEndpoint{EventTypes: ptr([]string{"x", "y"})}), false, false, ""},
		{"enabled", upd(UpdateEndpoint{State: ptr(StateEnabled)}), true, true, "https://2.example"},
		{"rotated", Command{RotateSecret: &RotateSecret{Tenant: "t", EndpointID: e, Secret: testSecret("r"), At: t0, RevokeAt: t0}}, true, true, "https://2.example"},
		{"enabled with a url and types", upd(UpdateEndpoint{State: ptr(StateEnabled), URL: ptr("https://3.example"), EventTypes: ptr([]string{"x"})}), true, false, "https://3.example"},
		{"deleted", Command{DeleteEndpoint: &DeleteEndpoint{Tenant: "t", ID: e, At: t0}}, false, false, ""},
		{"made again", inTenant("t", createEndpoint(e, "https://4.example", t0)), true, true, "https://4.example"},
	}
	g := newIDs(205)
	for i, st := range steps {
		runOK(t, s, st.cmd)
		at := t0 + ms(int64(i))
		for typ, want := range map[string]bool{"x": st.x, "y": st.y} {
			id := g.next(t, "msg", at)
			runOK(t, s, inTenant("t", fanOut(id, typ, at)))
			_, ds := getMessageIn(t, s, "t", id)
			switch {
			case want && (len(ds) != 1 || ds[0].URL != st.url):
				t.Fatalf("%s: %s went to %+v, want %s", st.name, typ, ds, st.url)
			case !want && len(ds) != 0:
				t.Fatalf("%s: %s went to %+v, want nowhere", st.name, typ, ds)
			}
		}
	}
	// A 410 disables it: no more subscriptions.
	m := g.next(t, "msg", t0+ms(100))
	runOK(t, s, inTenant("t", fanOut(m, "x", t0+ms(100))))
	runOK(t, s, outcome(DeliveryID(m, 0), 1, t0+ms(100), ResultGone, 410, 0))
	if n := len(mustDump(t, s)["subscriptions"]); n != 0 {
		t.Fatalf("%d subscriptions after a 410", n)
	}
}

// deleteSetup makes tenants gone and kept alike: three endpoints taking
// every type, four messages to them (twelve pending deliveries, two with
// an idempotency key), one override pending, one message swept but its
// key kept, two tokens.
func deleteSetup(t *testing.T) (*Store, map[string][]string) {
	s := openTest(t)
	g := newIDs(206)
	msgs := map[string][]string{}
	day := ms(24 * 3600 * 1000)
	for _, tenant := range []string{"gone", "kept"} {
		old := g.next(t, "msg", t0-ms(10))
		runOK(t, s, inTenant(tenant, withKey(override(old, "x", t0-ms(10), "https://o.example"), "old", t0+day)))
		runOK(t, s, outcome(DeliveryID(old, 0), 1, t0, ResultSucceeded, 200, 0))
		var cmds []Command
		for i := range 3 {
			cmds = append(cmds, inTenant(tenant, createEndpoint(epID(fmt.Sprint(tenant[0:1], i)), "https://e.example", t0)))
		}
		cmds = append(cmds, createToken(tenant, tenant+"1", t0, t0+day), createToken(tenant, tenant+"2", t0, t0+day))
		runOK(t, s, cmds...)
		for i := range 4 {
			id := g.next(t, "msg", t0+ms(int64(i)))
			c := inTenant(tenant, fanOut(id, "x", t0+ms(int64(i))))
			if i < 2 {
				c = withKey(c, fmt.Sprint("k", i), t0+day)
			}
			runOK(t, s, c)
			msgs[tenant] = append(msgs[tenant], id)
		}
		o := g.next(t, "msg", t0+ms(5))
		runOK(t, s, inTenant(tenant, override(o, "x", t0+ms(5), "https://o.example")))
		msgs[tenant] = append(msgs[tenant], o)
	}
	// Retention takes the two old messages, not their keys.
	if r := runOK(t, s, Command{Sweep: &Sweep{At: t0, RetainSince: t0 - ms(5), Limit: 10}}); r[0].Count != 2 {
		t.Fatalf("setup sweep removed %d", r[0].Count)
	}
	return s, msgs
}

// TestDeleteTenant deletes a tenant with a small limit, repeating the
// command as the leader does until Count < Limit: each step does at most
// Limit, in order (endpoint deliveries cancelled, endpoints, tokens,
// messages, keys), and at the end nothing of the tenant is left while the
// other tenant is untouched.
func TestDeleteTenant(t *testing.T) {
	s, msgs := deleteSetup(t)
	keptBefore := tenantView(t, s, "kept")
	const limit = 5
	// 12 deliveries + 3 endpoints + 2 tokens + 5 messages + 3 keys.
	const work = 25
	var counts []int
	for i := 0; ; i++ {
		if i > work {
			t.Fatal("DeleteTenant does not end")
		}
		r := runOK(t, s, Command{DeleteTenant: &DeleteTenant{Tenant: "gone", At: t0 + ms(100), Limit: limit}})
		counts = append(counts, r[0].Count)
		if i == 0 {
			// The first endpoint's four deliveries are cancelled and it
			// is gone; the next endpoint's are still pending.
			for _, m := range msgs["gone"][:4] {
				if d := getDelivery(t, s, DeliveryID(m, 0)); d.Status != StatusCancelled || d.LastError != "tenant deleted" {
					t.Fatalf("after one step: %+v", d)
				}
				if d := getDelivery(t, s, DeliveryID(m, 1)); d.Status != StatusPending {
					t.Fatalf("after one step: %+v", d)
				}
			}
			if _, err := s.Endpoint("gone", epID("g0")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("first endpoint after one step: %v", err)
			}
			if tc, _ := s.Tenant("gone"); tc == nil || tc.Endpoints != 2 || tc.Pending != 9 || tc.Tokens != 2 {
				t.Fatalf("gone after one step: %+v", tc)
			}
		}
		if r[0].Count > limit {
			t.Fatalf("step %d did %d, limit %d", i, r[0].Count, limit)
		}
		if r[0].Count < limit {
			break
		}
	}
	sum := 0
	for _, c := range counts {
		sum += c
	}
	if sum != work || !slices.Equal(counts, []int{5, 5, 5, 5, 5, 0}) {
		t.Fatalf("counts %v, sum %d, want %d", counts, sum, work)
	}

	if _, err := s.Tenant("gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Tenant(gone) after deletion: %v", err)
	}
	if ts, _ := s.Tenants("", 10); len(ts) != 1 || ts[0].ID != "kept" {
		t.Fatalf("Tenants after deletion: %+v", ts)
	}
	if v := tenantView(t, s, "gone"); v != "" {
		t.Fatalf("left of gone:\n%s", v)
	}
	if v := tenantView(t, s, "kept"); v != keptBefore {
		t.Fatalf("kept changed:\n%s\nwas\n%s", v, keptBefore)
	}
	for _, m := range msgs["gone"] {
		for _, k := range []string{"deliveries", "envelopes"} {
			for key := range mustDump(t, s)[k] {
				if strings.Contains(key, m[4:]) {
					t.Fatalf("%s of a deleted message left: %q", k, key)
				}
			}
		}
	}
	// Again: nothing to do. A new tenant of the same id starts afresh.
	if r := runOK(t, s, Command{DeleteTenant: &DeleteTenant{Tenant: "gone", At: t0, Limit: limit}}); r[0].Count != 0 {
		t.Fatalf("deleting again did %d", r[0].Count)
	}
	fresh := newIDs(207).next(t, "msg", t0+ms(200))
	if r := runOK(t, s, inTenant("gone", withKey(fanOut(fresh, "x", t0+ms(200)), "k0", t0+ms(9999)))); r[0].Duplicate {
		t.Fatalf("a key of the deleted tenant answered: %+v", r[0])
	}
}

// TestDeleteTenantInOneCommand: with a large limit one command does it all,
// and commands after it in the same batch act on a new tenant.
func TestDeleteTenantInOneCommand(t *testing.T) {
	s, _ := deleteSetup(t)
	m := newIDs(208).next(t, "msg", t0+ms(300))
	r := runOK(t, s,
		Command{DeleteTenant: &DeleteTenant{Tenant: "gone", At: t0, Limit: MaxSweepLimit}},
		inTenant("gone", override(m, "x", t0+ms(300), "https://o.example")),
	)
	if r[0].Count != 25 {
		t.Fatalf("Count %d, want 25", r[0].Count)
	}
	if tc, err := s.Tenant("gone"); err != nil || *tc != (Tenant{ID: "gone", Pending: 1, Messages: 1}) {
		t.Fatalf("gone after a new message: %+v, %v", tc, err)
	}
}

// tenantView describes what the reads show of a tenant.
func tenantView(t *testing.T, s *Store, tenant string) string {
	t.Helper()
	var b strings.Builder
	if tc, err := s.Tenant(tenant); err == nil {
		fmt.Fprintf(&b, "counts %+v\n", *tc)
	}
	eps, _ := s.Endpoints(tenant)
	for _, ep := range eps {
		fmt.Fprintf(&b, "endpoint %+v\n", ep)
	}
	ms, _, _ := s.ListMessages(tenant, ListFilter{}, 100, "")
	for _, m := range ms {
		_, ds, _ := s.Message(tenant, m.ID)
		fmt.Fprintf(&b, "message %+v %+v\n", m, ds)
	}
	for _, key := range []string{"old", "k0", "k1"} {
		if id, _, ok, _ := s.IdempotentMessage(tenant, key, t0); ok {
			fmt.Fprintf(&b, "key %s → %s\n", key, id)
		}
	}
	for i := range 3 {
		if owner, ok, _ := s.TenantToken(tokenHash(fmt.Sprint(tenant, i)), t0); ok {
			fmt.Fprintf(&b, "token %d of %s\n", i, owner)
		}
	}
	return b.String()
}

func TestTenantTokens(t *testing.T) {
	s := openTest(t)
	hour := ms(3600 * 1000)
	runOK(t, s, createToken("a", "1", t0, t0+hour))
	for _, tt := range []struct {
		name string
		hash []byte
		now  int64
		want string
	}{
		{"live", tokenHash("1"), t0, "a"},
		{"just before expiry", tokenHash("1"), t0 + hour - 1, "a"},
		{"at expiry", tokenHash("1"), t0 + hour, ""},
		{"unknown", tokenHash("2"), t0, ""},
		{"short", tokenHash("1")[:31], t0, ""},
		{"nil", nil, t0, ""},
	} {
		tenant, ok, err := s.TenantToken(tt.hash, tt.now)
		if err != nil || ok != (tt.want != "") || tenant != tt.want {
			t.Errorf("%s: TenantToken = %q, %v, %v; want %q", tt.name, tenant, ok, err, tt.want)
		}
	}
	// A retried create changes nothing; the same hash for another tenant
	// is refused.
	before := mustDump(t, s)
	runOK(t, s, createToken("a", "1", t0, t0+hour))
	if r := run(t, s, createToken("b", "1", t0, t0+hour)); !errors.Is(r[0].Err, ErrExists) {
		t.Fatalf("a's token hash for b: %v", r[0].Err)
	}
	sameState(t, s, before, "a retried token and another tenant's")
	if tc, _ := s.Tenant("a"); tc.Tokens != 1 {
		t.Fatalf("a's counts %+v", tc)
	}

	// Revoking deletes every token of the tenant, not others'.
	runOK(t, s, createToken("a", "2", t0, t0+hour), createToken("b", "3", t0, t0+hour))
	if r := runOK(t, s, Command{RevokeTenantTokens: &RevokeTenantTokens{Tenant: "a"}}); r[0].Count != 2 {
		t.Fatalf("revoked %d, want 2", r[0].Count)
	}
	for name, want := range map[string]bool{"1": false, "2": false, "3": true} {
		if _, ok, _ := s.TenantToken(tokenHash(name), t0); ok != want {
			t.Fatalf("token %s after revoking a's: %v", name, ok)
		}
	}
	if _, err := s.Tenant("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a without tokens still listed: %v", err)
	}
	if r := runOK(t, s, Command{RevokeTenantTokens: &RevokeTenantTokens{Tenant: "a"}}); r[0].Count != 0 {
		t.Fatalf("revoking none: %d", r[0].Count)
	}
}

// TestTenantTokenCap: a tenant holds at most MaxTenantTokens live tokens;
// one more is refused and changes nothing, until some expire (and go when
// the next is stored) or are revoked.
func TestTenantTokenCap(t *testing.T) {
	s := openTest(t)
	hour := ms(3600 * 1000)
	var cmds []Command
	for i := range MaxTenantTokens {
		expires := t0 + hour
		if i < 10 {
			expires = t0 + ms(1000) // ten expire soon
		}
		cmds = append(cmds, createToken("a", fmt.Sprint("a", i), t0, expires))
	}
	runOK(t, s, cmds...)
	before := mustDump(t, s)
	r := run(t, s, createToken("a", "over", t0+ms(999), t0+hour))
	if f := invalidField(r[0].Err); f != "create_tenant_token.tenant" {
		t.Fatalf("token %d: %v", MaxTenantTokens+1, r[0].Err)
	}
	sameState(t, s, before, "a refused token")
	runOK(t, s, createToken("b", "b0", t0, t0+hour)) // other tenants are not capped by a's

	// At t0+1s ten have expired: the next one is stored and they go.
	runOK(t, s, createToken("a", "over", t0+ms(1000), t0+hour))
	if tc, _ := s.Tenant("a"); tc.Tokens != MaxTenantTokens-10+1 {
		t.Fatalf("a holds %d tokens, want %d", tc.Tokens, MaxTenantTokens-9)
	}
	if _, ok, _ := s.TenantToken(tokenHash("a0"), t0); ok {
		t.Fatal("an expired token was kept")
	}
}

// TestSweepTokens: a sweep deletes expired tokens, at most Limit at a time.
func TestSweepTokens(t *testing.T) {
	s := openTest(t)
	var cmds []Command
	for i := range 5 {
		cmds = append(cmds, createToken(fmt.Sprint("t", i%2), fmt.Sprint(i), t0, t0+ms(int64(10+i))))
	}
	runOK(t, s, append(cmds, createToken("t0", "late", t0, t0+ms(100)))...)
	for _, want := range []int{2, 2, 1, 0} {
		if r := runOK(t, s, Command{Sweep: &Sweep{At: t0 + ms(50), Limit: 2}}); r[0].Count != want {
			t.Fatalf("sweep removed %d, want %d", r[0].Count, want)
		}
	}
	if ts, _ := s.Tenants("", 10); len(ts) != 1 || ts[0] != (Tenant{ID: "t0", Tokens: 1}) {
		t.Fatalf("tenants after the sweeps: %+v", ts)
	}
}

// TestTenantsList: the counters follow endpoints, messages, deliveries and
// tokens, in id order and pages; a tenant with nothing left is not listed.
func TestTenantsList(t *testing.T) {
	s := openTest(t)
	g := newIDs(209)
	m := g.next(t, "msg", t0)
	runOK(t, s,
		inTenant("b", createEndpoint(epID("b1"), "https://b.example", t0)),
		inTenant("b", createEndpoint(epID("b2"), "https://b.example", t0, "y")),
		inTenant("b", fanOut(m, "x", t0)),
		createToken("a", "a", t0, t0+ms(1000)),
		inTenant("c", override(g.next(t, "msg", t0), "x", t0, "https://o.example", "https://p.example")),
	)
	all, err := s.Tenants("", 10)
	want := []Tenant{{ID: "a", Tokens: 1}, {ID: "b", Endpoints: 2, Pending: 1, Messages: 1}, {ID: "c", Pending: 2, Messages: 1}}
	if err != nil || !slices.Equal(all, want) {
		t.Fatalf("Tenants = %+v, %v; want %+v", all, err, want)
	}
	if page, _ := s.Tenants("a", 1); !slices.Equal(page, want[1:2]) {
		t.Fatalf("page after a: %+v", page)
	}
	if page, _ := s.Tenants("a0", 5); !slices.Equal(page, want[1:]) {
		t.Fatalf("page after a0: %+v", page)
	}
	// The delivery succeeds, the endpoints go: b keeps its message.
	runOK(t, s, outcome(DeliveryID(m, 0), 1, t0, ResultSucceeded, 200, 0),
		Command{DeleteEndpoint: &DeleteEndpoint{Tenant: "b", ID: epID("b1"), At: t0}},
		Command{DeleteEndpoint: &DeleteEndpoint{Tenant: "b", ID: epID("b2"), At: t0}})
	if tc, _ := s.Tenant("b"); *tc != (Tenant{ID: "b", Messages: 1}) {
		t.Fatalf("b: %+v", tc)
	}
	// Retention takes it: b is gone.
	runOK(t, s, Command{Sweep: &Sweep{At: t0, RetainSince: t0 + 1, Limit: 10}})
	if _, err := s.Tenant("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b after its last message was swept: %v", err)
	}
}

// TestRequeueSkipsAnotherTenantsEndpoint: an endpoint id deleted in one
// tenant and made again in another is not the first one: a retry of the
// first tenant's failed delivery to it does not send the message to the
// other tenant's receiver.
func TestRequeueSkipsAnotherTenantsEndpoint(t *testing.T) {
	s := openTest(t)
	m := newIDs(210).next(t, "msg", t0)
	runOK(t, s, inTenant("a", createEndpoint(epID("e"), "https://a.example", t0)))
	runOK(t, s, inTenant("a", fanOut(m, "x", t0)))
	runOK(t, s, outcome(DeliveryID(m, 0), 1, t0, ResultFailed, 500, 0))
	runOK(t, s, Command{DeleteEndpoint: &DeleteEndpoint{Tenant: "a", ID: epID("e"), At: t0}})
	runOK(t, s, inTenant("b", createEndpoint(epID("e"), "https://b.example", t0)))
	for _, c := range []Command{
		{Requeue: &Requeue{Tenant: "a", MessageID: m, At: t0 + 1}},
		{Requeue: &Requeue{Tenant: "a", Since: t0, At: t0 + 1}},
	} {
		if r := runOK(t, s, c); r[0].Count != 0 {
			t.Fatalf("%s requeued %d to another tenant's endpoint", kindOf(&c), r[0].Count)
		}
	}
	if d := getDelivery(t, s, DeliveryID(m, 0)); d.Status != StatusFailed {
		t.Fatalf("delivery %+v", d)
	}
}
