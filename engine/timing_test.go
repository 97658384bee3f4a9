package engine

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/engine/internal/delivery"
	"github.com/heraldhq/herald/signer"
)

// A whole Engine runs inside a synctest bubble: Raft on its in-memory
// transport, attempts through a fake http.RoundTripper, and every timer
// (Raft's, the scheduler's, the attempt timeout, rate limits) on the
// bubble's fake clock. A day of retries takes well under a second of real
// time, and due times can be checked exactly.

// fakeTransport answers attempts with respond and records when each came.
type fakeTransport struct {
	respond func(n int, r *http.Request) (*http.Response, error) // n: 0-based request number

	mu   sync.Mutex
	reqs []fakeRequest
}

type fakeRequest struct {
	URL    string
	At     time.Time
	ID     string // webhook-id
	Header http.Header
	Body   []byte
}

func (f *fakeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	// Canonical keys, as a server would parse them (Herald sends the
	// webhook headers lowercase).
	header := http.Header{}
	for k, v := range r.Header {
		header[http.CanonicalHeaderKey(k)] = slices.Clone(v)
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, fakeRequest{URL: r.URL.String(), At: time.Now(), ID: header.Get("webhook-id"),
		Header: header, Body: body})
	f.mu.Unlock()
	if f.respond == nil {
		return response(r, http.StatusOK, nil), nil
	}
	return f.respond(n, r)
}

func (f *fakeTransport) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func response(r *http.Request, code int, header http.Header) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: code, Header: header, Body: io.NopCloser(strings.NewReader("")), Request: r}
}

// waitOutcomes waits, in a synctest bubble, until the attempts under way
// are made and their outcomes committed: on a quiet node an outcome waits
// for company for up to outcomeLinger of fake time.
func waitOutcomes() {
	synctest.Wait()
	time.Sleep(outcomeLinger)
	synctest.Wait()
}

// openBubbleEngine opens an engine inside the current synctest bubble and
// waits (in fake time) until it leads and delivers. It is closed when the
// test ends, still inside the bubble.
func openBubbleEngine(t *testing.T, ft *fakeTransport, modify func(*Config)) *Engine {
	t.Helper()
	cfg := Config{
		DataDir:   t.TempDir(),
		NoNetwork: true,
		// Long Raft timeouts: a single node elects itself all the same, and
		// a day of fake time then costs few leader-lease wakeups.
		Raft:                 RaftConfig{HeartbeatTimeout: 10 * time.Second, ElectionTimeout: 10 * time.Second},
		Transport:            ft,
		AllowPrivateNetworks: true, // no DNS lookups inside the bubble
		Logger:               testLogger(t),
	}
	if modify != nil {
		modify(&cfg)
	}
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for !e.IsLeader() || !e.delivering.Load() {
		if time.Now().After(deadline) {
			t.Fatal("no leadership after a minute of fake time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

func message(t *testing.T, e *Engine, id string) *Message {
	t.Helper()
	m, err := e.Message(context.Background(), "", id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDefaultScheduleRetriesForADayThenFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTransport{respond: func(_ int, r *http.Request) (*http.Response, error) {
			return response(r, http.StatusInternalServerError, nil), nil
		}}
		e := openBubbleEngine(t, ft, nil)
		ep := mustCreateEndpoint(t, e, EndpointInput{URL: "https://receiver.example/hook"})
		msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

		time.Sleep(24*time.Hour - time.Second)
		synctest.Wait()
		if m := message(t, e, msg.ID); m.Status != "pending" || m.Deliveries[0].AttemptCount != len(DefaultRetrySchedule) {
			t.Fatalf("a second before the window closes: %s after %d attempts, want pending after %d",
				m.Status, m.Deliveries[0].AttemptCount, len(DefaultRetrySchedule))
		}
		time.Sleep(time.Minute)
		synctest.Wait()

		m := message(t, e, msg.ID)
		d := m.Deliveries[0]
		if m.Status != "failed" || d.Status != "failed" || d.AttemptCount != len(DefaultRetrySchedule)+1 {
			t.Fatalf("after the window: message %s, delivery %+v", m.Status, d)
		}
		reqs := ft.requests()
		if len(reqs) != len(DefaultRetrySchedule)+1 {
			t.Fatalf("%d requests, want %d", len(reqs), len(DefaultRetrySchedule)+1)
		}
		if !reqs[0].At.Equal(msg.CreatedAt) {
			t.Errorf("first attempt %v after enqueue, want at once", reqs[0].At.Sub(msg.CreatedAt))
		}
		for i, base := range DefaultRetrySchedule[:len(DefaultRetrySchedule)-1] {
			gap := reqs[i+1].At.Sub(reqs[i].At)
			lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)+delivery.Resolution
			if gap < lo || gap > hi {
				t.Errorf("retry %d came %v after attempt %d, want %v ± 20%%", i+1, gap, i+1, base)
			}
		}
		if span := reqs[len(reqs)-1].At.Sub(reqs[0].At); span < 24*time.Hour || span >= 24*time.Hour+delivery.Resolution {
			t.Errorf("last attempt %v after the first, want when the 24h window closes", span)
		}
		for i, a := range d.Attempts {
			if !a.At.Equal(reqs[i].At) || a.StatusCode != 500 {
				t.Errorf("attempt %d recorded %+v, sent at %v", i+1, a, reqs[i].At)
			}
		}
		// Every attempt is signed afresh: its own timestamp, verifying at
		// the time it was sent, over the same body and webhook-id.
		for i, r := range reqs {
			if got, want := r.Header.Get("webhook-timestamp"), strconv.FormatInt(r.At.Unix(), 10); got != want {
				t.Errorf("attempt %d: webhook-timestamp %s, want %s", i+1, got, want)
			}
			v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{ep.Secret}, Now: func() time.Time { return r.At }})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(r.Header, r.Body); err != nil {
				t.Errorf("attempt %d: signature: %v", i+1, err)
			}
			if r.ID != msg.ID || string(r.Body) != string(reqs[0].Body) {
				t.Errorf("attempt %d: webhook-id %s and body differ from the first attempt's", i+1, r.ID)
			}
		}
	})
}

