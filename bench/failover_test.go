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
	rc, err := NewReceiver(ReceiverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c, err := StartCluster(ctx, ClusterConfig{Binary: heraldBin, Nodes: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	logOnFailure(t, c)
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	client := NewClient(urls, "", 16)
	if _, _, err := client.CreateEndpoint(ctx, rc.URL()); err != nil {
		t.Fatal(err)
	}
	var killed time.Time
	onAck, wait := chaosAt([]int64{300}, func(int) error {
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
	l := runLoad(t, ctx, client, rc, 900, 12, onAck, wait)
	first := time.Duration(-1)
	for id := range l.sent {
		if at, _ := rc.Delivered(id); at.After(killed) && (first < 0 || at.Sub(killed) < first) {
			first = at.Sub(killed)
		}
	}
	t.Logf("first delivery %v after the leader's death", first.Round(time.Millisecond))
}
