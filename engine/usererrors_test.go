package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/store"
)

// conflictMsg returns the message of a *ConflictError, failing the test
// for any other error.
func conflictMsg(t *testing.T, what string, err error) string {
	t.Helper()
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
		t.Fatalf("%s: error %v, want a *ConflictError", what, err)
	}
	return ce.Msg
}

// TestMembershipErrors checks the membership calls of a single node:
// removing a node that is not a member is ErrNotFound, the only voter a
// conflict; adding an id at another address, or another id at a member's
// address, a conflict; a malformed address invalid; the same member again
// changes nothing.
func TestMembershipErrors(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	st, err := e.ClusterStatus(ctxb)
	if err != nil || len(st.Nodes) != 1 {
		t.Fatalf("ClusterStatus = %+v, %v", st, err)
	}
	self := st.Nodes[0]

	if err := e.RemoveNode(ctxb, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveNode(nobody) = %v, want ErrNotFound", err)
	}
	if msg := conflictMsg(t, "RemoveNode(self)", e.RemoveNode(ctxb, self.ID)); msg != self.ID+" is the only voter: removing it would leave no cluster" {
		t.Errorf("RemoveNode(self) = %q", msg)
	}
	if msg := conflictMsg(t, "AddNode(self elsewhere)", e.AddNode(ctxb, self.ID, "127.0.0.1:1")); !strings.Contains(msg, "already a member at "+self.RaftAddr) {
		t.Errorf("AddNode(self elsewhere) = %q", msg)
	}
	if msg := conflictMsg(t, "AddNode(n2 at self's address)", e.AddNode(ctxb, "n2", self.RaftAddr)); !strings.Contains(msg, "is already node "+self.ID+"'s") {
		t.Errorf("AddNode(n2 at self's address) = %q", msg)
	}
	for _, addr := range []string{"", "nohostport", ":9000", "host:port", "host:0", "host:70000", "a b:1"} {
		if err := e.AddNode(ctxb, "n2", addr); !isInvalid(err, "raft_addr") {
			t.Errorf("AddNode(n2, %q) = %v, want an InvalidError on raft_addr", addr, err)
		}
	}
	if err := e.AddNode(ctxb, "not an id", "127.0.0.1:1"); !isInvalid(err, "id") {
		t.Errorf("AddNode(malformed id) = %v, want an InvalidError on id", err)
	}
	if err := e.AddNode(ctxb, self.ID, self.RaftAddr); err != nil {
		t.Errorf("AddNode(self, same address) = %v, want nil (nothing to change)", err)
	}
	if st, _ := e.ClusterStatus(ctxb); len(st.Nodes) != 1 || !e.IsLeader() {
		t.Fatalf("after refused changes: %+v, leader %v", st, e.IsLeader())
	}
}

// TestClusterMembershipErrorsThroughFollower checks that the leader's
// refusals reach a caller on a follower as the same errors, the conflict's
// reason included.
func TestClusterMembershipErrorsThroughFollower(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	f := c.engines[(lead+1)%3]
	other := c.cfgs[(lead+2)%3].NodeID

	if msg := conflictMsg(t, "AddNode(member elsewhere)", f.AddNode(ctxb, other, inmemAddr("n9"))); msg != fmt.Sprintf(
		"node %s is already a member at %s: to move it to %s, remove it first (herald cluster remove %s)", other, inmemAddr(other), inmemAddr("n9"), other) {
		t.Errorf("AddNode(member elsewhere) = %q", msg)
	}
	if msg := conflictMsg(t, "AddNode(n9 at a member's address)", f.AddNode(ctxb, "n9", inmemAddr(other))); !strings.HasPrefix(msg, "raft address "+inmemAddr(other)+" is already node "+other+"'s") {
		t.Errorf("AddNode(n9 at a member's address) = %q", msg)
	}
	if err := f.AddNode(ctxb, "n9", "nohostport"); !isInvalid(err, "raft_addr") {
		t.Errorf("AddNode(malformed address) = %v", err)
	}
	if err := f.RemoveNode(ctxb, "n9"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveNode(n9) = %v, want ErrNotFound", err)
	}
	if err := f.AddNode(ctxb, other, inmemAddr(other)); err != nil {
		t.Errorf("AddNode(member, same address) = %v", err)
	}
	if st, _ := c.engines[lead].ClusterStatus(ctxb); len(st.Nodes) != 3 {
		t.Fatalf("members after refused changes = %+v", st.Nodes)
	}
}

