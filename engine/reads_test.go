package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestReadsNeverStaleAcrossFailover cuts the leader off right after it
// acknowledged a message, before the followers have learned that the
// message is committed, and reads the message on both followers without
// pause while they elect a new leader. A new leader learns of its election
// before it has applied the entries of earlier terms; here its first entry
// (the one whose commit applies them) is held back for a while, so a read
// served from its store at once would answer not found for a message that
// was acknowledged. Reads must wait for the new term's barrier, or answer
// ErrNotLeader; never ErrNotFound.
func TestReadsNeverStaleAcrossFailover(t *testing.T) {
	var hold atomic.Bool
	c := newWrappedTestCluster(t, 3, nil, func(tr raft.Transport) raft.Transport {
		return &slowAppends{Transport: tr, hold: &hold, delay: 300 * time.Millisecond}
	})
	var reads, notFound atomic.Int64
	for round := range 3 {
		lead := c.leader()
		msg := mustEnqueue(t, c.engines[lead], MessageInput{Type: "job.done"})
		hold.Store(true)
		c.partition(lead)
		var others []int
		for i := range c.engines {
			if i != lead {
				others = append(others, i)
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, i := range others {
			e := c.engines[i]
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
						_, err := e.Message(ctx, "", msg.ID)
						cancel()
						reads.Add(1)
						if errors.Is(err, ErrNotFound) {
							notFound.Add(1)
						}
					}
				}()
			}
		}
		next := c.leader(others...)
		for _, i := range others {
			if _, err := c.engines[i].Message(context.Background(), "", msg.ID); err != nil {
				t.Errorf("round %d: read on n%d after the election: %v", round, i+1, err)
			}
		}
		close(stop)
		wg.Wait()
		hold.Store(false)
		t.Logf("round %d: n%d cut off, n%d leads; %d reads so far", round, lead+1, next+1, reads.Load())
		c.heal()
		c.converge()
	}
	if n := notFound.Load(); n > 0 {
		t.Fatalf("%d of %d reads answered not found for an acknowledged message", n, reads.Load())
	}
}

// slowAppends delays, while hold is set, every AppendEntries RPC that
// carries entries (heartbeats pass at once, so leadership is kept).
type slowAppends struct {
	raft.Transport
	hold  *atomic.Bool
	delay time.Duration
}

func (s *slowAppends) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if s.hold.Load() && len(args.Entries) > 0 {
		time.Sleep(s.delay) // the delay under test, not a wait for a condition
	}
	return s.Transport.AppendEntries(id, target, args, resp)
}

// AppendEntriesPipeline is refused, so that every append goes through
// AppendEntries.
func (s *slowAppends) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
