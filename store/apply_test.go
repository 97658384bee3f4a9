package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestEnqueueIdempotency(t *testing.T) {
	s := openTest(t)
	g := newIDs(1)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	day := ms(24 * 3600 * 1000)

	m1 := g.next(t, "msg", t0)
	r := runOK(t, s, withKey(fanOut(m1, "x", t0), "K", t0+day))
	if r[0].MessageID != m1 || r[0].Duplicate {
		t.Fatalf("first enqueue: %+v", r[0])
	}
	dueBefore := allDue(t, s)

	// The same key within its expiry: the first message, nothing new.
	m2 := g.next(t, "msg", t0+ms(1000))
	r = runOK(t, s, withKey(fanOut(m2, "x", t0+ms(1000)), "K", t0+ms(1000)+day))
	if r[0].MessageID != m1 || !r[0].Duplicate {
		t.Fatalf("same key again: %+v, want duplicate of %s", r[0], m1)
	}
	if _, _, err := s.Message(DefaultTenant, m2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("duplicate key created message %s: %v", m2, err)
	}
	if _, err := s.Envelope(m2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("duplicate key stored an envelope: %v", err)
	}
	if got := allDue(t, s); !slices.Equal(got, dueBefore) {
		t.Fatalf("duplicate key scheduled deliveries: %v, before %v", got, dueBefore)
	}
	if id, _, ok, _ := s.IdempotentMessage(DefaultTenant, "K", t0+day-1); !ok || id != m1 {
		t.Fatalf("IdempotentMessage before expiry = %q, %v", id, ok)
	}
	if _, _, ok, _ := s.IdempotentMessage(DefaultTenant, "K", t0+day); ok {
		t.Fatal("IdempotentMessage at expiry still answers")
	}

	// The same message id again (a retried command that had committed).
	r = runOK(t, s, fanOut(m1, "x", t0+ms(2000)))
	if r[0].MessageID != m1 || !r[0].Duplicate {
		t.Fatalf("same id again: %+v", r[0])
	}
	// ...even with a different key: nothing is recorded for it.
	r = runOK(t, s, withKey(fanOut(m1, "x", t0+ms(2000)), "K2", t0+day))
	if !r[0].Duplicate {
		t.Fatalf("same id with a new key: %+v", r[0])
	}
	if _, _, ok, _ := s.IdempotentMessage(DefaultTenant, "K2", t0); ok {
		t.Fatal("a duplicate id recorded its idempotency key")
	}
	if m, _ := getMessage(t, s, m1); len(m.Deliveries) != 1 || m.Pending != 1 {
		t.Fatalf("duplicates changed the first message: %+v", m)
	}
	if got := allDue(t, s); !slices.Equal(got, dueBefore) {
		t.Fatalf("duplicate id scheduled deliveries: %v", got)
	}

	// At expiry the key is free: a new message, and the index moves on.
	m3 := g.next(t, "msg", t0+day)
	r = runOK(t, s, withKey(fanOut(m3, "x", t0+day), "K", t0+2*day))
	if r[0].MessageID != m3 || r[0].Duplicate {
		t.Fatalf("key after expiry: %+v, want new message %s", r[0], m3)
	}
	getMessage(t, s, m3)
	if id, _, ok, _ := s.IdempotentMessage(DefaultTenant, "K", t0+day); !ok || id != m3 {
		t.Fatalf("IdempotentMessage after reuse = %q, %v; want %s", id, ok, m3)
	}
	if exp := mustDump(t, s)["tenant_idem_expiry"]; len(exp) != 1 {
		t.Fatalf("expiry index holds %d entries for one key: %q", len(exp), exp)
	}
	// A sweep at the old expiry must not remove the renewed key.
	runOK(t, s, Command{Sweep: &Sweep{At: t0 + day, Limit: 10}})
	if id, _, ok, _ := s.IdempotentMessage(DefaultTenant, "K", t0+day); !ok || id != m3 {
		t.Fatalf("sweep removed a renewed key: %q, %v", id, ok)
	}
}

// TestEnqueueIdempotencyInOneBatch: two enqueues with one key in the same
// entry (two API requests group-committed together).
func TestEnqueueIdempotencyInOneBatch(t *testing.T) {
	s := openTest(t)
	g := newIDs(2)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	a, b := g.next(t, "msg", t0), g.next(t, "msg", t0)
	r := runOK(t, s,
		withKey(fanOut(a, "x", t0), "K", t0+ms(60_000)),
		withKey(fanOut(b, "x", t0), "K", t0+ms(60_000)),
		fanOut(a, "x", t0),
	)
	if r[0].MessageID != a || r[0].Duplicate || r[1].MessageID != a || !r[1].Duplicate || r[2].MessageID != a || !r[2].Duplicate {
		t.Fatalf("results %+v", r)
	}
	if got := allDue(t, s); len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
}

func TestFanOut(t *testing.T) {
	s := openTest(t)
	g := newIDs(3)
	runOK(t, s,
		createEndpoint(epID("all"), "https://all.example", t0),
		createEndpoint(epID("xy"), "https://xy.example", t0, "x", "y"),
		createEndpoint(epID("z"), "https://z.example", t0, "z"),
		createEndpoint(epID("off"), "https://off.example", t0),
		createEndpoint(epID("later_off"), "https://later-off.example", t0, "x"),
		createEndpoint(epID("gone"), "https://gone.example", t0),
	)
	off := createEndpoint(epID("made_off"), "https://created-off.example", t0)
	off.CreateEndpoint.Endpoint.State = StateDisabled
	failing := createEndpoint(epID("failing"), "https://failing.example", t0, "x")
	failing.CreateEndpoint.Endpoint.State = StateDisabledFailing
	runOK(t, s, off, failing,
		Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("off"), At: t0, State: ptr(StateDisabled)}},
		Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("later_off"), At: t0, State: ptr(StateDisabled)}},
		Command{DeleteEndpoint: &DeleteEndpoint{ID: epID("gone"), At: t0}},
	)

	tests := []struct {
		typ  string
		want []string // endpoint ids, in id order
	}{
		{"x", []string{epID("all"), epID("xy")}},
		{"y", []string{epID("all"), epID("xy")}},
		{"z", []string{epID("all"), epID("z")}},
		{"other", []string{epID("all")}},
	}
	for i, tt := range tests {
		at := t0 + ms(int64(i+1))
		id := g.next(t, "msg", at)
		runOK(t, s, fanOut(id, tt.typ, at))
		m, ds := getMessage(t, s, id)
		var got []string
		for n, d := range ds {
			got = append(got, d.EndpointID)
			ep := getEndpoint(t, s, d.EndpointID)
			want := Delivery{ID: DeliveryID(id, n), MessageID: id, EndpointID: ep.ID, URL: ep.URL,
				Status: StatusPending, NextAttemptAt: at}
			if fmt.Sprint(d) != fmt.Sprint(want) {
				t.Errorf("type %q delivery %d = %+v, want %+v", tt.typ, n, d, want)
			}
			if m.Deliveries[n] != d.ID {
				t.Errorf("message lists %s as delivery %d, got %s", m.Deliveries[n], n, d.ID)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("type %q went to %v, want %v", tt.typ, got, tt.want)
		}
		if m.Pending != len(tt.want) || m.Status() != StatusPending || m.Type != tt.typ || m.CreatedAt != at {
			t.Errorf("type %q: message %+v", tt.typ, m)
		}
	}
}

func TestFanOutToNobody(t *testing.T) {
	s := openTest(t)
	g := newIDs(4)
	runOK(t, s, createEndpoint(epID("z"), "https://z.example", t0, "z"))
	id := g.next(t, "msg", t0)
	runOK(t, s, fanOut(id, "x", t0))
	m, ds := getMessage(t, s, id)
	if len(ds) != 0 || m.Status() != StatusSucceeded {
		t.Fatalf("message to nobody: %+v with %d deliveries", m, len(ds))
	}
	// Its body is still stored: GET shows it.
	if _, err := s.Envelope(id); err != nil {
		t.Fatal(err)
	}
}

