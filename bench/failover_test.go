package bench

import (
	"context"
	"testing"
	"time"
)

// TestFailoverLosesNoAcknowledgedMessage runs three real herald serve
// processes under concurrent load written through every node, SIGKILLs the
// leader mid-load, restarts it, and checks that every acknowledged message
// is delivered. It reports duplicates and how long the cluster took to
// elect a new leader and resume deliveries.
func TestFailoverLosesNoAcknowledgedMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, rc, client := startTestCluster(ctx, t, 3)
	killLeaderUnderLoad(t, ctx, c, rc, client, 900, 12)
}

// killLeaderUnderLoad sends total messages through every node of c with
// workers concurrent clients, SIGKILLs the leader after a third of them
// were acknowledged, restarts it, and fails the test unless every
// acknowledged message reaches rc. It logs how long the election and the
// first delivery after the kill took.
func killLeaderUnderLoad(t *testing.T, ctx context.Context, c *Cluster, rc *Receiver, client *Client, total, workers int) {
	t.Helper()
	var killed time.Time
	onAck, wait := chaosAt([]int64{int64(total / 3)}, func(int) error {
		lead, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		killed = time.Now()
		if err := c.Kill(lead); err != nil {
			return err
		}
		next, err := c.Leader(ctx)
		if err != nil {
			return err
		}
		t.Logf("SIGKILL of leader %s; %s leads %v later", c.Nodes[lead].ID, c.Nodes[next].ID, time.Since(killed).Round(time.Millisecond))
		if err := c.Start(lead); err != nil {
			return err
		}
		return c.WaitReady(ctx, lead)
	})
	l := runLoad(t, ctx, client, rc, total, workers, onAck, wait)
	first := time.Duration(-1)
	for id := range l.sent {
		if at, _ := rc.Delivered(id); at.After(killed) && (first < 0 || at.Sub(killed) < first) {
			first = at.Sub(killed)
		}
	}
	t.Logf("first delivery %v after the leader's death", first.Round(time.Millisecond))
}
