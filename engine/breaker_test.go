package engine

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// flakyReceiver answers 500 while down, else 200, and counts requests
// per host.
type flakyReceiver struct {
	down atomic.Bool
	ft   *fakeTransport
}

func newFlakyReceiver() *flakyReceiver {
	f := &flakyReceiver{}
	f.down.Store(true)
	f.ft = &fakeTransport{respond: func(_ int, r *http.Request) (*http.Response, error) {
		if f.down.Load() && strings.HasPrefix(r.URL.Host, "down.") {
			return response(r, http.StatusInternalServerError, nil), nil
		}
		return response(r, http.StatusOK, nil), nil
	}}
	return f
}

// requestsTo counts the requests to host since the given time.
func (f *flakyReceiver) requestsTo(host string, since time.Time) int {
	n := 0
	for _, r := range f.ft.requests() {
		if strings.Contains(r.URL, "://"+host+"/") && !r.At.Before(since) {
			n++
		}
	}
	return n
}

func getEndpoint(t *testing.T, e *Engine, id string) *Endpoint {
	t.Helper()
	ep, err := e.Endpoint(context.Background(), "", id)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// failingBacklog creates an endpoint that fails (down.example) with n
// messages for it, and a healthy one (up.example) with its own type.
func failingBacklog(t *testing.T, e *Engine, n int) (down, up *Endpoint) {
	t.Helper()
	down = mustCreateEndpoint(t, e, EndpointInput{URL: "https://down.example/hook", EventTypes: []string{"job.done"}})
	up = mustCreateEndpoint(t, e, EndpointInput{URL: "https://up.example/hook", EventTypes: []string{"job.other"}})
	for range n {
		mustEnqueue(t, e, MessageInput{Type: "job.done"})
	}
	return down, up
}

// Every delivery retries every 10 s for an hour: without a breaker, 100
// failing deliveries make 600 attempts a minute.
var tenSeconds = func(c *Config) {
	c.RetrySchedule = make([]time.Duration, 360)
	for i := range c.RetrySchedule {
		c.RetrySchedule[i] = 10 * time.Second
	}
}

// TestBreakerHoldsTheBacklogAndProbes: an endpoint whose attempts all fail
// for a minute (10 in a row or more) has its breaker opened; its deliveries
// then wait without attempts while single probes test it at growing
// intervals; the first 2xx closes it and delivers the whole backlog. A
// healthy endpoint is served throughout.
func TestBreakerHoldsTheBacklogAndProbes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFlakyReceiver()
		e := openBubbleEngine(t, f.ft, tenSeconds)
		start := time.Now()
		down, _ := failingBacklog(t, e, 100)

		time.Sleep(70 * time.Second)
		synctest.Wait()
		v := getEndpoint(t, e, down.ID)
		if v.Breaker != BreakerOpen || v.BreakerSince == nil || v.BreakerSince.Sub(start) < time.Minute {
			t.Fatalf("after 70s of failures: breaker %s since %v (start %v)", v.Breaker, v.BreakerSince, start)
		}
		opened := *v.BreakerSince
		before := f.requestsTo("down.example", start)
		if before < 100 {
			t.Fatalf("%d attempts before the breaker opened, want every delivery tried", before)
		}

		// Open: probes at 5 s, 10 s, 20 s, 40 s after it opened, one at a
		// time; a healthy endpoint's message goes at once.
		msg := mustEnqueue(t, e, MessageInput{Type: "job.other"})
		waitOutcomes()
		if m := message(t, e, msg.ID); m.Status != StatusSucceeded {
			t.Errorf("a healthy endpoint's message is %s while another's breaker is open", m.Status)
		}
		time.Sleep(opened.Add(76 * time.Second).Sub(time.Now()))
		synctest.Wait()
		if probes := f.requestsTo("down.example", opened.Add(time.Millisecond)); probes < 3 || probes > 4 {
			t.Errorf("%d attempts in the 75 s after the breaker opened, want 4 probes (5, 10, 20, 40 s)", probes)
		}

		// Back: the next probe (80 s after the last) succeeds, closes the
		// breaker and releases the backlog.
		f.down.Store(false)
		time.Sleep(90 * time.Second)
		synctest.Wait()
		if v := getEndpoint(t, e, down.ID); v.Breaker != BreakerClosed || v.BreakerSince != nil || v.FailingSince != nil {
			t.Fatalf("after a successful probe: breaker %s since %v, failing since %v", v.Breaker, v.BreakerSince, v.FailingSince)
		}
		msgs, _, err := e.ListMessages(context.Background(), ListOptions{Status: StatusPending})
		if err != nil || len(msgs) != 0 {
			t.Fatalf("%d messages still pending after the breaker closed (%v)", len(msgs), err)
		}
	})
}

// TestBreakerStaysOpenAcrossRestart: the breaker's state is replicated, so
// a node that leads after a restart (or a failover) probes instead of
// spending a minute of attempts on every delivery again.
func TestBreakerStaysOpenAcrossRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFlakyReceiver()
		dir := t.TempDir()
		withDir := func(c *Config) { tenSeconds(c); c.DataDir = dir }
		e := openBubbleEngine(t, f.ft, withDir)
		down, _ := failingBacklog(t, e, 100)
		time.Sleep(70 * time.Second)
		synctest.Wait()
		if v := getEndpoint(t, e, down.ID); v.Breaker != BreakerOpen {
			t.Fatalf("breaker %s after 70 s of failures", v.Breaker)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}

		e = openBubbleEngine(t, f.ft, withDir)
		restarted := time.Now()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if v := getEndpoint(t, e, down.ID); v.Breaker != BreakerOpen {
			t.Errorf("breaker %s after the restart", v.Breaker)
		}
		// A probe at once, then at 5 s, 10 s (and 20 s after that: past
		// the 30 s).
		if n := f.requestsTo("down.example", restarted); n < 1 || n > 3 {
			t.Errorf("%d attempts in the 30 s after the restart, want probes only (at most 3)", n)
		}
	})
}