func TestOverrideAndPing(t *testing.T) {
	s := openTest(t)
	g := newIDs(5)
	runOK(t, s,
		createEndpoint(epID("a"), "https://a.example", t0),
		createEndpoint(epID("z"), "https://z.example", t0, "z"),
	)
	// Overrides go only to the URIs, even with subscribed endpoints.
	ov := g.next(t, "msg", t0)
	runOK(t, s, override(ov, "z", t0, "https://o1.example/x", "https://o2.example/y"))
	_, ds := getMessage(t, s, ov)
	if len(ds) != 2 {
		t.Fatalf("override made %d deliveries, want 2", len(ds))
	}
	for i, u := range []string{"https://o1.example/x", "https://o2.example/y"} {
		if d := ds[i]; d.EndpointID != "" || !d.Override() || d.URL != u || d.Status != StatusPending || d.Queue() != Origin(u) {
			t.Errorf("override delivery %d = %+v", i, d)
		}
	}

	// A ping goes to the named endpoint whatever its filter; unknown ids
	// are skipped.
	p := g.next(t, "msg", t0)
	runOK(t, s, ping(p, t0, epID("z"), epID("missing")))
	_, ds = getMessage(t, s, p)
	if len(ds) != 1 || ds[0].EndpointID != epID("z") || ds[0].URL != "https://z.example" || ds[0].Queue() != epID("z") {
		t.Fatalf("ping deliveries %+v", ds)
	}
	due := allDue(t, s)
	queues := map[string]string{}
	for _, d := range due {
		queues[d.DeliveryID] = d.Queue
	}
	if queues[ds[0].ID] != epID("z") || queues[DeliveryID(ov, 1)] != "https://o2.example:443" {
		t.Fatalf("due index queues %v", queues)
	}
}

func TestOutcomes(t *testing.T) {
	s := openTest(t)
	g := newIDs(6)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	m := g.next(t, "msg", t0)
	runOK(t, s, fanOut(m, "x", t0))
	d := DeliveryID(m, 0)

	// Wrong attempt numbers are duplicates or reports from the future;
	// numbers below 1 are no attempt at all.
	before := mustDump(t, s)
	for _, attempt := range []int{2, 5} {
		runOK(t, s, outcome(d, attempt, t0+ms(10), ResultSucceeded, 200, 0))
	}
	for _, attempt := range []int{0, -1} {
		if r := run(t, s, outcome(d, attempt, t0+ms(10), ResultSucceeded, 200, 0)); invalidField(r[0].Err) != "outcome.attempt" {
			t.Fatalf("attempt %d: %v, want an invalid outcome.attempt", attempt, r[0].Err)
		}
	}
	unknown := newIDs(60).next(t, "msg", t0)
	runOK(t, s, outcome(DeliveryID(unknown, 0), 1, t0, ResultSucceeded, 200, 0))
	after := mustDump(t, s)
	delete(before, "meta")
	delete(after, "meta")
	if diff := diffDumps(before, after); diff != "" {
		t.Fatalf("ignored outcomes changed the state:\n%s", diff)
	}

	// Attempt 1: a retry.
	runOK(t, s, outcome(d, 1, t0+ms(100), ResultRetry, 503, t0+ms(5000)))
	got := getDelivery(t, s, d)
	want := Delivery{ID: d, MessageID: m, EndpointID: epID("a"), URL: "https://a.example", Status: StatusPending,
		AttemptCount: 1, RoundAttempts: 1, FirstAttemptAt: t0 + ms(100), NextAttemptAt: t0 + ms(5000),
		LastStatusCode: 503, LastError: "attempt 1: status 503",
		Attempts: []Attempt{{At: t0 + ms(100), StatusCode: 503, Error: "attempt 1: status 503", DurationMS: 12}}}
	if fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Fatalf("after a retry:\n got %+v\nwant %+v", *got, want)
	}
	if due := allDue(t, s); len(due) != 1 || due[0].At != t0+ms(5000) || due[0].DeliveryID != d {
		t.Fatalf("due index after a retry: %v", due)
	}
	// The same report again (a retried command) changes nothing.
	before = mustDump(t, s)
	runOK(t, s, outcome(d, 1, t0+ms(100), ResultRetry, 503, t0+ms(5000)))
	after = mustDump(t, s)
	delete(before, "meta")
	delete(after, "meta")
	if diff := diffDumps(before, after); diff != "" {
		t.Fatalf("a repeated outcome changed the state:\n%s", diff)
	}

	// Attempt 2 succeeds.
	runOK(t, s, outcome(d, 2, t0+ms(5000), ResultSucceeded, 204, 0))
	got = getDelivery(t, s, d)
	if got.Status != StatusSucceeded || got.AttemptCount != 2 || got.RoundAttempts != 2 || got.NextAttemptAt != 0 ||
		got.FirstAttemptAt != t0+ms(100) || got.LastStatusCode != 204 || got.LastError != "" || len(got.Attempts) != 2 {
		t.Fatalf("after success: %+v", got)
	}
	if due := allDue(t, s); len(due) != 0 {
		t.Fatalf("succeeded delivery still due: %v", due)
	}
	msg, _ := getMessage(t, s, m)
	if msg.Pending != 0 || msg.Succeeded != 1 || msg.Status() != StatusSucceeded {
		t.Fatalf("message after success: %+v", msg)
	}
	// Outcomes for a finished delivery are ignored.
	runOK(t, s, outcome(d, 3, t0+ms(6000), ResultFailed, 500, 0))
	if got := getDelivery(t, s, d); got.Status != StatusSucceeded || got.AttemptCount != 2 {
		t.Fatalf("finished delivery changed: %+v", got)
	}
}

func TestOutcomeResults(t *testing.T) {
	tests := []struct {
		result    string
		code      int
		status    string
		msgStatus string
	}{
		{ResultSucceeded, 200, StatusSucceeded, StatusSucceeded},
		{ResultRetry, 500, StatusPending, StatusPending},
		{ResultFailed, 500, StatusFailed, StatusFailed},
		{ResultGone, 410, StatusFailed, StatusFailed},
		{ResultCancelled, 0, StatusCancelled, StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.result, func(t *testing.T) {
			s := openTest(t)
			g := newIDs(7)
			runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
			m := g.next(t, "msg", t0)
			runOK(t, s, override(m, "x", t0, "https://o.example"))
			runOK(t, s, outcome(DeliveryID(m, 0), 1, t0+ms(1), tt.result, tt.code, t0+ms(1000)))
			d := getDelivery(t, s, DeliveryID(m, 0))
			if d.Status != tt.status || d.LastStatusCode != tt.code || d.AttemptCount != 1 {
				t.Fatalf("delivery %+v, want status %s", d, tt.status)
			}
			msg, _ := getMessage(t, s, m)
			if msg.Status() != tt.msgStatus {
				t.Fatalf("message status %s for a %s delivery, want %s", msg.Status(), tt.status, tt.msgStatus)
			}
			// An override's 410 touches no endpoint.
			if ep := getEndpoint(t, s, epID("a")); ep.State != StateEnabled {
				t.Fatalf("endpoint state %s after an override outcome", ep.State)
			}
		})
	}
}

// TestOutcomeUnknownResult: a result this version does not know is a
// deterministic rejection, not a failure to write (which would stop every
// replica at the same entry, for good).
func TestOutcomeUnknownResult(t *testing.T) {
	s := openTest(t)
	g := newIDs(8)
	m := g.next(t, "msg", t0)
	runOK(t, s, override(m, "x", t0, "https://o.example"))
	before := mustDump(t, s)
	r := run(t, s, outcome(DeliveryID(m, 0), 1, t0, "exploded", 500, 0))
	if r[0].Err == nil {
		t.Fatal("an unknown outcome result was accepted")
	}
	after := mustDump(t, s)
	delete(before, "meta")
	delete(after, "meta")
	if diff := diffDumps(before, after); diff != "" {
		t.Fatalf("a rejected outcome changed the state:\n%s", diff)
	}
}