// TestWireErrors checks that every error the writer returns crosses
// between nodes as itself.
func TestWireErrors(t *testing.T) {
	for _, err := range []error{
		&ConflictError{Msg: "endpoint ep_1 is disabled: enable it first"},
		&InvalidError{Field: "raft_addr", Msg: "must be host:port"},
		ErrNotFound, ErrNotLeader, ErrUncertain, ErrClosed,
	} {
		if back := fromWire(toWire(err)); !reflect.DeepEqual(back, err) {
			t.Errorf("%v crossed as %v", err, back)
		}
	}
	if back := fromWire(toWire(&ConflictError{Msg: "x"})); !errors.Is(back, ErrConflict) {
		t.Errorf("a conflict crossed as %v, not ErrConflict", back)
	}
	if back := fromWire(toWire(errors.New("disk on fire"))); back != errInternal {
		t.Errorf("an unknown error crossed as %v", back)
	}
}

// TestPingDisabledEndpoint checks that a disabled endpoint is not pinged:
// a conflict saying so, and no message (nor attempt) recorded.
func TestPingDisabledEndpoint(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(time.Hour))
	rc := newReceiver(t, nil)
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	disabled := StateDisabled
	if _, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{State: &disabled}); err != nil {
		t.Fatal(err)
	}
	if msg := conflictMsg(t, "Ping(disabled)", second(e.Ping(ctxb, "", ep.ID))); msg != "endpoint "+ep.ID+" is disabled: enable it first" {
		t.Errorf("Ping(disabled) = %q", msg)
	}
	if msgs, _, err := e.ListMessages(ctxb, ListOptions{}); err != nil || len(msgs) != 0 {
		t.Fatalf("messages after a refused ping: %+v, %v", msgs, err)
	}

	// An endpoint Herald disabled itself, after a 410.
	gone := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	gep := mustCreateEndpoint(t, e, EndpointInput{Tenant: "g", URL: gone.URL})
	m := mustEnqueue(t, e, MessageInput{Tenant: "g", Type: "job.done"})
	waitTenantStatus(t, e, "g", m.ID, "failed")
	if msg := conflictMsg(t, "Ping(gone)", second(e.Ping(ctxb, "g", gep.ID))); !strings.Contains(msg, "410 Gone") || !strings.HasSuffix(msg, "enable it first") {
		t.Errorf("Ping(gone) = %q", msg)
	}

	enabled := StateEnabled
	if _, err := e.UpdateEndpoint(ctxb, "", ep.ID, EndpointUpdate{State: &enabled}); err != nil {
		t.Fatal(err)
	}
	ping, err := e.Ping(ctxb, "", ep.ID)
	if err != nil {
		t.Fatalf("Ping(enabled again) = %v", err)
	}
	waitStatus(t, e, ping.ID, "succeeded")
}

