package engine

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
)

// Delivery semantics (docs/delivery-semantics.md) against misbehaving
// receivers. The engines use short exact retry schedules so these real-time
// tests retry in milliseconds.

var ctxb = context.Background()

func TestRetriesAfter503ThenSucceeds(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond, 100*time.Millisecond))
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "batch.succeeded", Data: []byte(`{"n":1}`)})

	m := waitStatus(t, e, msg.ID, "succeeded")
	d := m.Deliveries[0]
	if d.Status != "succeeded" || d.AttemptCount != 2 || d.LastStatusCode != 200 || d.LastError != "" || d.NextAttemptAt != nil {
		t.Fatalf("delivery = %+v", d)
	}
	if len(d.Attempts) != 2 || d.Attempts[0].StatusCode != 503 || d.Attempts[0].Error == "" || d.Attempts[1].StatusCode != 200 {
		t.Fatalf("attempts = %+v, want 503 then 200, oldest first", d.Attempts)
	}
	if gap := d.Attempts[1].At.Sub(d.Attempts[0].At); gap < 50*time.Millisecond {
		t.Fatalf("second attempt %v after the first, want at least the schedule's 50ms", gap)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{ep.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		if got := r.Header.Get("webhook-id"); got != msg.ID {
			t.Errorf("attempt %d: webhook-id %q, want %q on every attempt", i+1, got, msg.ID)
		}
		if err := v.Verify(r.Header, r.Body); err != nil {
			t.Errorf("attempt %d: signature: %v", i+1, err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("attempt %d: content-type %q", i+1, ct)
		}
	}
	if !bytes.Equal(reqs[0].Body, reqs[1].Body) {
		t.Fatalf("retry sent a different body:\n%s\n%s", reqs[0].Body, reqs[1].Body)
	}
}

func TestGoneDisablesEndpointAndFailsItsPendingDeliveries(t *testing.T) {
	t.Parallel()
	e := openEngine(t, func(c *Config) {
		c.RetrySchedule = []time.Duration{50 * time.Millisecond}
		c.EndpointConcurrency = 1 // the later messages wait behind the first
	})
	answer := make(chan struct{})
	gone := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-answer:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusGone)
	})
	other := newReceiver(t, nil)
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: gone.URL})
	mustCreateEndpoint(t, e, EndpointInput{URL: other.URL})

	var ids []string
	for range 3 {
		ids = append(ids, mustEnqueue(t, e, MessageInput{Type: "job.done"}).ID)
	}
	waitRequests(t, gone, 1)
	// All three deliveries to the endpoint are committed and pending; the
	// first is in flight.
	close(answer)

	for _, id := range ids {
		m := waitStatus(t, e, id, "failed")
		for _, d := range m.Deliveries {
			switch d.URL {
			case gone.URL:
				if d.Status != "failed" || !strings.Contains(d.LastError, "410") {
					t.Errorf("message %s: delivery to the gone endpoint = %+v", id, d)
				}
			case other.URL:
				if d.Status != "succeeded" {
					t.Errorf("message %s: delivery to the healthy endpoint = %+v", id, d)
				}
			}
		}
	}
	got, err := e.Endpoint(ctxb, "", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "disabled_due_to_failed_deliveries" {
		t.Fatalf("endpoint state = %q", got.State)
	}
	if n := gone.count(); n != 1 {
		t.Fatalf("gone endpoint got %d requests, want only the one answered 410", n)
	}
	// A disabled endpoint takes no new messages.
	m := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	m = waitStatus(t, e, m.ID, "succeeded")
	if len(m.Deliveries) != 1 || m.Deliveries[0].URL != other.URL {
		t.Fatalf("new message deliveries = %+v, want only the healthy endpoint", m.Deliveries)
	}
}

