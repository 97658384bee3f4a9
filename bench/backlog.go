package bench

import (
	"context"
	"fmt"
	"time"
)

// backlogType is the type of the backlog's messages. Only the backlog's
// endpoint subscribes to it, so they never reach the receivers whose
// deliveries the bench counts.
const backlogType = "backlog.fill"

// fillConcurrency is the number of concurrent clients that enqueue the
// backlog: enough for the leader to commit them in large groups.
const fillConcurrency = 192

// maxBacklog bounds Config.Backlog.
const maxBacklog = 10_000_000

// breakerWait bounds the wait, after the fill, for the backlog endpoint's
// breaker to open: by default it opens once the endpoint's attempts have
// all failed for a minute (serve --breaker-period).
const breakerWait = 5 * time.Minute

// Memory is the servers' memory at one moment.
type Memory struct {
	// RSSMB and AnonRSSMB are the largest over the running nodes: the
	// resident set (bbolt's memory-mapped pages included) and the
	// anonymous memory (heap and stacks).
	RSSMB     float64 `json:"rss_mb"`
	AnonRSSMB float64 `json:"anon_rss_mb"`
	// HeapMB is the leader's Go heap in use.
	HeapMB float64 `json:"leader_heap_mb"`
}

// fillBacklog registers an endpoint at a loopback port nothing listens on,
// subscribed only to backlogType, enqueues Backlog messages of that type as
// fast as the cluster takes them, and waits until they are pending and the
// endpoint's breaker is open: the load then meets a backlog that waits in
// the store for probes. It records the fill rate and the servers' memory.
func (r *run) fillBacklog(ctx context.Context, cl *Cluster, urls []string) error {
	dead, err := freeAddr() // closed again: every attempt is refused
	if err != nil {
		return err
	}
	client := NewClient(urls, "", fillConcurrency)
	defer client.HTTP.CloseIdleConnections() // the servers need not keep them for the run
	id, _, err := client.CreateEndpointFor(ctx, "http://"+dead, []string{backlogType})
	if err != nil {
		return fmt.Errorf("bench: create the backlog's endpoint: %w", err)
	}
	body := payload(backlogType, r.cfg.Size)
	start := time.Now()
	elapsed, err := inParallel(ctx, r.cfg.Progress, "backlog: enqueued", r.cfg.Backlog, fillConcurrency,
		func(ctx context.Context, w, i int) error {
			_, err := client.Send(ctx, w, fmt.Sprintf("backlog-%d", i), body)
			return err
		})
	if err != nil {
		return fmt.Errorf("bench: fill the backlog: %w", err)
	}
	r.res.Backlog, r.res.BacklogFillS = r.cfg.Backlog, elapsed.Seconds()
	r.res.BacklogFillPerS = float64(r.cfg.Backlog) / elapsed.Seconds()
	fmt.Fprintf(r.cfg.Progress, "backlog: enqueued %d messages in %.1f s (%.0f/s); waiting for its endpoint's breaker to open\n",
		r.cfg.Backlog, elapsed.Seconds(), r.res.BacklogFillPerS)
	if err := waitBacklog(ctx, cl, client, id, r.cfg.Backlog); err != nil {
		return err
	}
	r.res.BreakerOpenS = time.Since(start).Seconds()
	mem, err := memoryNow(ctx, cl, client)
	if err != nil {
		return err
	}
	r.res.FillMemory = &mem
	return nil
}

// waitBacklog polls until at least n deliveries are pending and endpoint
// id's breaker is open.
func waitBacklog(ctx context.Context, cl *Cluster, client *Client, id string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, breakerWait)
	defer cancel()
	for {
		lead, err := cl.Leader(ctx)
		if err != nil {
			return err
		}
		pending, _, err := leaderFigures(ctx, client, lead)
		if err != nil {
			return err
		}
		breaker, err := client.Breaker(ctx, id)
		if err != nil {
			return err
		}
		if pending >= n && breaker == "open" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: after %v, %d deliveries pending (want %d) and the backlog's breaker %s", breakerWait, pending, n, breaker)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// leaderFigures reads the pending deliveries and the Go heap in use (MB)
// from node lead's metrics.
func leaderFigures(ctx context.Context, client *Client, lead int) (pending int, heapMB float64, err error) {
	p, err := client.Metric(ctx, lead, "herald_deliveries_scheduled")
	if err != nil {
		return 0, 0, err
	}
	heap, err := client.Metric(ctx, lead, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return 0, 0, err
	}
	return int(p), heap / (1 << 20), nil
}

// memoryNow measures the servers' memory: every running node's from /proc,
// the leader's heap from its metrics.
func memoryNow(ctx context.Context, cl *Cluster, client *Client) (Memory, error) {
	var m Memory
	for i := range cl.Nodes {
		if !cl.Running(i) {
			continue
		}
		st, err := readProcStats(cl.Pid(i))
		if err != nil {
			return m, err
		}
		m.RSSMB, m.AnonRSSMB = max(m.RSSMB, st.RSSMB), max(m.AnonRSSMB, st.AnonRSSMB)
	}
	lead, err := cl.Leader(ctx)
	if err != nil {
		return m, err
	}
	_, m.HeapMB, err = leaderFigures(ctx, client, lead)
	return m, err
}