// TestRequeueReasons checks the reason RetryMessage and Recover give when
// they re-queue nothing.
func TestRequeueReasons(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(time.Hour)) // a failed attempt stays pending an hour
	since := time.Now().Add(-time.Hour)

	// Succeeded.
	ok := newReceiver(t, nil)
	mustCreateEndpoint(t, e, EndpointInput{Tenant: "ok", URL: ok.URL})
	okMsg := mustEnqueue(t, e, MessageInput{Tenant: "ok", Type: "job.done"})
	waitTenantStatus(t, e, "ok", okMsg.ID, "succeeded")
	retry := func(tenant, id string) RequeueResult {
		t.Helper()
		res, err := e.RetryMessage(ctxb, tenant, id)
		if err != nil || res.Requeued != 0 {
			t.Fatalf("RetryMessage(%s) = %+v, %v; want nothing re-queued", id, res, err)
		}
		return res
	}
	if r := retry("ok", okMsg.ID).Reason; r != "no failed deliveries: 1 succeeded" {
		t.Errorf("succeeded: reason %q", r)
	}

	// Cancelled: pending, then its endpoint disabled.
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	sep := mustCreateEndpoint(t, e, EndpointInput{Tenant: "slow", URL: slow.URL})
	slowMsg := mustEnqueue(t, e, MessageInput{Tenant: "slow", Type: "job.done"})
	waitFor(t, 20*time.Second, "the first attempt", func() bool { return slow.count() == 1 })
	if r := retry("slow", slowMsg.ID).Reason; r != "no failed deliveries: 1 pending" {
		t.Errorf("pending: reason %q", r)
	}
	disabled := StateDisabled
	if _, err := e.UpdateEndpoint(ctxb, "slow", sep.ID, EndpointUpdate{State: &disabled}); err != nil {
		t.Fatal(err)
	}
	if r := retry("slow", slowMsg.ID).Reason; r != "no failed deliveries: 1 cancelled (only failed deliveries are re-queued)" {
		t.Errorf("cancelled: reason %q", r)
	}

	// Failed, its endpoint disabled (by a 410), then deleted.
	gone := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	gep := mustCreateEndpoint(t, e, EndpointInput{Tenant: "gone", URL: gone.URL})
	goneMsg := mustEnqueue(t, e, MessageInput{Tenant: "gone", Type: "job.done"})
	waitTenantStatus(t, e, "gone", goneMsg.ID, "failed")
	if r := retry("gone", goneMsg.ID).Reason; r != "the endpoints of its failed deliveries are disabled ("+gep.ID+"): enable them first, then retry" {
		t.Errorf("disabled: reason %q", r)
	}
	rec, err := e.Recover(ctxb, "gone", since, time.Time{})
	if err != nil || rec.Requeued != 0 || !strings.HasPrefix(rec.Reason, "the failed deliveries of the 1 message in the window that has them are to disabled or deleted endpoints") {
		t.Errorf("Recover(gone) = %+v, %v", rec, err)
	}
	if err := e.DeleteEndpoint(ctxb, "gone", gep.ID); err != nil {
		t.Fatal(err)
	}
	if r := retry("gone", goneMsg.ID).Reason; r != "the endpoints of its failed deliveries were deleted ("+gep.ID+"): they cannot be retried" {
		t.Errorf("deleted: reason %q", r)
	}

	// No deliveries at all.
	none := mustEnqueue(t, e, MessageInput{Tenant: "none", Type: "job.done"})
	if r := retry("none", none.ID).Reason; !strings.HasPrefix(r, "the message has no deliveries") {
		t.Errorf("no deliveries: reason %q", r)
	}
	rec, err = e.Recover(ctxb, "none", since, time.Time{})
	if err != nil || rec.Requeued != 0 || !strings.HasPrefix(rec.Reason, "no message in the window had failed deliveries (1 message was created between ") {
		t.Errorf("Recover(none) = %+v, %v", rec, err)
	}
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	rec, err = e.Recover(ctxb, "none", old, old.Add(time.Hour))
	if err != nil || rec.Requeued != 0 || rec.Reason != "no message was created between 2000-01-01T00:00:00Z and 2000-01-01T01:00:00Z" {
		t.Errorf("Recover(empty window) = %+v, %v", rec, err)
	}
}

// TestListCursors checks that a malformed cursor is refused, not answered
// with an empty page.
func TestListCursors(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	m := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	for _, after := range []string{"garbage", "msg_", strings.ToLower(m.ID), "ep_" + m.ID[4:], m.ID + "0"} {
		if _, _, err := e.ListMessages(ctxb, ListOptions{After: after}); !isInvalid(err, "after") {
			t.Errorf("ListMessages(after %q) = %v, want an InvalidError on after", after, err)
		}
	}
	if msgs, next, err := e.ListMessages(ctxb, ListOptions{After: m.ID}); err != nil || len(msgs) != 0 || next != "" {
		t.Errorf("ListMessages(after the only message) = %v %q %v", msgs, next, err)
	}
	for _, limit := range []int{-1, MaxListLimit + 1} {
		if _, _, err := e.ListMessages(ctxb, ListOptions{Limit: limit}); !isInvalid(err, "limit") {
			t.Errorf("ListMessages(limit %d) = %v", limit, err)
		}
	}
	for _, after := range []string{"no spaces", "-leading", strings.Repeat("a", 65)} {
		if _, _, err := e.Tenants(ctxb, after, 0); !isInvalid(err, "after") {
			t.Errorf("Tenants(after %q) = %v, want an InvalidError on after", after, err)
		}
	}
	if ts, _, err := e.Tenants(ctxb, "a", 0); err != nil || len(ts) != 1 {
		t.Errorf("Tenants(after a) = %v, %v", ts, err)
	}
}

// TestOpenDataDirInUse checks that a second engine on a data dir in use
// fails promptly, naming the state file and this process.
func TestOpenDataDirInUse(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	ctx, cancel := context.WithTimeout(ctxb, 10*time.Second)
	defer cancel()
	start := time.Now()
	e2, err := Open(ctx, Config{DataDir: e.cfg.DataDir, RaftAddr: "127.0.0.1:0", Logger: testLogger(t)})
	if err == nil {
		e2.Close()
		t.Fatal("a second engine opened a data dir in use")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the second Open took %v", took)
	}
	want := fmt.Sprintf("%s is locked by another herald (pid %d)?", filepath.Join(e.cfg.DataDir, "state.db"), os.Getpid())
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want ErrLocked saying %q", err, want)
	}
	// The first engine is unharmed.
	if _, err := e.CreateEndpoint(ctxb, EndpointInput{URL: "http://127.0.0.1:9/"}); err != nil {
		t.Errorf("the first engine after the refused Open: %v", err)
	}
}