func TestAttemptHistoryCapped(t *testing.T) {
	s := openTest(t)
	g := newIDs(9)
	m := g.next(t, "msg", t0)
	runOK(t, s, override(m, "x", t0, "https://o.example"))
	d := DeliveryID(m, 0)
	const n = MaxAttemptHistory + 13
	cmds := make([]Command, n)
	for i := range n {
		cmds[i] = outcome(d, i+1, t0+ms(int64(i)), ResultRetry, 500, t0+ms(int64(i+1)))
	}
	// Half in one entry, the rest one per entry.
	runOK(t, s, cmds[:n/2]...)
	for _, c := range cmds[n/2:] {
		runOK(t, s, c)
	}
	got := getDelivery(t, s, d)
	if got.AttemptCount != n || got.RoundAttempts != n || len(got.Attempts) != MaxAttemptHistory {
		t.Fatalf("after %d attempts: count %d, round %d, %d kept", n, got.AttemptCount, got.RoundAttempts, len(got.Attempts))
	}
	for i, a := range got.Attempts { // the newest kept, oldest first
		if want := t0 + ms(int64(n-MaxAttemptHistory+i)); a.At != want {
			t.Fatalf("attempt %d at %d, want %d", i, a.At, want)
		}
	}
	if due := allDue(t, s); len(due) != 1 || due[0].At != t0+ms(n) {
		t.Fatalf("due index %v", due)
	}
}

func TestMessageStatus(t *testing.T) {
	tests := []struct {
		name                                 string
		deliveries                           int
		pending, succeeded, failed, canceled int
		want                                 string
	}{
		{"no deliveries", 0, 0, 0, 0, 0, StatusSucceeded},
		{"all pending", 2, 2, 0, 0, 0, StatusPending},
		{"one pending", 3, 1, 1, 1, 0, StatusPending},
		{"all succeeded", 2, 0, 2, 0, 0, StatusSucceeded},
		{"one failed", 2, 0, 1, 1, 0, StatusFailed},
		{"one cancelled", 2, 0, 1, 0, 1, StatusFailed},
		{"all cancelled", 1, 0, 0, 0, 1, StatusFailed},
		{"all failed", 2, 0, 0, 2, 0, StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Message{Deliveries: make([]string, tt.deliveries), Pending: tt.pending,
				Succeeded: tt.succeeded, Failed: tt.failed, Cancelled: tt.canceled}
			if got := m.Status(); got != tt.want {
				t.Fatalf("Status() = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestMessageStatusApplied drives two deliveries of one message through
// outcomes and watches the aggregate.
func TestMessageStatusApplied(t *testing.T) {
	tests := []struct {
		first, second string // results; "" leaves the delivery pending
		want          string
	}{
		{"", "", StatusPending},
		{ResultSucceeded, "", StatusPending},
		{ResultSucceeded, ResultRetry, StatusPending},
		{ResultSucceeded, ResultSucceeded, StatusSucceeded},
		{ResultSucceeded, ResultFailed, StatusFailed},
		{ResultSucceeded, ResultCancelled, StatusFailed},
		{ResultFailed, ResultGone, StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.first+"/"+tt.second, func(t *testing.T) {
			s := openTest(t)
			m := newIDs(10).next(t, "msg", t0)
			runOK(t, s, override(m, "x", t0, "https://a.example", "https://b.example"))
			for i, res := range []string{tt.first, tt.second} {
				if res != "" {
					runOK(t, s, outcome(DeliveryID(m, i), 1, t0+ms(1), res, 200, t0+ms(99)))
				}
			}
			if msg, _ := getMessage(t, s, m); msg.Status() != tt.want {
				t.Fatalf("status %s, want %s (%+v)", msg.Status(), tt.want, msg)
			}
			listed, _, err := s.ListMessages(DefaultTenant, ListFilter{Status: tt.want}, 10, "")
			if err != nil || len(listed) != 1 {
				t.Fatalf("ListMessages(%s) = %v, %v", tt.want, listed, err)
			}
		})
	}
}

// goneSetup makes endpoints a and b and three messages to both, plus an
// override, all pending.
func goneSetup(t *testing.T) (*Store, []string) {
	s := openTest(t)
	g := newIDs(11)
	runOK(t, s,
		createEndpoint(epID("a"), "https://a.example", t0),
		createEndpoint(epID("b"), "https://b.example", t0),
	)
	var msgs []string
	for i := range 3 {
		at := t0 + ms(int64(i))
		m := g.next(t, "msg", at)
		msgs = append(msgs, m)
		runOK(t, s, fanOut(m, "x", at))
	}
	ov := g.next(t, "msg", t0+ms(5))
	msgs = append(msgs, ov)
	runOK(t, s, override(ov, "x", t0+ms(5), "https://a.example"))
	return s, msgs
}

func TestGoneDisablesEndpoint(t *testing.T) {
	s, msgs := goneSetup(t)
	// msgs[1]'s delivery to ep_a already succeeded; msgs[2]'s is mid-retry.
	runOK(t, s, outcome(DeliveryID(msgs[1], 0), 1, t0+ms(10), ResultSucceeded, 200, 0))
	runOK(t, s, outcome(DeliveryID(msgs[2], 0), 1, t0+ms(10), ResultRetry, 500, t0+ms(900)))

	at := t0 + ms(20)
	runOK(t, s, outcome(DeliveryID(msgs[0], 0), 1, at, ResultGone, 410, 0))

	ep := getEndpoint(t, s, epID("a"))
	if ep.State != StateDisabledFailing || ep.UpdatedAt != at {
		t.Fatalf("endpoint after 410: %+v", ep)
	}
	d0 := getDelivery(t, s, DeliveryID(msgs[0], 0))
	if d0.Status != StatusFailed || d0.LastStatusCode != 410 || d0.AttemptCount != 1 {
		t.Fatalf("the 410 delivery: %+v", d0)
	}
	if d := getDelivery(t, s, DeliveryID(msgs[1], 0)); d.Status != StatusSucceeded {
		t.Fatalf("a succeeded delivery changed: %+v", d)
	}
	d2 := getDelivery(t, s, DeliveryID(msgs[2], 0))
	if d2.Status != StatusFailed || d2.LastError != "endpoint disabled: "+ReasonGone || d2.AttemptCount != 1 {
		t.Fatalf("another pending delivery of the endpoint: %+v", d2)
	}
	for _, m := range msgs[:3] {
		if d := getDelivery(t, s, DeliveryID(m, 1)); d.EndpointID != epID("b") || d.Status != StatusPending {
			t.Fatalf("ep_b's delivery changed: %+v", d)
		}
	}
	// An override to the same URL is not the endpoint.
	if d := getDelivery(t, s, DeliveryID(msgs[3], 0)); d.Status != StatusPending {
		t.Fatalf("override to the same URL: %+v", d)
	}
	for k := range mustDump(t, s)["queued"] {
		if strings.HasPrefix(k, epID("a")+"\x00") {
			t.Fatalf("ep_a still has pending deliveries indexed: %q", k)
		}
	}
	// New messages skip it.
	m := newIDs(12).next(t, "msg", t0+ms(30))
	runOK(t, s, fanOut(m, "x", t0+ms(30)))
	if _, ds := getMessage(t, s, m); len(ds) != 1 || ds[0].EndpointID != epID("b") {
		t.Fatalf("fan-out after 410: %+v", ds)
	}
	// And requeue leaves its failed deliveries alone.
	if r := runOK(t, s, Command{Requeue: &Requeue{MessageID: msgs[2], At: t0 + ms(40)}}); r[0].Count != 0 {
		t.Fatalf("requeued %d deliveries of a disabled endpoint", r[0].Count)
	}
}

func TestUpdateEndpoint(t *testing.T) {
	s, msgs := goneSetup(t)
	runOK(t, s, outcome(DeliveryID(msgs[1], 0), 1, t0+ms(10), ResultSucceeded, 200, 0))
	runOK(t, s, outcome(DeliveryID(msgs[2], 0), 1, t0+ms(10), ResultRetry, 500, t0+ms(900)))

	// A new URL is where pending deliveries go next: the attempt and the
	// message read it from the endpoint. Finished ones keep theirs.
	r := runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0 + ms(50), URL: ptr("https://a2.example"),
		Name: ptr("A"), EventTypes: ptr([]string{"x", "y"}), RateLimitPerS: ptr(7)}})
	if r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	ep := getEndpoint(t, s, epID("a"))
	if ep.URL != "https://a2.example" || ep.Name != "A" || !slices.Equal(ep.EventTypes, []string{"x", "y"}) ||
		ep.RateLimitPerS != 7 || ep.UpdatedAt != t0+ms(50) || ep.State != StateEnabled || ep.CreatedAt != t0 {
		t.Fatalf("endpoint after update: %+v", ep)
	}
	viewURL := func(msg string, n int) string {
		t.Helper()
		_, ds, err := s.Message(DefaultTenant, msg)
		if err != nil {
			t.Fatal(err)
		}
		return ds[n].URL
	}
	for i, want := range []string{"https://a2.example", "https://a.example", "https://a2.example"} {
		if got := viewURL(msgs[i], 0); got != want {
			t.Fatalf("delivery of message %d: url %s, want %s", i, got, want)
		}
	}
	if a, err := s.ForAttempt(DeliveryID(msgs[2], 0)); err != nil || a.Delivery.URL != "https://a2.example" {
		t.Fatalf("attempt after the URL change: %+v, %v", a, err)
	}
	if got := viewURL(msgs[0], 1); got != "https://b.example" {
		t.Fatalf("ep_b's delivery retargeted: %s", got)
	}
	if a, err := s.ForAttempt(DeliveryID(msgs[3], 0)); err != nil || a.Delivery.URL != "https://a.example" || viewURL(msgs[3], 0) != "https://a.example" {
		t.Fatalf("override retargeted: %+v, %v", a, err)
	}
	// An attempt's outcome records the URL it went to.
	runOK(t, s, outcome(DeliveryID(msgs[2], 0), 2, t0+ms(52), ResultRetry, 500, t0+ms(900)))
	if d := getDelivery(t, s, DeliveryID(msgs[2], 0)); d.URL != "https://a2.example" {
		t.Fatalf("delivery after an attempt at the new URL: %+v", d)
	}
	// Setting only some fields leaves the rest.
	runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0 + ms(51), Name: ptr("")}})
	if ep := getEndpoint(t, s, epID("a")); ep.URL != "https://a2.example" || ep.Name != "" || ep.RateLimitPerS != 7 {
		t.Fatalf("partial update: %+v", ep)
	}

	// Disabling cancels its pending deliveries (not others').
	runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0 + ms(60), State: ptr(StateDisabled)}})
	if ep := getEndpoint(t, s, epID("a")); ep.State != StateDisabled || ep.UpdatedAt != t0+ms(60) {
		t.Fatalf("endpoint after disable: %+v", ep)
	}
	for i, want := range []string{StatusCancelled, StatusSucceeded, StatusCancelled} {
		d := getDelivery(t, s, DeliveryID(msgs[i], 0))
		if d.Status != want {
			t.Fatalf("delivery of message %d after disable: %s, want %s", i, d.Status, want)
		}
		if want == StatusCancelled && d.LastError != "endpoint disabled" {
			t.Fatalf("cancelled delivery's last error %q", d.LastError)
		}
		if ds := getDelivery(t, s, DeliveryID(msgs[i], 1)); ds.Status != StatusPending {
			t.Fatalf("ep_b's delivery after disabling ep_a: %+v", ds)
		}
	}
	if m, _ := getMessage(t, s, msgs[0]); m.Cancelled != 1 || m.Pending != 1 {
		t.Fatalf("message counters after disable: %+v", m)
	}
	// Disabling again is a no-op.
	before := mustDump(t, s)["deliveries"]
	runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0 + ms(61), State: ptr(StateDisabled)}})
	if diff := diffDumps(map[string]map[string]string{"d": before}, map[string]map[string]string{"d": mustDump(t, s)["deliveries"]}); diff != "" {
		t.Fatalf("disabling twice changed deliveries:\n%s", diff)
	}

	// Re-enabling takes new messages; cancelled ones stay cancelled.
	runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0 + ms(70), State: ptr(StateEnabled)}})
	if ep := getEndpoint(t, s, epID("a")); ep.State != StateEnabled {
		t.Fatalf("re-enabled endpoint: %+v", ep)
	}
	if d := getDelivery(t, s, DeliveryID(msgs[0], 0)); d.Status != StatusCancelled {
		t.Fatalf("re-enabling revived a cancelled delivery: %+v", d)
	}
	m := newIDs(13).next(t, "msg", t0+ms(80))
	runOK(t, s, fanOut(m, "y", t0+ms(80)))
	if _, ds := getMessage(t, s, m); len(ds) != 2 || ds[0].EndpointID != epID("a") || ds[0].URL != "https://a2.example" {
		t.Fatalf("fan-out after re-enable: %+v", ds)
	}

	// Unknown endpoints.
	if r := run(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("nope"), At: t0, Name: ptr("x")}}); !errors.Is(r[0].Err, ErrNotFound) {
		t.Fatalf("update of an unknown endpoint: %v", r[0].Err)
	}
}