// TestAutoDisableAfterFailingTooLong: an endpoint whose every attempt has
// failed for DisableAfter is disabled, with a reason and a time, and its
// pending deliveries fail.
func TestAutoDisableAfterFailingTooLong(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFlakyReceiver()
		e := openBubbleEngine(t, f.ft, func(c *Config) {
			c.RetrySchedule = []time.Duration{time.Minute}
			c.RetrySchedule = append(c.RetrySchedule, make([]time.Duration, 199)...)
			for i := range c.RetrySchedule {
				c.RetrySchedule[i] = time.Minute
			}
			c.DisableAfter = time.Hour
		})
		start := time.Now()
		down, _ := failingBacklog(t, e, 5)
		time.Sleep(55 * time.Minute)
		synctest.Wait()
		if v := getEndpoint(t, e, down.ID); v.State != StateEnabled {
			t.Fatalf("disabled after 55 min: %s (%s)", v.State, v.DisabledReason)
		}
		time.Sleep(15 * time.Minute) // the breaker's probes come every 5 min
		synctest.Wait()
		v := getEndpoint(t, e, down.ID)
		if v.State != StateDisabledFailing || v.DisabledReason == "" || v.DisabledAt == nil || v.DisabledAt.Sub(start) < time.Hour {
			t.Fatalf("after 70 min of failures: %s, reason %q, at %v", v.State, v.DisabledReason, v.DisabledAt)
		}
		msgs, _, err := e.ListMessages(context.Background(), ListOptions{Status: StatusFailed})
		if err != nil || len(msgs) != 5 {
			t.Fatalf("%d failed messages, want 5 (%v)", len(msgs), err)
		}
		n := f.requestsTo("down.example", *v.DisabledAt)
		time.Sleep(time.Hour)
		synctest.Wait()
		if m := f.requestsTo("down.example", *v.DisabledAt); m != n {
			t.Errorf("%d attempts after the endpoint was disabled", m-n)
		}
	})
}

// TestSlowDestinationsDoNotStarveAHealthyOne: 500 destinations that hang
// until the attempt timeout, far more than the node's attempt slots, do
// not keep a healthy endpoint's messages waiting for a slot, and the
// attempts in flight stay within the node's cap.
// (Healthy: its last attempt succeeded. Before its first, a destination
// takes its turn among the other untried ones.) Not parallel: it counts
// the process's goroutines.
func TestSlowDestinationsDoNotStarveAHealthyOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, most atomic.Int64
		ft := &fakeTransport{respond: func(_ int, r *http.Request) (*http.Response, error) {
			if strings.HasPrefix(r.URL.Host, "slow") {
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-r.Context().Done()
				inFlight.Add(-1)
				return nil, r.Context().Err()
			}
			return response(r, http.StatusOK, nil), nil
		}}
		e := openBubbleEngine(t, ft, func(c *Config) {
			c.MaxInflight = 16
			c.AttemptTimeout = 10 * time.Second
			c.RetrySchedule = []time.Duration{30 * time.Second, 30 * time.Second}
		})
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://up.example/hook"})
		first := mustEnqueue(t, e, MessageInput{Type: "job.done"})
		waitOutcomes()
		if m := message(t, e, first.ID); m.Status != StatusSucceeded {
			t.Fatalf("the first message is %s", m.Status)
		}
		goroutines := runtime.NumGoroutine()
		for i := range 500 {
			if _, _, err := e.Enqueue(context.Background(), MessageInput{Type: "job.done", Data: []byte(`{}`),
				URIs: []string{"https://slow" + strings.Repeat("x", i%7) + strconv.Itoa(i) + ".example/hook"}}); err != nil {
				t.Fatal(err)
			}
		}
		// Mid-attempt for the first slow ones.
		time.Sleep(5 * time.Second)
		// An attempt is a goroutine (and a connection, with a real
		// transport): 500 destinations must not make 500 of them.
		if n := runtime.NumGoroutine() - goroutines; n > 16+32 {
			t.Errorf("%d more goroutines with 500 slow destinations pending", n)
		}
		time.Sleep(6 * time.Second) // the first ones have timed out
		for i := range 20 {
			time.Sleep(time.Duration(i%3) * 4 * time.Second) // at different points of the slow attempts
			sent := time.Now()
			msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
			time.Sleep(time.Second)
			if d := message(t, e, msg.ID).Deliveries[0]; d.Status != StatusSucceeded {
				t.Fatalf("healthy message %d: %s %v after it was sent", i, d.Status, time.Since(sent))
			}
		}
		if m := most.Load(); m > 16 {
			t.Errorf("%d attempts in flight at once, over MaxInflight 16", m)
		}
		if st := e.deliver.Stats(); st.Destinations > 501 || st.InFlight > 16 {
			t.Errorf("schedule stats %+v", st)
		}
	})
}
