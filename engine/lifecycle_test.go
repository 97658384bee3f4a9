package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Stop drains: it stops scheduling, lets the attempt in flight finish and
// commits its outcome, so a restarted engine does not send it again. Calls
// after Stop return ErrClosed.
func TestStopDrainsAttemptsInFlightAndRestartResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, RaftAddr: "127.0.0.1:0", AllowPrivateNetworks: true, Logger: testLogger(t),
		AttemptTimeout: 10 * time.Second}
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	waitFor(t, 10*time.Second, "leadership", e.Ready)
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	inFlight := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	waitRequests(t, rc, 1)

	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(context.Background()) }()
	waitFor(t, 10*time.Second, "Stop to stop scheduling", func() bool { return !e.deliver.Scheduling() })
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while an attempt was in flight", err)
	default:
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the attempt finished")
	}

	if _, _, err := e.Enqueue(ctxb, MessageInput{Type: "job.done", Data: []byte(`{}`)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Stop: %v, want ErrClosed", err)
	}
	if _, err := e.CreateEndpoint(ctxb, EndpointInput{URL: rc.URL}); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateEndpoint after Stop: %v, want ErrClosed", err)
	}
	if _, err := e.Message(ctxb, "", inFlight.ID); !errors.Is(err, ErrClosed) {
		t.Errorf("Message after Stop: %v, want ErrClosed", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close after Stop: %v, want the first Stop's nil", err)
	}
	if e.Ready() {
		t.Error("Ready after Stop")
	}

	// The drained attempt's outcome was committed: the restarted engine
	// finds the message delivered and does not send it again; a message
	// enqueued now is delivered as usual.
	e2 := startEngine(t, cfg)
	m, err := e2.Message(ctxb, "", inFlight.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != "succeeded" || m.Deliveries[0].AttemptCount != 1 {
		t.Fatalf("after restart: %s with %d attempts, want succeeded after the drained one", m.Status, m.Deliveries[0].AttemptCount)
	}
	next := mustEnqueue(t, e2, MessageInput{Type: "job.done"})
	waitStatus(t, e2, next.ID, "succeeded")
	if n := rc.count(); n != 2 {
		t.Fatalf("receiver got %d requests, want 2 (no resend of the drained attempt)", n)
	}
}

// A retry pending when the engine stops is made after a restart, at its
// committed time: the new term rebuilds the schedule from the store.
func TestPendingRetrySurvivesRestart(t *testing.T) {
	t.Parallel()
	cfg := Config{DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", AllowPrivateNetworks: true, Logger: testLogger(t),
		RetrySchedule: []time.Duration{time.Second}}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	waitFor(t, 10*time.Second, "leadership", e.Ready)
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	d := waitDelivery(t, e, msg.ID, rc.URL, "first attempt", func(d *Delivery) bool { return d.AttemptCount == 1 })
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := startEngine(t, cfg)
	m := waitStatus(t, e2, msg.ID, "succeeded")
	got := m.Deliveries[0]
	if got.AttemptCount != 2 || got.Attempts[1].At.Before(*d.NextAttemptAt) {
		t.Fatalf("after restart: %+v, want the retry made at (not before) %v", got, d.NextAttemptAt)
	}
	if n := rc.count(); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
}

// A Raft port already in use is an error naming the address, not a panic.
func TestOpenOnABusyRaftPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Open(context.Background(), Config{DataDir: t.TempDir(), RaftAddr: ln.Addr().String(), Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Open on a busy Raft port: %v, want an error naming %s", err, ln.Addr())
	}
}

// A single node with NoNetwork opens no port: two run side by side on the
// defaults' addresses, and both deliver. A message read back carries its
// payload.
func TestNoNetworkSingleNode(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	for i := range 2 {
		e := openEngine(t, func(c *Config) { c.RaftAddr, c.NoNetwork = "", true })
		if st, err := e.ClusterStatus(ctxb); err != nil || len(st.Nodes) != 1 || st.Leader != DefaultNodeID {
			t.Fatalf("engine %d: cluster status %+v, %v", i, st, err)
		}
		msg := mustEnqueue(t, e, MessageInput{Type: "job.done", Data: []byte(`{"job": 1}`), URIs: []string{rc.URL},
			UserMetadata: []byte(`{"k":"v"}`)})
		m := waitStatus(t, e, msg.ID, "succeeded")
		if string(m.Data) != `{"job":1}` || string(m.UserMetadata) != `{"k":"v"}` {
			t.Errorf("message payload %s %s, want the enqueued data and metadata", m.Data, m.UserMetadata)
		}
	}
	for _, bad := range []Config{
		{NoNetwork: true, RaftAddr: "127.0.0.1:0"},
		{NoNetwork: true, Peers: []Peer{{ID: "n2", RaftAddr: "127.0.0.1:1"}}},
	} {
		var ce *ConfigError
		if err := bad.Validate(); !errors.As(err, &ce) || ce.Field != "NoNetwork" {
			t.Errorf("Validate(%+v) = %v, want a ConfigError on NoNetwork", bad, err)
		}
	}
}

// WaitDelivered returns once the message is no longer pending, on the
// leader and on a follower alike, and gives up with its context.
func TestWaitDelivered(t *testing.T) {
	// The retry comes a second after the first attempt: the receiver
	// recovers well before it, however slow the machine.
	c := newTestCluster(t, 3, withSchedule(time.Second))
	lead := c.leader()
	follower := (lead + 1) % 3
	var fail atomic.Bool
	fail.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	msg := mustEnqueue(t, c.engines[lead], MessageInput{Type: "job.done", URIs: []string{rc.URL}})
	ctx, cancel := context.WithTimeout(ctxb, 50*time.Millisecond)
	defer cancel()
	if _, err := c.engines[follower].WaitDelivered(ctx, "", msg.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDelivered on a message still pending: %v, want the context's deadline", err)
	}
	fail.Store(false)
	for _, i := range []int{lead, follower} {
		m, err := c.engines[i].WaitDelivered(ctxb, "", msg.ID)
		if err != nil || m.Status != StatusSucceeded || len(m.Deliveries) != 1 || m.Deliveries[0].AttemptCount != 2 {
			t.Fatalf("WaitDelivered on n%d = %+v, %v; want succeeded on the second attempt", i+1, m, err)
		}
	}
	if _, err := c.engines[follower].WaitDelivered(ctxb, "", "msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("WaitDelivered on an unknown id: %v, want ErrNotFound", err)
	}
}