func TestCreateAndDeleteEndpoint(t *testing.T) {
	s, msgs := goneSetup(t)
	if r := run(t, s, createEndpoint(epID("a"), "https://other.example", t0)); !errors.Is(r[0].Err, ErrExists) {
		t.Fatalf("creating an existing endpoint: %v", r[0].Err)
	}
	if ep := getEndpoint(t, s, epID("a")); ep.URL != "https://a.example" {
		t.Fatalf("a rejected create overwrote the endpoint: %+v", ep)
	}
	runOK(t, s, outcome(DeliveryID(msgs[1], 0), 1, t0+ms(10), ResultFailed, 500, 0))

	runOK(t, s, Command{DeleteEndpoint: &DeleteEndpoint{ID: epID("a"), At: t0 + ms(20)}})
	if _, err := s.Endpoint(DefaultTenant, epID("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted endpoint: %v", err)
	}
	for i, want := range []string{StatusCancelled, StatusFailed, StatusCancelled} {
		d := getDelivery(t, s, DeliveryID(msgs[i], 0))
		if d.Status != want || (want == StatusCancelled && d.LastError != "endpoint deleted") {
			t.Fatalf("delivery of message %d after delete: %+v", i, d)
		}
	}
	// A delivery of a deleted endpoint has no endpoint to attempt with.
	av, err := s.ForAttempt(DeliveryID(msgs[0], 0))
	if err != nil || av.Endpoint != nil {
		t.Fatalf("ForAttempt of a deleted endpoint's delivery: %+v, %v", av, err)
	}
	if r := run(t, s, Command{DeleteEndpoint: &DeleteEndpoint{ID: epID("a"), At: t0}}); !errors.Is(r[0].Err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", r[0].Err)
	}
	// Requeue skips the failed delivery of the deleted endpoint.
	if r := runOK(t, s, Command{Requeue: &Requeue{MessageID: msgs[1], At: t0 + ms(30)}}); r[0].Count != 0 {
		t.Fatalf("requeued %d deliveries to a deleted endpoint", r[0].Count)
	}
	// Recreating the id starts afresh.
	runOK(t, s, createEndpoint(epID("a"), "https://a3.example", t0+ms(40)))
	if d := getDelivery(t, s, DeliveryID(msgs[0], 0)); d.Status != StatusCancelled {
		t.Fatalf("recreating the endpoint revived %+v", d)
	}
}

