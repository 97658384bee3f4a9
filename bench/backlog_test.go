package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestBacklogStaysPendingWhileTheLoadIsDelivered fills a backlog for an
// endpoint that refuses every attempt, then runs the steady load: every
// measured message reaches the receiver, none of the backlog does, and the
// backlog is still pending at the end.
func TestBacklogStaysPendingWhileTheLoadIsDelivered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const backlog, messages = 2000, 2000
	res, err := Run(ctx, Config{Scenario: "steady", Binary: heraldBin, Messages: messages, Backlog: backlog, Dir: t.TempDir(),
		ServeArgs: []string{"--breaker-period", "1s", "--retry-schedule", "200ms,400ms,800ms,10m"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Dups != 0 || res.BadSigs != 0 {
		t.Errorf("lost %d, duplicates %d, bad signatures %d; want none", res.Lost, res.Dups, res.BadSigs)
	}
	if res.Requests != messages {
		t.Errorf("the receiver got %d requests for %d messages: the backlog reached it, or deliveries were retried", res.Requests, messages)
	}
	if res.Backlog != backlog || res.PendingAtEnd != backlog {
		t.Errorf("backlog %d, pending at the end %d; want %d both", res.Backlog, res.PendingAtEnd, backlog)
	}
	if res.BacklogFillPerS <= 0 || res.BreakerOpenS <= 0 || res.FillMemory == nil || res.FillMemory.RSSMB <= 0 ||
		res.FillMemory.HeapMB <= 0 || res.EndMemory.AnonRSSMB <= 0 {
		t.Errorf("missing figures: %+v, after the fill %+v", res, res.FillMemory)
	}
	t.Logf("backlog of %d filled at %.0f/s, breaker open after %.1f s; delivered %.0f/s (%.2f of baseline)",
		backlog, res.BacklogFillPerS, res.BreakerOpenS, res.DeliveredPerS, res.DeliveredRatio)
}

func TestBacklogIsBounded(t *testing.T) {
	for _, n := range []int{-1, maxBacklog + 1} {
		err := Config{Scenario: "steady", Binary: heraldBin, Backlog: n}.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), "backlog must be between") {
			t.Errorf("backlog %d: got %v, want a bound error", n, err)
		}
	}
}