func TestRedirectIsAFailureAndNotFollowed(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond))
	target := newReceiver(t, nil)
	redirect := func(code int) *receiver {
		return newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, code)
		})
	}
	r302, r307 := redirect(http.StatusFound), redirect(http.StatusTemporaryRedirect)
	mustCreateEndpoint(t, e, EndpointInput{URL: r302.URL})
	mustCreateEndpoint(t, e, EndpointInput{URL: r307.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

	m := waitStatus(t, e, msg.ID, "failed")
	for _, d := range m.Deliveries {
		want := map[string]int{r302.URL: 302, r307.URL: 307}[d.URL]
		if d.Status != "failed" || d.AttemptCount != 2 || d.LastStatusCode != want || !strings.Contains(d.LastError, "redirect") {
			t.Errorf("delivery = %+v, want failed after 2 attempts with %d", d, want)
		}
	}
	if n := target.count(); n != 0 {
		t.Fatalf("redirect target got %d requests; redirects must not be followed", n)
	}
	if r302.count() != 2 || r307.count() != 2 {
		t.Fatalf("redirecting receivers got %d and %d requests, want 2 each", r302.count(), r307.count())
	}
}

func TestRetryAfterPostponesNextAttempt(t *testing.T) {
	t.Parallel()
	// Without Retry-After the second attempt would come 100ms after the
	// first. The window ends 3.1s after the first attempt.
	e := openEngine(t, withSchedule(100*time.Millisecond, 1500*time.Millisecond, 1500*time.Millisecond))
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 0:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 1:
			w.Header().Set("Retry-After", "3600") // capped by the window's end
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

	d := waitDelivery(t, e, msg.ID, rc.URL, "first attempt", func(d *Delivery) bool { return d.AttemptCount == 1 })
	if d.NextAttemptAt == nil || d.NextAttemptAt.Sub(d.Attempts[0].At) != time.Second {
		t.Fatalf("after 503 with Retry-After: 1, next attempt at %v, first at %v; want 1s later", d.NextAttemptAt, d.Attempts[0].At)
	}
	d = waitDelivery(t, e, msg.ID, rc.URL, "second attempt", func(d *Delivery) bool { return d.AttemptCount == 2 })
	if d.NextAttemptAt == nil || d.NextAttemptAt.Sub(d.Attempts[0].At) != 3100*time.Millisecond {
		t.Fatalf("after 429 with Retry-After: 3600, next attempt at %v, first at %v; want the window's end, 3.1s after the first", d.NextAttemptAt, d.Attempts[0].At)
	}
	m := waitStatus(t, e, msg.ID, "succeeded")
	if got := len(m.Deliveries[0].Attempts); got != 3 {
		t.Fatalf("%d attempts, want 3", got)
	}
	// Measured from when each attempt began (its recorded time), not from
	// when the receiver saw it, which is later by the request's latency.
	reqs, attempts := rc.requests(), m.Deliveries[0].Attempts
	if gap := reqs[1].At.Sub(attempts[0].At); gap < time.Second {
		t.Errorf("receiver saw the second attempt %v after the first began, want at least 1s", gap)
	}
	if gap := reqs[2].At.Sub(attempts[0].At); gap < 3100*time.Millisecond {
		t.Errorf("receiver saw the third attempt %v after the first began, want at least 3.1s", gap)
	}
}

func TestHangingEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	const workers, messages = 4, 40
	e := openEngine(t, func(c *Config) {
		c.EndpointConcurrency = workers
		c.AttemptTimeout = 30 * time.Second // far beyond the healthy deadline below
	})
	hanging := newHangingReceiver(t)
	healthy := newReceiver(t, nil)
	mustCreateEndpoint(t, e, EndpointInput{URL: hanging.URL})
	mustCreateEndpoint(t, e, EndpointInput{URL: healthy.URL})

	var ids []string
	for range messages {
		ids = append(ids, mustEnqueue(t, e, MessageInput{Type: "job.done"}).ID)
	}
	start := time.Now()
	for _, id := range ids {
		waitDelivery(t, e, id, healthy.URL, "healthy delivery of "+id, func(d *Delivery) bool { return d.Status == "succeeded" })
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("healthy endpoint took %v for %d messages while another endpoint hung", elapsed, messages)
	}
	if n := healthy.count(); n != messages {
		t.Fatalf("healthy endpoint got %d requests, want %d", n, messages)
	}
	waitRequests(t, hanging, workers)
	if n := hanging.count(); n != workers {
		t.Fatalf("hanging endpoint has %d requests in flight, want its %d workers' worth", n, workers)
	}
	for _, id := range ids {
		m, err := e.Message(ctxb, "", id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != "pending" {
			t.Fatalf("message %s is %s while its hanging delivery is unanswered", id, m.Status)
		}
	}
}

func TestConnectionResetIsRetried(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond))
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n > 0 {
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // close with RST
		conn.Close()
	})
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

	m := waitStatus(t, e, msg.ID, "succeeded")
	a := m.Deliveries[0].Attempts
	if len(a) != 2 || a[0].StatusCode != 0 || a[0].Error == "" || a[1].StatusCode != 200 {
		t.Fatalf("attempts = %+v, want a transport error then 200", a)
	}
	t.Logf("reset recorded as %q", a[0].Error)
	if n := rc.count(); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
}