func TestRequeue(t *testing.T) {
	s := openTest(t)
	g := newIDs(14)
	runOK(t, s,
		createEndpoint(epID("a"), "https://a.example", t0),
		createEndpoint(epID("b"), "https://b.example", t0),
		createEndpoint(epID("c"), "https://c.example", t0),
	)
	m := g.next(t, "msg", t0)
	runOK(t, s, fanOut(m, "x", t0))
	a, b, c := DeliveryID(m, 0), DeliveryID(m, 1), DeliveryID(m, 2)
	runOK(t, s,
		outcome(a, 1, t0+ms(1), ResultRetry, 500, t0+ms(2)),
		outcome(b, 1, t0+ms(1), ResultFailed, 500, 0),
		outcome(c, 1, t0+ms(1), ResultSucceeded, 200, 0),
	)
	runOK(t, s, outcome(a, 2, t0+ms(2), ResultFailed, 500, 0))
	runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("b"), At: t0 + ms(3), State: ptr(StateDisabled)}})

	if r := run(t, s, Command{Requeue: &Requeue{MessageID: "msg_nope", At: t0}}); !errors.Is(r[0].Err, ErrNotFound) {
		t.Fatalf("requeue of an unknown message: %+v", r[0])
	}
	at := t0 + ms(1000)
	r := runOK(t, s, Command{Requeue: &Requeue{MessageID: m, At: at}})
	if r[0].Count != 1 {
		t.Fatalf("requeued %d, want 1 (ep_b is disabled, ep_c succeeded)", r[0].Count)
	}
	d := getDelivery(t, s, a)
	if d.Status != StatusPending || d.RoundAttempts != 0 || d.FirstAttemptAt != 0 || d.NextAttemptAt != at ||
		d.AttemptCount != 2 || len(d.Attempts) != 2 {
		t.Fatalf("requeued delivery: %+v", d)
	}
	if got := getDelivery(t, s, b); got.Status != StatusFailed {
		t.Fatalf("disabled endpoint's delivery requeued: %+v", got)
	}
	if got := getDelivery(t, s, c); got.Status != StatusSucceeded {
		t.Fatalf("succeeded delivery touched: %+v", got)
	}
	msg, _ := getMessage(t, s, m)
	if msg.Pending != 1 || msg.Failed != 1 || msg.Succeeded != 1 || msg.Status() != StatusPending {
		t.Fatalf("message after requeue: %+v", msg)
	}
	if due := allDue(t, s); len(due) != 1 || due[0] != (Due{DeliveryID: a, At: at, Queue: epID("a")}) {
		t.Fatalf("due index: %v", due)
	}
	// Requeueing a pending delivery again changes nothing.
	before := mustDump(t, s)["deliveries"]
	if r := runOK(t, s, Command{Requeue: &Requeue{MessageID: m, At: at + ms(5)}}); r[0].Count != 0 {
		t.Fatalf("second requeue: %d", r[0].Count)
	}
	if diff := diffDumps(map[string]map[string]string{"d": before}, map[string]map[string]string{"d": mustDump(t, s)["deliveries"]}); diff != "" {
		t.Fatalf("second requeue changed deliveries:\n%s", diff)
	}
	// The next attempt continues the overall count and starts a round.
	runOK(t, s, outcome(a, 3, at+ms(1), ResultRetry, 500, at+ms(10)))
	if d := getDelivery(t, s, a); d.AttemptCount != 3 || d.RoundAttempts != 1 || d.FirstAttemptAt != at+ms(1) {
		t.Fatalf("first attempt of the new round: %+v", d)
	}
}

