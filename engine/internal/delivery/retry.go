package delivery

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhq/herald/store"
)

// DefaultSchedule spaces retries from seconds to hours; its delays add up
// to 24 hours, so the last attempt comes a day after the first.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	4 * time.Hour, 8 * time.Hour, 8*time.Hour + 7*time.Minute + 25*time.Second,
}

// DefaultJitter varies each delay of DefaultSchedule by up to ±20 %, so
// that deliveries that failed together do not all retry together.
const DefaultJitter = 0.2

// retryPolicy turns an attempt's outcome into the delivery's next step.
type retryPolicy struct {
	schedule []time.Duration
	jitter   float64 // fraction, e.g. 0.2 for ±20 %
	window   time.Duration
}

func newRetryPolicy(schedule []time.Duration, jitter float64) retryPolicy {
	p := retryPolicy{schedule: schedule, jitter: jitter}
	for _, d := range p.schedule {
		p.window += d
	}
	return p
}

// next decides the outcome of an attempt that did not succeed. d is the
// delivery before the attempt; at is when the attempt started; retryAfter
// is the receiver's Retry-After, or zero.
func (p retryPolicy) next(d *store.Delivery, at time.Time, retryAfter time.Duration) (result string, nextAt time.Time) {
	n := d.RoundAttempts // retries already used before this attempt
	if n >= len(p.schedule) {
		return store.ResultFailed, time.Time{}
	}
	delay := p.schedule[n]
	if p.jitter > 0 {
		delay = time.Duration(float64(delay) * (1 + p.jitter*(2*rand.Float64()-1)))
	}
	// A receiver may ask for more time, never for less: the next attempt
	// comes no earlier than it asked nor than the schedule's own delay,
	// and the window's end caps both.
	delay = max(delay, retryAfter)
	first := at
	if d.FirstAttemptAt != 0 {
		first = time.Unix(0, d.FirstAttemptAt)
	}
	nextAt = at.Add(delay)
	// The window closes a fixed time after the first attempt, and the last
	// retry is made then, however jitter moved the ones before it.
	deadline := first.Add(p.window)
	if !at.Before(deadline) {
		// Made when the window had closed (held by a breaker, or asked
		// to wait that long): that was the last attempt.
		return store.ResultFailed, time.Time{}
	}
	if nextAt.After(deadline) || n == len(p.schedule)-1 {
		nextAt = deadline
	}
	return store.ResultRetry, nextAt
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if s <= 0 {
			return 0
		}
		// Cap before converting: a huge value would overflow Duration.
		return time.Duration(min(s, math.MaxInt64/int64(time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
