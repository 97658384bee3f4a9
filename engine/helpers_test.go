package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// testLogger sends engine logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openEngine starts a single-node engine in a temp dir and waits until it
// leads and delivers.
func openEngine(t testing.TB, modify func(*Config)) *Engine {
	t.Helper()
	cfg := Config{
		DataDir:              t.TempDir(),
		RaftAddr:             "127.0.0.1:0",
		AllowPrivateNetworks: true,
		Logger:               testLogger(t),
		AttemptTimeout:       5 * time.Second,
	}
	if modify != nil {
		modify(&cfg)
	}
	return startEngine(t, cfg)
}

func startEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "leadership", func() bool { return e.IsLeader() && e.delivering.Load() })
	return e
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

// received is one request a test receiver got.
type received struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is an httptest server that records requests and answers with
// whatever respond returns (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, w http.ResponseWriter, r *http.Request) // n: 0-based request number
}

func newReceiver(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, received{Header: r.Header.Clone(), Body: body, At: time.Now()})
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// waitStatus polls until the message reaches status.
func waitStatus(t testing.TB, e *Engine, id, status string) *Message {
	t.Helper()
	return waitTenantStatus(t, e, "", id, status)
}

// waitTenantStatus polls until the tenant's message reaches status.
func waitTenantStatus(t testing.TB, e *Engine, tenant, id, status string) *Message {
	t.Helper()
	var m *Message
	waitFor(t, 20*time.Second, "message "+id+" to be "+status, func() bool {
		var err error
		m, err = e.Message(context.Background(), tenant, id)
		if err != nil {
			t.Fatalf("Message(%s): %v", id, err)
		}
		return m.Status == Status(status)
	})
	return m
}

// withSchedule returns a Config modifier that sets an exact (unjittered)
// retry schedule, so real-time tests retry in milliseconds.
func withSchedule(delays ...time.Duration) func(*Config) {
	return func(c *Config) { c.RetrySchedule = delays }
}

// mustCreateEndpoint registers an endpoint or fails the test.
func mustCreateEndpoint(t testing.TB, e *Engine, in EndpointInput) *Endpoint {
	t.Helper()
	ep, err := e.CreateEndpoint(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateEndpoint(%s): %v", in.URL, err)
	}
	return ep
}

// mustEnqueue enqueues a message that must be new, or fails the test.
func mustEnqueue(t testing.TB, e *Engine, in MessageInput) *Message {
	t.Helper()
	if in.Data == nil {
		in.Data = []byte(`{}`)
	}
	m, created, err := e.Enqueue(context.Background(), in)
	if err != nil || !created {
		t.Fatalf("Enqueue(%s) = created %v, %v", in.Type, created, err)
	}
	return m
}

// waitRequests polls until rc has received at least n requests and returns
// them.
func waitRequests(t testing.TB, rc *receiver, n int) []received {
	t.Helper()
	waitFor(t, 20*time.Second, "receiver to get requests", func() bool { return rc.count() >= n })
	return rc.requests()
}

// waitDelivery polls a message until its delivery to url satisfies cond,
// and returns that delivery.
func waitDelivery(t testing.TB, e *Engine, msgID, url, what string, cond func(*Delivery) bool) *Delivery {
	t.Helper()
	var found *Delivery
	waitFor(t, 20*time.Second, what, func() bool {
		m, err := e.Message(context.Background(), "", msgID)
		if err != nil {
			t.Fatalf("Message(%s): %v", msgID, err)
		}
		for i := range m.Deliveries {
			if d := &m.Deliveries[i]; d.URL == url && cond(d) {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// newHangingReceiver returns a receiver whose handler blocks until the test
// ends (or the client gives up), then answers 200. The release is
// registered after the server's own cleanup, so it runs first and the
// server's Close does not wait on blocked handlers.
func newHangingReceiver(t testing.TB) *receiver {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	return rc
}

// attemptLog collects Config.OnAttempt events.
type attemptLog struct {
	mu     sync.Mutex
	events []AttemptEvent
}

func (l *attemptLog) record(ev AttemptEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *attemptLog) get() []AttemptEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]AttemptEvent(nil), l.events...)
}
