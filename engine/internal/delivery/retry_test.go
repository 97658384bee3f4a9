package delivery

import (
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestRetryPolicyCustomScheduleIsExact(t *testing.T) {
	t.Parallel()
	p := newRetryPolicy([]time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, 0)
	for _, tc := range []struct {
		name       string
		d          store.Delivery
		at         time.Time
		retryAfter time.Duration
		result     string
		next       time.Time
	}{
		{"first failure", store.Delivery{}, t0, 0, store.ResultRetry, t0.Add(time.Second)},
		{"second failure", store.Delivery{RoundAttempts: 1, FirstAttemptAt: t0.UnixNano()}, t0.Add(time.Second), 0, store.ResultRetry, t0.Add(3 * time.Second)},
		{"third failure", store.Delivery{RoundAttempts: 2, FirstAttemptAt: t0.UnixNano()}, t0.Add(3 * time.Second), 0, store.ResultRetry, t0.Add(6 * time.Second)},
		{"exhausted", store.Delivery{RoundAttempts: 3, FirstAttemptAt: t0.UnixNano()}, t0.Add(6 * time.Second), 0, store.ResultFailed, time.Time{}},
		{"exhausted despite Retry-After", store.Delivery{RoundAttempts: 3, FirstAttemptAt: t0.UnixNano()}, t0.Add(6 * time.Second), time.Second, store.ResultFailed, time.Time{}},
		// A late attempt does not extend the window: it closes 6s after
		// the first attempt.
		{"attempt after the window's end is the last", store.Delivery{RoundAttempts: 1, FirstAttemptAt: t0.UnixNano()}, t0.Add(7 * time.Second), 0, store.ResultFailed, time.Time{}},
		{"attempt at the window's end is the last", store.Delivery{RoundAttempts: 1, FirstAttemptAt: t0.UnixNano()}, t0.Add(6 * time.Second), time.Hour, store.ResultFailed, time.Time{}},
		{"late attempt clamped to window", store.Delivery{RoundAttempts: 1, FirstAttemptAt: t0.UnixNano()}, t0.Add(5 * time.Second), 0, store.ResultRetry, t0.Add(6 * time.Second)},
		// The last retry is made when the window closes, even when earlier
		// retries came sooner than scheduled.
		{"last retry at the window's close", store.Delivery{RoundAttempts: 2, FirstAttemptAt: t0.UnixNano()}, t0.Add(2 * time.Second), 0, store.ResultRetry, t0.Add(6 * time.Second)},
		// Retry-After postpones the scheduled delay, up to the window's
		// end, and never brings it forward.
		{"Retry-After beyond the delay", store.Delivery{}, t0, 2 * time.Second, store.ResultRetry, t0.Add(2 * time.Second)},
		{"Retry-After under the delay", store.Delivery{}, t0, 10 * time.Millisecond, store.ResultRetry, t0.Add(time.Second)},
		{"Retry-After beyond the schedule's largest delay", store.Delivery{}, t0, 5 * time.Second, store.ResultRetry, t0.Add(5 * time.Second)},
		{"Retry-After past the window's end", store.Delivery{}, t0, time.Hour, store.ResultRetry, t0.Add(6 * time.Second)},
		{"Retry-After past the window", store.Delivery{RoundAttempts: 1, FirstAttemptAt: t0.UnixNano()}, t0.Add(4 * time.Second), time.Hour, store.ResultRetry, t0.Add(6 * time.Second)},
		// A re-queued delivery starts a new round and a new window.
		{"new round after requeue", store.Delivery{AttemptCount: 4, RoundAttempts: 0}, t0.Add(time.Hour), 0, store.ResultRetry, t0.Add(time.Hour + time.Second)},
	} {
		result, next := p.next(&tc.d, tc.at, tc.retryAfter)
		if result != tc.result || !next.Equal(tc.next) {
			t.Errorf("%s: next = %s at %v, want %s at %v", tc.name, result, next, tc.result, tc.next)
		}
	}
}

func TestRetryPolicyDefaultScheduleJitter(t *testing.T) {
	t.Parallel()
	p := newRetryPolicy(DefaultSchedule, DefaultJitter)
	if p.jitter != 0.2 || p.window != 24*time.Hour {
		t.Fatalf("default policy = %+v, want ±20%% jitter over a 24h window", p)
	}
	// Every retry but the last lands within ±20% of its scheduled delay,
	// and the jitter goes both ways.
	for n, base := range DefaultSchedule[:len(DefaultSchedule)-1] {
		d := store.Delivery{RoundAttempts: n, FirstAttemptAt: t0.UnixNano()}
		at := t0.Add(time.Minute) // early enough in the window not to be clamped
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
		var below, above bool
		for range 500 {
			result, next := p.next(&d, at, 0)
			delay := next.Sub(at)
			if result != store.ResultRetry || delay < lo || delay > hi {
				t.Fatalf("retry %d: %s after %v, want %v ± 20%%", n+1, result, delay, base)
			}
			below = below || delay < base
			above = above || delay > base
		}
		if !below || !above {
			t.Errorf("retry %d: 500 draws all on one side of %v: no jitter", n+1, base)
		}
	}
	// A Retry-After beyond the delay is honoured exactly, not jittered; a
	// shorter one leaves the schedule's jittered delay.
	if _, next := p.next(&store.Delivery{}, t0, time.Hour); next != t0.Add(time.Hour) {
		t.Errorf("Retry-After 1h: next at +%v", next.Sub(t0))
	}
	if _, next := p.next(&store.Delivery{}, t0, time.Second); next.Before(t0.Add(4*time.Second)) || next.After(t0.Add(6*time.Second)) {
		t.Errorf("Retry-After 1s: next at +%v, want the schedule's 5s ± 20%%", next.Sub(t0))
	}
}

// TestRetryPolicyDefaultWindow drives deliveries that always fail through
// the default schedule, each attempt made exactly when due: the last attempt
// comes 24h after the first, and then the delivery fails.
func TestRetryPolicyDefaultWindow(t *testing.T) {
	t.Parallel()
	p := newRetryPolicy(DefaultSchedule, DefaultJitter)
	for run := range 200 {
		var d store.Delivery
		at := t0
		attempts := 0
		for {
			attempts++
			if d.RoundAttempts == 0 {
				d.FirstAttemptAt = at.UnixNano()
			}
			result, next := p.next(&d, at, 0)
			d.RoundAttempts++
			if result == store.ResultFailed {
				break
			}
			if !next.After(at) {
				t.Fatalf("run %d: attempt %d: next attempt %v not after %v", run, attempts, next, at)
			}
			at = next
		}
		if attempts != len(DefaultSchedule)+1 {
			t.Fatalf("run %d: %d attempts, want %d", run, attempts, len(DefaultSchedule)+1)
		}
		if last := at.Sub(t0); last != 24*time.Hour {
			t.Fatalf("run %d: last attempt %v after the first, want exactly 24h (the window's close)", run, last)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := t0.Add(123 * time.Millisecond) // HTTP dates have whole seconds
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"120", 120 * time.Second},
		{"1", time.Second},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{t0.Add(90 * time.Second).Format(http.TimeFormat), 90*time.Second - 123*time.Millisecond},
		{"Sun Mar  1 12:02:00 2026", 2*time.Minute - 123*time.Millisecond}, // asctime
		{t0.Add(-time.Minute).Format(http.TimeFormat), 0},                  // in the past
		{"Mon, 32 Feb 2026 00:00:00 GMT", 0},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set("Retry-After", tc.value)
		}
		if got := parseRetryAfter(h, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.value, got, tc.want)
		}
	}
	// Seconds too many for a Duration must still mean "a long time" (the
	// policy then clamps to the schedule's maximum), not overflow.
	for _, v := range []string{"9223372037", "99999999999999", "9223372036854775807"} {
		if got := parseRetryAfter(http.Header{"Retry-After": {v}}, now); got < 24*time.Hour {
			t.Errorf("parseRetryAfter(%q) = %v, want a long delay", v, got)
		}
	}
}
