package store

import (
	"errors"
	"slices"
	"testing"
)

// applyBatches applies cmds as entries of up to MaxCommandsPerEntry
// commands, without checking the invariants after each: for tests that
// build large states.
func applyBatches(t testing.TB, s *Store, cmds []Command) {
	t.Helper()
	idx, err := s.AppliedIndex()
	if err != nil {
		t.Fatal(err)
	}
	for len(cmds) > 0 {
		n := min(len(cmds), MaxCommandsPerEntry)
		idx++
		res, err := s.Apply([]Entry{entry(t, idx, cmds[:n]...)})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res[0] {
			if r.Err != nil {
				t.Fatalf("command %d (%s) rejected: %v", i, kindOf(&cmds[i]), r.Err)
			}
		}
		cmds = cmds[n:]
	}
}

// A status or type filter that matches few of many messages stops at the
// scan budget with a cursor, and following the cursors finds every match
// once.
func TestListMessagesScanBudget(t *testing.T) {
	s := openTest(t)
	g := newIDs(21)
	const total = 3*ListScanBudget + 123
	runOK(t, s, createEndpoint(epID("p"), "https://p.example", t0, "p"))
	var cmds []Command
	var want []string // the pending messages, newest first
	for i := range total {
		at := t0 + ms(int64(i))
		id := g.next(t, "msg", at)
		typ := "x" // no subscriber: succeeded at once
		if i%7919 == 0 {
			typ = "p" // ep_p's delivery stays pending
			want = append(want, id)
		}
		cmds = append(cmds, fanOut(id, typ, at))
	}
	slices.Reverse(want)
	applyBatches(t, s, cmds)
	mustCheck(t, s)

	for _, filter := range []ListFilter{{Status: StatusPending}, {Type: "p"}, {Status: StatusPending, Type: "p"}} {
		var got []string
		calls, after := 0, ""
		for {
			calls++
			page, next, err := s.ListMessages(DefaultTenant, filter, 3, after)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, messageIDs(page)...)
			if next == "" {
				break
			}
			if calls > total/ListScanBudget+len(want) {
				t.Fatalf("%+v: %d calls and not done", filter, calls)
			}
			after = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%+v: pages found %d messages, want %d: %v, want %v", filter, len(got), len(want), got, want)
		}
		if calls < total/ListScanBudget {
			t.Fatalf("%+v: %d calls walked %d messages: the budget did not stop them", filter, calls, total)
		}
	}
	if page, next, err := s.ListMessages(DefaultTenant, ListFilter{Status: StatusSucceeded, Type: "p"}, 3, ""); err != nil || len(page) != 0 || next == "" {
		t.Fatalf("succeeded messages of type p: %d, next %q, %v", len(page), next, err)
	}
	// Without a filter a page is full and its cursor is its last message.
	page, next, err := s.ListMessages(DefaultTenant, ListFilter{}, 4, "")
	if err != nil || len(page) != 4 || next != page[3].ID {
		t.Fatalf("unfiltered page: %d messages, next %q, %v", len(page), next, err)
	}
}

// failedMessages makes n messages whose one delivery, to ep_a, failed,
// from t0 a millisecond apart, and returns their ids.
func failedMessages(t *testing.T, s *Store, n int) []string {
	t.Helper()
	g := newIDs(22)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	var msgs []string
	var cmds, outcomes []Command
	for i := range n {
		at := t0 + ms(int64(i))
		id := g.next(t, "msg", at)
		msgs = append(msgs, id)
		cmds = append(cmds, fanOut(id, "x", at))
		outcomes = append(outcomes, outcome(DeliveryID(id, 0), 1, at+ms(1), ResultFailed, 500, 0))
	}
	applyBatches(t, s, append(cmds, outcomes...))
	return msgs
}

// A Requeue of a window with a limit examines that many messages and says
// where it stopped; going on from there requeues each failed delivery once.
func TestRequeueWindowInBatches(t *testing.T) {
	s := openTest(t)
	msgs := failedMessages(t, s, 10)
	cmd := Requeue{Since: t0, Until: t0 + ms(100), At: t0 + ms(200), Limit: 3}
	var counts []int
	for {
		r := runOK(t, s, Command{Requeue: &cmd})[0]
		counts = append(counts, r.Count)
		if r.Next == "" {
			break
		}
		if len(counts) > 10 {
			t.Fatalf("no end after %d commands: %v", len(counts), counts)
		}
		cmd.After = r.Next
	}
	if !slices.Equal(counts, []int{3, 3, 3, 1}) {
		t.Fatalf("requeued per command %v, want [3 3 3 1]", counts)
	}
	for _, id := range msgs {
		if d := getDelivery(t, s, DeliveryID(id, 0)); d.Status != StatusPending || d.NextAttemptAt != t0+ms(200) {
			t.Fatalf("delivery of %s: %+v", id, d)
		}
	}
	// Again: nothing failed is left.
	if r := runOK(t, s, Command{Requeue: &Requeue{Since: t0, At: t0 + ms(300), Limit: 4}}); r[0].Count != 0 {
		t.Fatalf("second pass requeued %d", r[0].Count)
	}
}