func TestRetryAfterSetsTheNextAttemptExactly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTransport{}
		ft.respond = func(n int, r *http.Request) (*http.Response, error) {
			switch n {
			case 0:
				return response(r, http.StatusServiceUnavailable, http.Header{"Retry-After": {"120"}}), nil
			case 1:
				date := time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat)
				return response(r, http.StatusTooManyRequests, http.Header{"Retry-After": {date}}), nil
			case 2:
				// Far above the schedule's third delay (2m).
				return response(r, http.StatusTooManyRequests, http.Header{"Retry-After": {"7200"}}), nil
			case 3:
				// Retry-After on other statuses is ignored.
				return response(r, http.StatusInternalServerError, http.Header{"Retry-After": {"3600"}}), nil
			}
			return response(r, http.StatusOK, nil), nil
		}
		e := openBubbleEngine(t, ft, nil)
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://receiver.example/hook"})
		msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

		time.Sleep(9 * time.Hour)
		synctest.Wait()
		m := message(t, e, msg.ID)
		if m.Status != "succeeded" || len(m.Deliveries[0].Attempts) != 5 {
			t.Fatalf("message %s with attempts %+v", m.Status, m.Deliveries[0].Attempts)
		}
		reqs := ft.requests()
		gaps := make([]time.Duration, len(reqs)-1)
		for i := range gaps {
			gaps[i] = reqs[i+1].At.Sub(reqs[i].At)
		}
		within := func(got, want, slack time.Duration) bool { return got >= want-slack && got < want+delivery.Resolution }
		if !within(gaps[0], 2*time.Minute, 0) {
			t.Errorf("after 503 Retry-After: 120 the next attempt came %v later", gaps[0])
		}
		if !within(gaps[1], 10*time.Minute, time.Second) { // HTTP dates have whole seconds
			t.Errorf("after 429 Retry-After: <now+10m> the next attempt came %v later", gaps[1])
		}
		if !within(gaps[2], 2*time.Hour, 0) {
			t.Errorf("after 429 Retry-After: 7200 the next attempt came %v later, want 2h", gaps[2])
		}
		// The fourth attempt's retry is the schedule's fourth: 5m ± 20%,
		// not the hour the 500 asked for.
		if gaps[3] < 4*time.Minute || gaps[3] > 6*time.Minute+delivery.Resolution {
			t.Errorf("after 500 with Retry-After the next attempt came %v later, want the schedule's 5m ± 20%%", gaps[3])
		}
	})
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTransport{}
		ft.respond = func(n int, r *http.Request) (*http.Response, error) {
			if n == 0 {
				<-r.Context().Done() // a receiver that never answers
				return nil, r.Context().Err()
			}
			return response(r, http.StatusOK, nil), nil
		}
		e := openBubbleEngine(t, ft, func(c *Config) {
			c.AttemptTimeout = 15 * time.Second
			c.RetrySchedule = []time.Duration{time.Minute}
		})
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://receiver.example/hook"})
		msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

		time.Sleep(15*time.Second - time.Millisecond)
		synctest.Wait()
		if d := message(t, e, msg.ID).Deliveries[0]; d.AttemptCount != 0 {
			t.Fatalf("attempt ended before the timeout: %+v", d)
		}
		time.Sleep(time.Millisecond)
		waitOutcomes()
		d := message(t, e, msg.ID).Deliveries[0]
		if d.AttemptCount != 1 || d.Attempts[0].Error != "timed out after 15s" || d.Attempts[0].DurationMS != 15000 ||
			d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(d.Attempts[0].At.Add(time.Minute)) {
			t.Fatalf("after the timeout: %+v", d)
		}
		time.Sleep(time.Minute)
		waitOutcomes()
		if m := message(t, e, msg.ID); m.Status != "succeeded" || m.Deliveries[0].AttemptCount != 2 {
			t.Fatalf("after the retry: %s, %+v", m.Status, m.Deliveries[0])
		}
	})
}