func TestRequeueWindow(t *testing.T) {
	s := openTest(t)
	g := newIDs(15)
	var msgs []string
	for i := range 5 {
		at := t0 + ms(int64(i)*1000)
		m := g.next(t, "msg", at)
		msgs = append(msgs, m)
		runOK(t, s, override(m, "x", at, "https://o.example"))
		runOK(t, s, outcome(DeliveryID(m, 0), 1, at, ResultFailed, 500, 0))
	}
	// msgs[4] is also cancelled-only: no failed delivery to requeue.
	m5 := g.next(t, "msg", t0+ms(2500))
	runOK(t, s, override(m5, "x", t0+ms(2500), "https://o.example"))
	runOK(t, s, outcome(DeliveryID(m5, 0), 1, t0+ms(2500), ResultCancelled, 0, 0))

	tests := []struct {
		since, until int64
		want         []int // indexes into msgs
	}{
		{t0 + ms(1000), t0 + ms(3000), []int{1, 2}},
		{t0 + ms(1500), t0 + ms(2000), nil},
		{t0 + ms(3000), 0, []int{3, 4}},
		{0, t0 + ms(1), []int{0}},
		{0, 0, []int{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		snap := cloneStore(t, s)
		r := runOK(t, snap, Command{Requeue: &Requeue{Since: tt.since, Until: tt.until, At: t0 + ms(9999)}})
		if r[0].Count != len(tt.want) {
			t.Errorf("window [%d, %d): requeued %d, want %d", tt.since-t0, tt.until-t0, r[0].Count, len(tt.want))
		}
		for i, m := range msgs {
			want := StatusFailed
			if slices.Contains(tt.want, i) {
				want = StatusPending
			}
			if d := getDelivery(t, snap, DeliveryID(m, 0)); d.Status != want {
				t.Errorf("window [%d, %d): message %d delivery %s, want %s", tt.since-t0, tt.until-t0, i, d.Status, want)
			}
		}
		if d := getDelivery(t, snap, DeliveryID(m5, 0)); d.Status != StatusCancelled {
			t.Errorf("cancelled delivery requeued: %+v", d)
		}
	}
}

// cloneStore copies s into a fresh store through a snapshot.
func cloneStore(t *testing.T, s *Store) *Store {
	t.Helper()
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	_, err = sn.WriteTo(&buf)
	sn.Release()
	if err != nil {
		t.Fatal(err)
	}
	c := openTest(t)
	if err := c.Restore(strings.NewReader(buf.String())); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSameBatchSeesEarlierCommands: commands later in an entry (or in a
// later entry of the same Apply call) see what earlier ones did. Raft
// batches entries differently on each replica, so anything else diverges.
func TestSameBatchSeesEarlierCommands(t *testing.T) {
	g := newIDs(16)
	m := g.next(t, "msg", t0)
	setup := []Command{override(m, "x", t0, "https://o.example")}
	fail := outcome(DeliveryID(m, 0), 1, t0+ms(1), ResultFailed, 500, 0)
	window := Command{Requeue: &Requeue{Since: t0, At: t0 + ms(2)}}
	sweep := Command{Sweep: &Sweep{At: t0 + ms(3), RetainSince: t0 + ms(10), Limit: 10}}

	t.Run("fail then requeue window", func(t *testing.T) {
		s := openTest(t)
		runOK(t, s, setup...)
		if r := runOK(t, s, fail, window); r[1].Count != 1 {
			t.Fatalf("requeue in the same entry as the failure: count %d, want 1", r[1].Count)
		}
	})
	t.Run("requeue then sweep", func(t *testing.T) {
		s := openTest(t)
		runOK(t, s, setup...)
		runOK(t, s, fail)
		runOK(t, s, Command{Requeue: &Requeue{MessageID: m, At: t0 + ms(2)}}, sweep) // runOK checks the indexes
		if _, ds := getMessage(t, s, m); ds[0].Status != StatusPending {
			t.Fatalf("requeued delivery: %+v", ds[0])
		}
	})
	t.Run("succeed then sweep", func(t *testing.T) {
		s := openTest(t)
		runOK(t, s, setup...)
		r := runOK(t, s, outcome(DeliveryID(m, 0), 1, t0+ms(1), ResultSucceeded, 200, 0), sweep)
		if r[1].Count != 1 {
			t.Fatalf("sweep after success in the same entry removed %d, want 1", r[1].Count)
		}
		if _, _, err := s.Message(DefaultTenant, m); !errors.Is(err, ErrNotFound) {
			t.Fatalf("finished message not swept: %v", err)
		}
	})
	t.Run("enqueue then sweep", func(t *testing.T) {
		s := openTest(t)
		empty := g.next(t, "msg", t0)
		r := runOK(t, s, fanOut(empty, "x", t0), sweep)
		if r[1].Count != 1 {
			t.Fatalf("sweep of a finished message enqueued in the same entry removed %d, want 1", r[1].Count)
		}
	})
	t.Run("across entries of one Apply", func(t *testing.T) {
		s := openTest(t)
		runOK(t, s, setup...)
		res, err := s.Apply([]Entry{entry(t, 2, fail), entry(t, 3, window)})
		if err != nil {
			t.Fatal(err)
		}
		mustCheck(t, s)
		if res[1][0].Count != 1 {
			t.Fatalf("requeue in the next entry of the same Apply: count %d, want 1", res[1][0].Count)
		}
	})
}

func TestRotateSecret(t *testing.T) {
	s := openTest(t)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	day := ms(24 * 3600 * 1000)
	s1, s2, s3, s4 := testSecret(epID("a")), testSecret("2"), testSecret("3"), testSecret("4")

	t1 := t0 + ms(1000)
	rot := Command{RotateSecret: &RotateSecret{EndpointID: epID("a"), Secret: s2, At: t1, RevokeAt: t1 + day}}
	runOK(t, s, rot)
	ep := getEndpoint(t, s, epID("a"))
	if want := []Secret{{Key: s2}, {Key: s1, ExpiresAt: t1 + day}}; !slices.Equal(ep.Secrets, want) {
		t.Fatalf("secrets after rotation: %+v", ep.Secrets)
	}
	if ep.UpdatedAt != t1 {
		t.Fatalf("UpdatedAt %d", ep.UpdatedAt)
	}
	// Retried command (committed the first time): no change.
	before := mustDump(t, s)["endpoints"]
	runOK(t, s, rot)
	if diff := diffDumps(map[string]map[string]string{"e": before}, map[string]map[string]string{"e": mustDump(t, s)["endpoints"]}); diff != "" {
		t.Fatalf("applying the same rotation twice changed the endpoint:\n%s", diff)
	}

	// A second rotation keeps the earlier expiry of the oldest and gives
	// the previous newest the new revoke time.
	t2 := t1 + ms(3600*1000)
	runOK(t, s, Command{RotateSecret: &RotateSecret{EndpointID: epID("a"), Secret: s3, At: t2, RevokeAt: t2 + day}})
	ep = getEndpoint(t, s, epID("a"))
	want := []Secret{{Key: s3}, {Key: s2, ExpiresAt: t2 + day}, {Key: s1, ExpiresAt: t1 + day}}
	if !slices.Equal(ep.Secrets, want) {
		t.Fatalf("secrets after second rotation: %+v", ep.Secrets)
	}
	live := []struct {
		at   int64
		want []string
	}{
		{t2, []string{s3, s2, s1}},
		{t1 + day - 1, []string{s3, s2, s1}},
		{t1 + day, []string{s3, s2}},
		{t2 + day, []string{s3}},
	}
	for _, l := range live {
		if got := ep.LiveSecrets(l.at); !slices.Equal(got, l.want) {
			t.Errorf("LiveSecrets(+%d) = %v, want %v", l.at-t0, got, l.want)
		}
	}

	// Revoking immediately drops every older secret.
	t3 := t2 + ms(1000)
	runOK(t, s, Command{RotateSecret: &RotateSecret{EndpointID: epID("a"), Secret: s4, At: t3, RevokeAt: t3}})
	if ep := getEndpoint(t, s, epID("a")); !slices.Equal(ep.Secrets, []Secret{{Key: s4}}) {
		t.Fatalf("secrets after immediate revoke: %+v", ep.Secrets)
	}
	if r := run(t, s, Command{RotateSecret: &RotateSecret{EndpointID: epID("nope"), Secret: s2, At: t3, RevokeAt: t3}}); !errors.Is(r[0].Err, ErrNotFound) {
		t.Fatalf("rotating an unknown endpoint: %v", r[0].Err)
	}
}

// TestRotateSecretKeepsAtMostMaxSecrets: however often a secret is rotated
// with a late revoke time, the endpoint keeps the newest MaxSecrets.
func TestRotateSecretKeepsAtMostMaxSecrets(t *testing.T) {
	s := openTest(t)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	day := ms(24 * 3600 * 1000)
	want := []Secret{{Key: testSecret(epID("a"))}} // newest first
	for i := range 3 * MaxSecrets {
		at := t0 + ms(int64(i+1))
		key := testSecret(fmt.Sprint("rotation ", i))
		runOK(t, s, Command{RotateSecret: &RotateSecret{EndpointID: epID("a"), Secret: key, At: at, RevokeAt: at + day}})
		for j := range want {
			if want[j].ExpiresAt == 0 {
				want[j].ExpiresAt = at + day // the earlier expiries stay
			}
		}
		want = append([]Secret{{Key: key}}, want...)
		want = want[:min(len(want), MaxSecrets)]
		if ep := getEndpoint(t, s, epID("a")); !slices.Equal(ep.Secrets, want) {
			t.Fatalf("after rotation %d: %d secrets %+v, want %+v", i, len(ep.Secrets), ep.Secrets, want)
		}
	}
}

func TestLiveSecretsAndSubscribed(t *testing.T) {
	ep := Endpoint{Secrets: []Secret{{Key: "a"}, {Key: "b", ExpiresAt: 100}, {Key: "c", ExpiresAt: 50}}}
	for _, tt := range []struct {
		now  int64
		want []string
	}{
		{0, []string{"a", "b", "c"}},
		{49, []string{"a", "b", "c"}},
		{50, []string{"a", "b"}},
		{100, []string{"a"}},
	} {
		if got := ep.LiveSecrets(tt.now); !slices.Equal(got, tt.want) {
			t.Errorf("LiveSecrets(%d) = %v, want %v", tt.now, got, tt.want)
		}
	}
	for _, tt := range []struct {
		types []string
		typ   string
		want  bool
	}{
		{nil, "x", true},
		{[]string{}, "", true},
		{[]string{"x"}, "x", true},
		{[]string{"x", "y"}, "y", true},
		{[]string{"x"}, "X", false},
		{[]string{"x"}, "", false},
	} {
		e := Endpoint{EventTypes: tt.types}
		if got := e.Subscribed(tt.typ); got != tt.want {
			t.Errorf("%v.Subscribed(%q) = %v", tt.types, tt.typ, got)
		}
	}
}

func TestAddSigningKey(t *testing.T) {
	s := openTest(t)
	k := signingKey
	runOK(t, s, k("k1", "ed25519", t0), k("k2", "rs256", t0+1))
	runOK(t, s, k("k3", "ed25519", t0+2))
	keys, err := s.SigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	retired := map[string]int64{}
	for _, key := range keys {
		retired[key.ID] = key.RetiredAt
	}
	if want := map[string]int64{"k1": t0 + 2, "k2": 0, "k3": 0}; fmt.Sprint(retired) != fmt.Sprint(want) {
		t.Fatalf("retired at %v, want %v", retired, want)
	}
	// Adding a key twice (a retried command) changes nothing, even after a
	// newer key.
	runOK(t, s, k("k4", "ed25519", t0+3))
	before := mustDump(t, s)["signing_keys"]
	runOK(t, s, k("k3", "ed25519", t0+2))
	if diff := diffDumps(map[string]map[string]string{"k": before}, map[string]map[string]string{"k": mustDump(t, s)["signing_keys"]}); diff != "" {
		t.Fatalf("re-adding a key changed keys:\n%s", diff)
	}
}

func TestSweepIdempotencyKeys(t *testing.T) {
	s := openTest(t)
	g := newIDs(17)
	for i := range 5 {
		at := t0 + ms(int64(i))
		runOK(t, s, withKey(override(g.next(t, "msg", at), "x", at, "https://o.example"), fmt.Sprintf("K%d", i), t0+ms(int64(100+i))))
	}
	// Limit 2: the two oldest expired keys.
	r := runOK(t, s, Command{Sweep: &Sweep{At: t0 + ms(103), Limit: 2}})
	if r[0].Count != 2 {
		t.Fatalf("swept %d, want 2", r[0].Count)
	}
	exists := func(key string) bool {
		_, ok := mustDump(t, s)["tenant_idempotency"][DefaultTenant+"\x00"+key]
		return ok
	}
	for i, want := range []bool{false, false, true, true, true} {
		if got := exists(fmt.Sprintf("K%d", i)); got != want {
			t.Fatalf("after first sweep K%d exists = %v", i, got)
		}
	}
	r = runOK(t, s, Command{Sweep: &Sweep{At: t0 + ms(103), Limit: 10}})
	if r[0].Count != 2 {
		t.Fatalf("second sweep removed %d, want 2", r[0].Count)
	}
	d := mustDump(t, s)
	if len(d["tenant_idempotency"]) != 1 || len(d["tenant_idem_expiry"]) != 1 || !exists("K4") {
		t.Fatalf("after sweeping to +103ms: %q / %q", d["tenant_idempotency"], d["tenant_idem_expiry"])
	}
	// Messages are not finished yet, so none went.
	if len(d["messages"]) != 5 {
		t.Fatalf("%d messages left, want 5", len(d["messages"]))
	}
	if r := runOK(t, s, Command{Sweep: &Sweep{At: t0 + ms(103), Limit: 10}}); r[0].Count != 0 {
		t.Fatalf("sweeping again removed %d", r[0].Count)
	}
}

func TestSweepMessages(t *testing.T) {
	s := openTest(t)
	g := newIDs(18)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	mk := func(offsetMS int64, results ...string) string {
		at := t0 + ms(offsetMS)
		id := g.next(t, "msg", at)
		uris := make([]string, len(results))
		for i := range uris {
			uris[i] = fmt.Sprintf("https://o%d.example", i)
		}
		c := override(id, "x", at, uris...)
		if len(uris) == 0 {
			c = fanOut(id, "nobody-subscribes", at) // ep_a takes all; disable it below
		}
		runOK(t, s, c)
		for i, res := range results {
			if res != "" {
				runOK(t, s, outcome(DeliveryID(id, i), 1, at, res, 200, at+ms(1)))
			}
		}
		return id
	}
	runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0, State: ptr(StateDisabled)}})
	oldOK := mk(1, ResultSucceeded, ResultSucceeded)
	oldFailed := mk(2, ResultSucceeded, ResultFailed)
	oldPending := mk(3, ResultSucceeded, "")
	oldRetrying := mk(4, ResultRetry)
	oldEmpty := mk(5)
	oldCancelled := mk(6, ResultCancelled)
	newOK := mk(1000, ResultSucceeded)

	retain := t0 + ms(500)
	r := runOK(t, s, Command{Sweep: &Sweep{At: retain + ms(1), RetainSince: retain, Limit: 100}})
	if r[0].Count != 4 {
		t.Fatalf("swept %d, want 4", r[0].Count)
	}
	d := mustDump(t, s)
	for _, gone := range []string{oldOK, oldFailed, oldEmpty, oldCancelled} {
		if _, ok := d["messages"][gone]; ok {
			t.Errorf("finished old message %s kept", gone)
		}
		if _, ok := d["envelopes"][gone]; ok {
			t.Errorf("envelope of %s kept", gone)
		}
		for dk := range d["deliveries"] {
			if strings.HasPrefix(dk, "dlv_"+strings.TrimPrefix(gone, "msg_")) {
				t.Errorf("delivery %s of swept message kept", dk)
			}
		}
	}
	for _, kept := range []string{oldPending, oldRetrying, newOK} {
		m, ds := getMessage(t, s, kept)
		if len(ds) != len(m.Deliveries) {
			t.Errorf("kept message %s lost deliveries", kept)
		}
		if _, err := s.Envelope(kept); err != nil {
			t.Errorf("kept message %s: %v", kept, err)
		}
	}
	// Once the pending one finishes it goes too; Limit bounds each sweep.
	runOK(t, s, outcome(DeliveryID(oldPending, 1), 1, retain, ResultSucceeded, 200, 0))
	runOK(t, s, outcome(DeliveryID(oldRetrying, 0), 2, retain, ResultFailed, 500, 0))
	r = runOK(t, s, Command{Sweep: &Sweep{At: retain, RetainSince: retain, Limit: 1}})
	if r[0].Count != 1 {
		t.Fatalf("sweep with limit 1 removed %d", r[0].Count)
	}
	if _, _, err := s.Message(DefaultTenant, oldPending); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the oldest finished message should go first: %v", err)
	}
	r = runOK(t, s, Command{Sweep: &Sweep{At: retain, RetainSince: retain, Limit: 1}})
	if r[0].Count != 1 {
		t.Fatalf("second sweep removed %d", r[0].Count)
	}
	if r = runOK(t, s, Command{Sweep: &Sweep{At: retain, RetainSince: retain, Limit: 1}}); r[0].Count != 0 {
		t.Fatalf("third sweep removed %d", r[0].Count)
	}
	if _, _, err := s.Message(DefaultTenant, newOK); err != nil {
		t.Fatalf("message inside retention swept: %v", err)
	}
	// Outcomes for swept deliveries are ignored.
	runOK(t, s, outcome(DeliveryID(oldOK, 0), 2, retain, ResultSucceeded, 200, 0))
}