func TestHugeResponseBodyIsNotRead(t *testing.T) {
	t.Parallel()
	const total = 100 << 20
	e := openEngine(t, nil)
	written := make(chan int64, 1)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		var n int64
		defer func() { written <- n }()
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for n < total {
			k, err := w.Write(chunk)
			n += int64(k)
			if err != nil {
				return // the client stopped reading and closed the connection
			}
		}
	})
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

	m := waitStatus(t, e, msg.ID, "succeeded")
	if d := m.Deliveries[0]; d.AttemptCount != 1 || d.LastStatusCode != 200 {
		t.Fatalf("delivery = %+v", d)
	}
	var n int64
	select {
	case n = <-written:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler was still writing 20s after the attempt succeeded")
	}
	t.Logf("handler wrote %d bytes before the connection closed", n)
	// Herald reads 64 KiB; the rest is what socket buffers absorbed.
	if n >= total/8 {
		t.Fatalf("handler wrote %d of %d bytes: Herald read far more than a prefix", n, total)
	}
}

func TestScheduleExhaustionFailsDelivery(t *testing.T) {
	t.Parallel()
	var log attemptLog
	e := openEngine(t, func(c *Config) {
		c.RetrySchedule = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
		c.OnAttempt = log.record
	})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	ep := mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})

	m := waitStatus(t, e, msg.ID, "failed")
	d := m.Deliveries[0]
	if d.Status != "failed" || d.AttemptCount != 3 || len(d.Attempts) != 3 || d.LastStatusCode != 500 || d.LastError != "HTTP 500" || d.NextAttemptAt != nil {
		t.Fatalf("delivery = %+v, want failed after len(schedule)+1 = 3 attempts", d)
	}
	if n := rc.count(); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}
	// OnAttempt runs just after the outcome is committed, so the last event
	// may trail the status read above.
	waitFor(t, 10*time.Second, "three OnAttempt events", func() bool { return len(log.get()) >= 3 })
	evs := log.get()
	wantStatus := []Status{"pending", "pending", "failed"}
	if len(evs) != 3 {
		t.Fatalf("OnAttempt got %d events, want 3: %+v", len(evs), evs)
	}
	for i, ev := range evs {
		if ev.MessageID != msg.ID || ev.DeliveryID != d.ID || ev.EndpointID != ep.ID || ev.Attempt != i+1 ||
			ev.StatusCode != 500 || ev.Status != wantStatus[i] || ev.NextAttemptAt.IsZero() != (i == 2) {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
}

func TestMessageStatusAggregatesDeliveries(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond))
	ok := newReceiver(t, nil)
	release := make(chan struct{})
	failing := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	mustCreateEndpoint(t, e, EndpointInput{URL: ok.URL, EventTypes: []string{"a", "b"}})
	mustCreateEndpoint(t, e, EndpointInput{URL: failing.URL, EventTypes: []string{"a"}})

	// No subscriber: nothing to deliver, so nothing failed.
	none := mustEnqueue(t, e, MessageInput{Type: "c"})
	if m := waitStatus(t, e, none.ID, "succeeded"); len(m.Deliveries) != 0 {
		t.Fatalf("deliveries = %+v", m.Deliveries)
	}
	both := mustEnqueue(t, e, MessageInput{Type: "a"})
	// One delivery succeeded, the other is still in its first attempt.
	waitDelivery(t, e, both.ID, ok.URL, "delivery to the healthy endpoint", func(d *Delivery) bool { return d.Status == "succeeded" })
	if m, err := e.Message(ctxb, "", both.ID); err != nil || m.Status != "pending" {
		t.Fatalf("message with a delivery in flight = %+v, %v; want pending", m, err)
	}
	close(release)
	waitStatus(t, e, both.ID, "failed")
	good := mustEnqueue(t, e, MessageInput{Type: "b"})
	waitStatus(t, e, good.ID, "succeeded")

	for status, want := range map[Status][]string{
		"failed":    {both.ID},
		"succeeded": {good.ID, none.ID}, // newest first
		"pending":   nil,
	} {
		msgs, next, err := e.ListMessages(ctxb, ListOptions{Status: status})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.ID)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") || next != "" {
			t.Errorf("ListMessages(%s) = %v (next %q), want %v", status, got, next, want)
		}
	}
	var inv *InvalidError
	if _, _, err := e.ListMessages(ctxb, ListOptions{Status: "cancelled"}); !errors.As(err, &inv) {
		t.Errorf("ListMessages(cancelled) error = %v, want *InvalidError", err)
	}
}

