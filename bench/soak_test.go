//go:build soak

package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestSoak keeps a three-node cluster under load for HERALD_SOAK_DURATION
// (default 5m) while SIGKILLing a random node — the leader half the time —
// every few seconds and restarting it, then checks that every acknowledged
// message was delivered. Partitions are covered in process by the engine's
// cluster tests. Run it with:
//
//	go test -tags soak -run Soak -timeout 30m ./bench/
func TestSoak(t *testing.T) {
	duration := 5 * time.Minute
	if v := os.Getenv("HERALD_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("HERALD_SOAK_DURATION: %v", err)
		}
		duration = d
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed))
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	c, rc, client := startTestCluster(ctx, t, 3)

	stop := time.Now().Add(duration)
	chaos := make(chan error, 1)
	go func() {
		kills := 0
		for time.Now().Before(stop) {
			time.Sleep(time.Duration(2+r.IntN(6)) * time.Second) // chaos pacing, not a wait for a condition
			victim := r.IntN(3)
			if r.IntN(2) == 0 {
				if lead, err := c.Leader(ctx); err == nil {
					victim = lead
				}
			}
			if err := c.Kill(victim); err != nil {
				chaos <- err
				return
			}
			kills++
			time.Sleep(time.Duration(500+r.IntN(3000)) * time.Millisecond)
			if err := c.Start(victim); err != nil {
				chaos <- err
				return
			}
			if err := c.WaitReady(ctx, victim); err != nil {
				chaos <- err
				return
			}
		}
		t.Logf("%d SIGKILLs", kills)
		chaos <- nil
	}()
	// Rounds of load, each checked, until the chaos is over.
	for round := 1; ; round++ {
		select {
		case err := <-chaos:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d rounds of load", round-1)
			return
		default:
		}
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			runLoad(t, ctx, client, rc, 500, 8, nil, nil)
		})
	}
}