func TestSweepSigningKeys(t *testing.T) {
	s := openTest(t)
	k := func(id string, at int64) Command { return signingKey(id, AlgEd25519, at) }
	for i := range 5 {
		runOK(t, s, k(fmt.Sprintf("k%d", i), t0+int64(i)))
	}
	// k0..k3 are retired at t0+1..t0+4; k4 is live.
	r := runOK(t, s, Command{Sweep: &Sweep{At: t0 + 10, KeysRetiredBefore: t0 + 4, Limit: 2}})
	if r[0].Count != 2 {
		t.Fatalf("swept %d keys with limit 2", r[0].Count)
	}
	r = runOK(t, s, Command{Sweep: &Sweep{At: t0 + 10, KeysRetiredBefore: t0 + 4, Limit: 10}})
	if r[0].Count != 1 {
		t.Fatalf("second sweep removed %d keys, want 1", r[0].Count)
	}
	keys, _ := s.SigningKeys()
	var ids []string
	for _, key := range keys {
		ids = append(ids, key.ID)
	}
	if !slices.Equal(ids, []string{"k3", "k4"}) {
		t.Fatalf("keys left %v, want [k3 k4] (k3 retired at the cutoff, k4 live)", ids)
	}
}

func TestPutNode(t *testing.T) {
	s := openTest(t)
	runOK(t, s,
		Command{PutNode: &Node{ID: "n2", APIAddr: "a2:80", RaftAddr: "r2:90"}},
		Command{PutNode: &Node{ID: "n1", APIAddr: "a1:80", RaftAddr: "r1:90"}},
		Command{PutNode: &Node{ID: "n2", APIAddr: "[::1]:80", RaftAddr: "r2:90"}},
		Command{PutNode: &Node{ID: "n3", RaftAddr: "r3:90"}}, // a node that serves no API
	)
	nodes, err := s.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Node{{"n1", "a1:80", "r1:90"}, {"n2", "[::1]:80", "r2:90"}, {"n3", "", "r3:90"}}; !slices.Equal(nodes, want) {
		t.Fatalf("nodes %v, want %v", nodes, want)
	}
}

