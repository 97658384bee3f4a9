package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/engine/internal/ssrf"
	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// maxResponseRead is how much of a response body is read (and discarded)
// so the connection can be reused; larger bodies are cut off.
const maxResponseRead = 64 << 10

// userAgent identifies Herald to receivers.
const userAgent = "Herald-Webhooks/1"

// attempt makes one attempt of a due delivery and returns its outcome, or
// nil when there is nothing to record (the delivery moved on, or the term
// ended).
func (dl *Deliverer) attempt(ctx context.Context, due store.Due) *store.Outcome {
	v, err := dl.cfg.Store.ForAttempt(due.DeliveryID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			dl.cfg.Logger.Error("read delivery", "delivery_id", due.DeliveryID, "error", err)
		}
		return nil
	}
	d := &v.Delivery
	if d.Status != store.StatusPending || d.NextAttemptAt != due.At {
		return nil // finished or rescheduled since it was queued
	}
	out := store.Outcome{DeliveryID: d.ID, Attempt: d.AttemptCount + 1}
	var sig signer.Signer
	now := dl.cfg.Now()
	switch {
	case d.Override():
		sig, err = dl.cfg.Signers.Override(d.URL)
	case v.Endpoint != nil && v.Endpoint.State == store.StateDisabledFailing:
		// Disabled for failing: what its disabling command did not end
		// fails as the rest did.
		out.Result, out.Error = store.ResultFailed, store.FailedByDisable+v.Endpoint.DisabledReason
	case v.Endpoint == nil || v.Endpoint.State != store.StateEnabled:
		out.Result, out.Error = store.ResultCancelled, "endpoint deleted or disabled"
	default:
		sig, err = dl.cfg.Signers.Endpoint(v.Endpoint, now)
	}
	if err != nil {
		// Without a key nothing can be signed; keep the delivery due and
		// let the schedule try again rather than send it unsigned.
		dl.cfg.Logger.Error("cannot sign delivery", "delivery_id", d.ID, "error", err)
		out.Error = "herald could not sign the request: " + err.Error()
	}
	var header http.Header
	if out.Result == "" && err == nil {
		out.StatusCode, header, out.Error = dl.send(ctx, d, v.Envelope, sig, now)
		if ctx.Err() != nil {
			return nil // the term ended mid-attempt; the next leader sends again
		}
	}
	out.Error = boundText(out.Error, store.MaxErrorText)
	out.At = now.UnixNano()
	out.DurationMS = dl.cfg.Now().Sub(now).Milliseconds()
	var nextAt time.Time
	switch {
	case out.Result != "":
	case out.StatusCode >= 200 && out.StatusCode < 300:
		out.Result = store.ResultSucceeded
	case out.StatusCode == http.StatusGone && !d.Override():
		out.Result = store.ResultGone
	default:
		var retryAfter time.Duration
		if out.StatusCode == http.StatusTooManyRequests || out.StatusCode == http.StatusServiceUnavailable {
			retryAfter = parseRetryAfter(header, now)
		}
		out.Result, nextAt = dl.policy.next(d, now, retryAfter)
		if !nextAt.IsZero() {
			out.NextAttemptAt = nextAt.UnixNano()
		}
		if v.Endpoint != nil {
			out.OpenBreaker, out.Disable = dl.judge(v.Endpoint.Health, now)
		}
	}
	return &out
}

// judge decides, after a failed attempt to an endpoint with the given
// health, whether its breaker opens and whether it is disabled: when every
// attempt has failed, at least BreakerFailures of them over at least
// BreakerPeriod, or for DisableAfter.
func (dl *Deliverer) judge(h store.EndpointHealth, now time.Time) (openBreaker, disable bool) {
	if h.FailingSince == 0 {
		return false, false // the first failure: nothing to judge yet
	}
	failing := now.Sub(time.Unix(0, h.FailingSince))
	openBreaker = h.BreakerOpenedAt == 0 && h.Failures+1 >= dl.cfg.BreakerFailures && failing >= dl.cfg.BreakerPeriod
	return openBreaker, failing >= dl.cfg.DisableAfter
}

// record commits an attempt's outcome (group-committed with others). If the
// commit fails, the delivery stays due at its old time and the next leader
// attempts it again.
func (dl *Deliverer) record(ctx context.Context, out *store.Outcome) {
	if err := dl.cfg.Commit(ctx, *out); err != nil && ctx.Err() == nil {
		dl.cfg.Logger.Warn("commit attempt outcome", "delivery_id", out.DeliveryID, "error", err)
	}
}

// send POSTs the exact envelope bytes, signed for this attempt. It returns
// the status code (0 if none arrived), the response headers and an error
// description for attempts that got no 2xx.
func (dl *Deliverer) send(ctx context.Context, d *store.Delivery, body []byte, sig signer.Signer, now time.Time) (int, http.Header, string) {
	ctx, cancel := context.WithTimeout(ctx, dl.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, "invalid URL: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if err := signer.SetHeaders(req.Header, sig, d.MessageID, now, body); err != nil {
		return 0, nil, "signing failed: " + err.Error()
	}
	resp, err := dl.client.Do(req)
	if err != nil {
		return 0, nil, describeSendError(err, dl.cfg.AttemptTimeout)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, resp.Header, ""
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, resp.Header, fmt.Sprintf("HTTP %d: redirects are not followed", resp.StatusCode)
	}
	return resp.StatusCode, resp.Header, fmt.Sprintf("HTTP %d", resp.StatusCode)
}

// describeSendError turns a transport error into a short, stable reason.
func describeSendError(err error, timeout time.Duration) string {
	var blocked *ssrf.BlockedError
	var netErr net.Error
	switch {
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timed out after %v", timeout)
	}
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) {
		if inner := uerr.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// boundText keeps at most max bytes of valid UTF-8 of s, so that nothing a
// receiver sends (a status line, a header, a TLS alert) can grow what is
// stored and replicated about an attempt.
func boundText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
