package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestBatchLoad sends the load in batches, the last one short: every
// message is acknowledged and delivered once.
func TestBatchLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const messages = 1030
	res, err := Run(ctx, Config{Scenario: "steady", Binary: heraldBin, Messages: messages, Batch: 100, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 0 || res.Dups != 0 || res.BadSigs != 0 || res.Requests != messages || res.Batch != 100 {
		t.Errorf("lost %d, duplicates %d, bad signatures %d, %d requests for %d messages, batch %d",
			res.Lost, res.Dups, res.BadSigs, res.Requests, messages, res.Batch)
	}
	t.Logf("batches of 100: accepted %.0f/s, delivered %.0f/s (%.2f of baseline)", res.AcceptedPerS, res.DeliveredPerS, res.DeliveredRatio)
}

func TestBatchIsBounded(t *testing.T) {
	for _, c := range []Config{{Batch: -1}, {Batch: maxBatch + 1}, {Batch: 10, Rate: 100}} {
		c.Scenario, c.Binary = "steady", heraldBin
		if err := c.withDefaults().validate(); err == nil || !strings.Contains(err.Error(), "batch") {
			t.Errorf("batch %d, rate %d: got %v, want an error", c.Batch, c.Rate, err)
		}
	}
}