// TestApplyReportsIndexAndSchedule covers Result.Index and the OnApplied
// hook the leader's scheduler listens to.
func TestApplyReportsIndexAndSchedule(t *testing.T) {
	type call struct {
		index uint64
		due   []Due
		keys  bool
		tried []AppliedAttempt
	}
	var calls []call
	s, err := Open(t.TempDir()+"/state.db", Options{NoSync: true, OnApplied: func(a Applied) {
		calls = append(calls, call{a.Index, slices.Clone(a.Scheduled), a.KeysChanged, slices.Clone(a.Attempts)})
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := newIDs(19)
	m := g.next(t, "msg", t0)
	res, err := s.Apply([]Entry{
		entry(t, 1, createEndpoint(epID("a"), "https://a.example", t0)),
		{Index: 2},
		entry(t, 3, fanOut(m, "x", t0), override(g.next(t, "msg", t0), "x", t0, "https://o.example")),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0][0].Index != 1 || res[2][0].Index != 3 || res[2][1].Index != 3 {
		t.Fatalf("result indexes %+v", res)
	}
	if len(calls) != 1 || calls[0].index != 3 || len(calls[0].due) != 2 || calls[0].due[0].Queue != epID("a") {
		t.Fatalf("OnApplied calls %+v", calls)
	}
	runOK(t, s, outcome(DeliveryID(m, 0), 1, t0+ms(1), ResultRetry, 500, t0+ms(50)))
	if last := calls[len(calls)-1]; last.index != 4 || len(last.due) != 1 || last.due[0] != (Due{DeliveryID(m, 0), t0 + ms(50), epID("a")}) ||
		len(last.tried) != 1 || last.tried[0].Status != StatusPending || last.tried[0].Attempt != 1 ||
		last.tried[0].StatusCode != 500 || last.tried[0].NextAttemptAt != t0+ms(50) || last.tried[0].Tenant != DefaultTenant {
		t.Fatalf("OnApplied after a retry: %+v", last)
	}
	runOK(t, s, outcome(DeliveryID(m, 0), 2, t0+ms(50), ResultSucceeded, 200, 0))
	if last := calls[len(calls)-1]; last.index != 5 || len(last.due) != 0 ||
		len(last.tried) != 1 || last.tried[0].Status != StatusSucceeded || last.tried[0].MessageID != m {
		t.Fatalf("OnApplied after a success: %+v", last)
	}
	// A duplicate outcome reports no attempt.
	runOK(t, s, outcome(DeliveryID(m, 0), 2, t0+ms(50), ResultSucceeded, 200, 0))
	if last := calls[len(calls)-1]; len(last.tried) != 0 {
		t.Fatalf("OnApplied after a duplicate outcome: %+v", last)
	}
	// A failed Apply reports nothing.
	n := len(calls)
	if _, err := s.Apply([]Entry{failingEntry(t, s, 7)}); err == nil {
		t.Fatal("expected an error")
	}
	if len(calls) != n {
		t.Fatalf("OnApplied called after a failed Apply: %+v", calls[n:])
	}
	removeCorrupt(t, s)
	// A signing key, and only that, reports KeysChanged.
	if calls[n-1].keys {
		t.Fatalf("KeysChanged after an outcome: %+v", calls[n-1])
	}
	runOK(t, s, signingKey("k1", AlgEd25519, t0))
	if last := calls[len(calls)-1]; !last.keys {
		t.Fatalf("no KeysChanged after a new signing key: %+v", last)
	}
}

// TestEnqueueRejectsUnprefixedID: delivery ids are the message id without
// its "msg_" prefix plus a counter, so a message id without the prefix
// could name another message's deliveries ("AB" and "msg_AB" both make
// dlv_AB0000) and take them over.
func TestEnqueueRejectsUnprefixedID(t *testing.T) {
	s := openTest(t)
	m := newIDs(61).next(t, "msg", t0)
	runOK(t, s, override(m, "x", t0, "https://o.example"))
	for _, id := range []string{m[4:], "", "dlv_" + m[4:], "MSG_" + m[4:], "ep_" + m[4:], m + "0000", DeliveryID(m, 0)} {
		r := run(t, s, override(id, "x", t0, "https://p.example"))
		if f := invalidField(r[0].Err); f != "enqueue.id" {
			t.Errorf("enqueue of message id %q: %v, want an invalid enqueue.id", id, r[0].Err)
		}
	}
	runOK(t, s, outcome(DeliveryID(m, 0), 1, t0, ResultSucceeded, 200, 0))
	if msg, ds := getMessage(t, s, m); msg.Status() != StatusSucceeded || ds[0].MessageID != m || ds[0].URL != "https://o.example" {
		t.Fatalf("message %+v, deliveries %+v", msg, ds)
	}
}

// TestEmptyIDsAreRejectedNotFatal checks that a command that would store a
// record under an empty key is rejected in its result, and the batch
// around it still applies (an Apply error would halt every replica).
func TestEmptyIDsAreRejectedNotFatal(t *testing.T) {
	s := openTest(t)
	for i, tc := range []struct {
		cmd   Command
		field string
	}{
		{createEndpoint("", "https://a.example", t0), "create_endpoint.endpoint.id"},
		{signingKey("", AlgEd25519, t0), "add_signing_key.key.id"},
		{Command{PutNode: &Node{APIAddr: "127.0.0.1:1"}}, "put_node.id"},
	} {
		res := run(t, s, tc.cmd, createEndpoint(epID(fmt.Sprintf("ok%d", i)), "https://ok.example", t0))
		if f := invalidField(res[0].Err); f != tc.field {
			t.Fatalf("%s: %v, want an invalid %s", kindOf(&tc.cmd), res[0].Err, tc.field)
		}
		if res[1].Err != nil {
			t.Fatalf("the command after a rejected one failed: %v", res[1].Err)
		}
	}
	mustCheck(t, s)
}

// An idempotency key used again with another request hash is refused,
// with the first message named; the same hash, or none on either side
// (keys stored before hashes), replays it.
func TestEnqueueIdempotencyKeyReused(t *testing.T) {
	s := openTest(t)
	g := newIDs(3)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	day := ms(24 * 3600 * 1000)
	hashed := func(c Command, h byte) Command {
		c.Enqueue.RequestHash = bytes.Repeat([]byte{h}, 32)
		return c
	}
	m1 := g.next(t, "msg", t0)
	runOK(t, s, hashed(withKey(fanOut(m1, "x", t0), "K", t0+day), 1))
	before := mustDump(t, s)
	r := run(t, s, hashed(withKey(fanOut(g.next(t, "msg", t0), "x", t0), "K", t0+day), 2))
	if !errors.Is(r[0].Err, ErrKeyReused) || r[0].MessageID != m1 {
		t.Fatalf("another request with the key: %+v, want ErrKeyReused naming %s", r[0], m1)
	}
	after := mustDump(t, s)
	delete(before, "meta") // the applied index moved on, nothing else may
	delete(after, "meta")
	if d := diffDumps(before, after); d != "" {
		t.Fatalf("the refused enqueue changed the state:\n%s", d)
	}
	for name, c := range map[string]Command{
		"same request": hashed(withKey(fanOut(g.next(t, "msg", t0), "x", t0), "K", t0+day), 1),
		"no hash":      withKey(fanOut(g.next(t, "msg", t0), "x", t0), "K", t0+day),
	} {
		if r := runOK(t, s, c); !r[0].Duplicate || r[0].MessageID != m1 {
			t.Errorf("%s: %+v, want the first message", name, r[0])
		}
	}
	if _, hash, ok, _ := s.IdempotentMessage(DefaultTenant, "K", t0); !ok || !bytes.Equal(hash, bytes.Repeat([]byte{1}, 32)) {
		t.Errorf("IdempotentMessage hash %x, %v", hash, ok)
	}
	bad := withKey(fanOut(g.next(t, "msg", t0), "x", t0), "K3", t0+day)
	bad.Enqueue.RequestHash = []byte{1, 2}
	if r := run(t, s, bad); invalidField(r[0].Err) != "enqueue.request_hash" {
		t.Errorf("a short hash: %v", r[0].Err)
	}
}