func TestRequeueBoundsAreValidated(t *testing.T) {
	s := openTest(t)
	for _, tt := range []struct {
		r     Requeue
		field string
	}{
		{Requeue{Since: t0, At: t0, Limit: -1}, "requeue.limit"},
		{Requeue{Since: t0, At: t0, Limit: MaxSweepLimit + 1}, "requeue.limit"},
		{Requeue{Since: t0, At: t0, After: "msg_x"}, "requeue.after"},
		{Requeue{MessageID: newIDs(1).next(t, "msg", t0), At: t0, Limit: 1}, "requeue.message_id"},
	} {
		if r := run(t, s, Command{Requeue: &tt.r}); invalidField(r[0].Err) != tt.field {
			t.Errorf("%+v: %v, want invalid %s", tt.r, r[0].Err, tt.field)
		}
	}
}

// Disabling an endpoint ends MaxEndOnDisable of its pending deliveries;
// EndPending commands end the rest.
func TestDisableEndsPendingInBatches(t *testing.T) {
	s := openTest(t)
	g := newIDs(23)
	const total = MaxEndOnDisable + 250
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	var cmds []Command
	for i := range total {
		cmds = append(cmds, fanOut(g.next(t, "msg", t0+ms(int64(i))), "x", t0+ms(int64(i))))
	}
	applyBatches(t, s, cmds)

	end := Command{EndPending: &EndPending{Tenant: DefaultTenant, EndpointID: epID("a"), Status: StatusCancelled,
		Reason: "endpoint disabled", Limit: 100}}
	if r := run(t, s, end); r[0].Err != nil || r[0].Count != 0 {
		t.Fatalf("EndPending of an enabled endpoint: %+v", r[0])
	}
	// Before a deletion, the leader ends them whatever the state.
	deleting := *end.EndPending
	deleting.Deleting, deleting.Limit = true, 10
	if r := runOK(t, s, Command{EndPending: &deleting}); r[0].Count != 10 {
		t.Fatalf("EndPending before a deletion ended %d, want 10", r[0].Count)
	}
	const ended = 10
	runOK(t, s, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0 + ms(total), State: ptr(StateDisabled)}})
	if tc, _ := s.Tenant(DefaultTenant); tc.Pending != total-ended-MaxEndOnDisable {
		t.Fatalf("pending after the disable: %d, want %d", tc.Pending, total-ended-MaxEndOnDisable)
	}
	var counts []int
	for {
		more, err := s.HasPending(epID("a"))
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		counts = append(counts, runOK(t, s, end)[0].Count)
	}
	if !slices.Equal(counts, []int{100, 100, 40}) {
		t.Fatalf("ended per command %v, want [100 100 40]", counts)
	}
	if tc, err := s.Tenant(DefaultTenant); err != nil || tc.Pending != 0 {
		t.Fatalf("tenant after: %+v, %v", tc, err)
	}
	if d := getDelivery(t, s, DeliveryID(cmds[total-1].Enqueue.ID, 0)); d.Status != StatusCancelled || d.LastError != "endpoint disabled" {
		t.Fatalf("last delivery: %+v", d)
	}
	if r := runOK(t, s, end); r[0].Count != 0 {
		t.Fatalf("EndPending with none left ended %d", r[0].Count)
	}

	// Another tenant's name, or no endpoint, is not found.
	other := *end.EndPending
	other.Tenant = "t1"
	if r := run(t, s, Command{EndPending: &other}); !errors.Is(r[0].Err, ErrNotFound) {
		t.Fatalf("EndPending in another tenant: %v", r[0].Err)
	}
	other = *end.EndPending
	other.Status, other.Reason, other.Limit = StatusPending, "", 0
	if r := run(t, s, Command{EndPending: &other}); invalidField(r[0].Err) != "end_pending.status" {
		t.Fatalf("EndPending to pending: %v", r[0].Err)
	}
}