func TestRateLimitSpacesAttempts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTransport{}
		e := openBubbleEngine(t, ft, nil)
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://limited.example/hook", RateLimitPerS: 4})
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://free.example/hook"})
		const n = 8
		var ids []string
		for range n {
			ids = append(ids, mustEnqueue(t, e, MessageInput{Type: "job.done"}).ID)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		for _, id := range ids {
			if m := message(t, e, id); m.Status != "succeeded" {
				t.Fatalf("message %s is %s", id, m.Status)
			}
		}
		var limited, free []time.Time
		for _, r := range ft.requests() {
			if strings.Contains(r.URL, "limited") {
				limited = append(limited, r.At)
			} else {
				free = append(free, r.At)
			}
		}
		if len(limited) != n || len(free) != n {
			t.Fatalf("%d limited and %d free requests, want %d each", len(limited), len(free), n)
		}
		slices.SortFunc(limited, time.Time.Compare)
		for i := 1; i < n; i++ {
			if gap := limited[i].Sub(limited[i-1]); gap < 250*time.Millisecond {
				t.Errorf("rate-limited requests %d and %d only %v apart, want at most 4/s", i, i+1, gap)
			}
		}
		if span := limited[n-1].Sub(limited[0]); span > (n-1)*250*time.Millisecond+delivery.Resolution {
			t.Errorf("%d rate-limited requests took %v, want them back to back at 4/s", n, span)
		}
		// The limit is the endpoint's own: the other one was not slowed.
		if span := free[n-1].Sub(free[0]); span != 0 {
			t.Errorf("unlimited endpoint's requests spread over %v", span)
		}
	})
}

// A steady trickle must be limited too, not only a backlog: each message
// here arrives after the previous one was sent, to an empty queue.
func TestRateLimitHoldsForASteadyStream(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTransport{}
		e := openBubbleEngine(t, ft, nil)
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://limited.example/hook", RateLimitPerS: 2})
		const n = 6
		for range n {
			mustEnqueue(t, e, MessageInput{Type: "job.done"})
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		reqs := ft.requests()
		if len(reqs) != n {
			t.Fatalf("%d requests, want %d", len(reqs), n)
		}
		for i := 1; i < n; i++ {
			if gap := reqs[i].At.Sub(reqs[i-1].At); gap < 500*time.Millisecond {
				t.Errorf("requests %d and %d only %v apart, want at most 2/s", i, i+1, gap)
			}
		}
	})
}

// A retry is committed (and scheduled) by the attempt before it, while
// that attempt's worker is still finishing. If the retry falls due in that
// moment it must still be dispatched. (The dispatcher once deduplicated by
// delivery id alone and dropped it, leaving the delivery pending until the
// next leadership term.)
func TestRetryDueWhileAttemptFinishesIsNotLost(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTransport{respond: func(_ int, r *http.Request) (*http.Response, error) {
			return response(r, http.StatusInternalServerError, nil), nil
		}}
		e := openBubbleEngine(t, ft, func(c *Config) {
			// The window (10.1 s) outlasts the slow hook below.
			c.RetrySchedule = []time.Duration{100 * time.Millisecond, 10 * time.Second}
			// A slow hook holds the worker past the next due time.
			c.OnAttempt = func(AttemptEvent) { time.Sleep(time.Second) }
		})
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://receiver.example/hook"})
		msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
		time.Sleep(time.Hour)
		synctest.Wait()
		m := message(t, e, msg.ID)
		if m.Status != "failed" || m.Deliveries[0].AttemptCount != 3 {
			t.Fatalf("message %s after %d attempts, want failed after 3", m.Status, m.Deliveries[0].AttemptCount)
		}
	})
}

func TestRetentionAndIdempotencyExpiry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTransport{}
		e := openBubbleEngine(t, ft, func(c *Config) { c.Retention = time.Hour })
		mustCreateEndpoint(t, e, EndpointInput{URL: "https://receiver.example/hook"})
		in := MessageInput{Type: "job.done", Data: []byte(`{}`), IdempotencyKey: "k"}
		first := mustEnqueue(t, e, in)
		waitOutcomes()
		if m := message(t, e, first.ID); m.Status != "succeeded" {
			t.Fatalf("message is %s", m.Status)
		}
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		message(t, e, first.ID) // still kept
		if m, created, err := e.Enqueue(context.Background(), in); err != nil || created || m.ID != first.ID {
			t.Fatalf("repeat within 24h = %v, created %v, %v", m, created, err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if _, err := e.Message(context.Background(), "", first.ID); err != ErrNotFound {
			t.Fatalf("message past retention: %v, want ErrNotFound", err)
		}
		time.Sleep(23 * time.Hour)
		synctest.Wait()
		again, created, err := e.Enqueue(context.Background(), in)
		if err != nil || !created || again.ID == first.ID {
			t.Fatalf("same key after 24h = %+v, created %v, %v; want a new message", again, created, err)
		}
	})
}