func TestRetryMessageRequeuesFailedDeliveries(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond))
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	waitStatus(t, e, msg.ID, "failed")

	healthy.Store(true)
	n, err := e.RetryMessage(ctxb, "", msg.ID)
	if err != nil || n.Requeued != 1 || n.Reason != "" {
		t.Fatalf("RetryMessage = %+v, %v; want 1 re-queued", n, err)
	}
	m := waitStatus(t, e, msg.ID, "succeeded")
	var codes []int
	for _, a := range m.Deliveries[0].Attempts {
		codes = append(codes, a.StatusCode)
	}
	if len(codes) != 3 || codes[0] != 502 || codes[1] != 502 || codes[2] != 200 || m.Deliveries[0].AttemptCount != 3 {
		t.Fatalf("attempt status codes = %v, want [502 502 200]", codes)
	}
	// Nothing failed is left to re-queue, and the reason says so.
	if n, err := e.RetryMessage(ctxb, "", msg.ID); err != nil || n.Requeued != 0 || n.Reason != "no failed deliveries: 1 succeeded" {
		t.Fatalf("second RetryMessage = %+v, %v; want 0 and why", n, err)
	}
	if _, err := e.RetryMessage(ctxb, "", "msg_doesnotexist"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RetryMessage(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestRecoverRequeuesFailedDeliveriesInWindow(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond))
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mustCreateEndpoint(t, e, EndpointInput{URL: rc.URL})
	older := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	newer := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	waitStatus(t, e, older.ID, "failed")
	waitStatus(t, e, newer.ID, "failed")
	healthy.Store(true)

	n, err := e.Recover(ctxb, "", newer.CreatedAt, time.Time{})
	if err != nil || n.Requeued != 1 || n.Reason != "" {
		t.Fatalf("Recover(since newer) = %+v, %v; want 1", n, err)
	}
	waitStatus(t, e, newer.ID, "succeeded")
	if m, _ := e.Message(ctxb, "", older.ID); m.Status != "failed" {
		t.Fatalf("message outside the window is %s, want still failed", m.Status)
	}
	// until is exclusive: a window ending at the older message's creation
	// holds nothing.
	if n, err := e.Recover(ctxb, "", older.CreatedAt.Add(-time.Hour), older.CreatedAt); err != nil || n.Requeued != 0 ||
		!strings.HasPrefix(n.Reason, "no message was created between ") {
		t.Fatalf("Recover(window before older) = %+v, %v; want 0 and why", n, err)
	}
	n, err = e.Recover(ctxb, "", older.CreatedAt.Add(-time.Hour), older.CreatedAt.Add(time.Nanosecond))
	if err != nil || n.Requeued != 1 {
		t.Fatalf("Recover(window around older) = %+v, %v; want 1", n, err)
	}
	waitStatus(t, e, older.ID, "succeeded")
	var inv *InvalidError
	if _, err := e.Recover(ctxb, "", newer.CreatedAt, older.CreatedAt); !errors.As(err, &inv) {
		t.Fatalf("Recover(since after until) error = %v, want *InvalidError", err)
	}
}

// The webhook headers go on the wire lowercase, exactly as the Standard
// Webhooks spec writes them (a Go server would canonicalise them, so this
// receiver reads the raw request).
func TestWebhookHeadersAreLowercaseOnTheWire(t *testing.T) {
	t.Parallel()
	e := openEngine(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	head := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		var buf []byte
		chunk := make([]byte, 4096)
		for !bytes.Contains(buf, []byte("\r\n\r\n")) {
			n, err := conn.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if err != nil {
				break
			}
		}
		head <- string(buf)
		conn.Write([]byte("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"))
	}()
	mustCreateEndpoint(t, e, EndpointInput{URL: "http://" + ln.Addr().String() + "/hook"})
	msg := mustEnqueue(t, e, MessageInput{Type: "job.done"})
	waitStatus(t, e, msg.ID, "succeeded")
	h := <-head
	for _, want := range []string{"POST /hook HTTP/1.1\r\n", "\r\nwebhook-id: " + msg.ID + "\r\n", "\r\nwebhook-timestamp: ",
		"\r\nwebhook-signature: v1,", "\r\nContent-Type: application/json\r\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("request head lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "Webhook-") {
		t.Errorf("request head has canonicalised webhook headers:\n%s", h)
	}
}
