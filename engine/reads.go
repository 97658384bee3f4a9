package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/heraldhq/herald/cluster"
)

// readGate makes reads linearizable: a node answers a read from its own
// store only once that store holds every write acknowledged before the
// read began, and answers ErrNotLeader (503) when it cannot know that,
// never a stale answer.
//
//   - On the leader, a read waits until the barrier of the leader's term is
//     applied (hashicorp/raft reports leadership before the entries of
//     earlier terms are applied), then confirms with a quorum that this
//     node still leads (a leader paused and deposed meanwhile learns it
//     here) by committing a barrier entry: a quorum must accept an entry
//     appended after the read began. Raft's VerifyLeader is not enough: it
//     counts any successful heartbeat answer that arrives while it waits,
//     and a leader that was paused (a GC pause, a frozen VM) finds the
//     answers to heartbeats sent before its pause waiting in its sockets,
//     from followers that have since elected another leader. Concurrent
//     reads share one confirmation round.
//   - A follower asks the leader for a read index (the leader's applied
//     index, given only after those same two checks) and waits to apply
//     up to it, unless it is too far behind (see caughtUp): then it
//     answers ErrCatchingUp at once, before asking and after, rather than
//     hold the read until it has caught up.
type readGate struct {
	node    *cluster.Node
	applied *appliedIndex
	peers   *peers
	verify  *verifier

	mu      sync.Mutex    // guards termGen, ready
	termGen uint64        // the leadership generation whose barrier is applied
	ready   chan struct{} // closed and replaced when termGen changes
}

func newReadGate(node *cluster.Node, applied *appliedIndex, p *peers) *readGate {
	return &readGate{node: node, applied: applied, peers: p, ready: make(chan struct{}),
		verify: &verifier{confirm: node.Barrier}}
}

// termBegun records that the barrier of leadership generation gen has been
// applied to the store.
func (g *readGate) termBegun(gen uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.termGen = gen
	close(g.ready)
	g.ready = make(chan struct{})
}

// sync returns once this node's store may answer a read.
func (g *readGate) sync(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := g.leaderSync(ctx)
		if !errors.Is(err, ErrNotLeader) {
			return err
		}
		if err := caughtUp(g.node); err != nil {
			return err
		}
		index, err := g.peers.readIndex(ctx)
		if errors.Is(err, errLeaderHere) && attempt < 3 {
			continue
		}
		if err != nil {
			if errors.Is(err, errLeaderHere) {
				err = ErrNotLeader
			}
			return err
		}
		g.node.NoteLeaderIndex(index)
		if err := caughtUp(g.node); err != nil {
			return err
		}
		return g.applied.wait(ctx, index)
	}
}

// readIndex is what the leader hands a follower: an index covering every
// acknowledged write.
func (g *readGate) readIndex(ctx context.Context) (uint64, error) {
	if err := g.leaderSync(ctx); err != nil {
		return 0, err
	}
	// The leader answers a write only after applying it, so its applied
	// index covers every acknowledged write. Raft's commit index would not
	// do: it can point at a no-op entry that never reaches a store, and a
	// follower would wait for it in vain.
	return g.applied.get(), nil
}

// leaderSync returns nil once this node, as the leader, may answer a read
// from its store, and ErrNotLeader if it does not lead.
func (g *readGate) leaderSync(ctx context.Context) error {
	for {
		leader, gen, changed := g.node.Leadership()
		if !leader {
			return ErrNotLeader
		}
		g.mu.Lock()
		ready, next := g.termGen == gen, g.ready
		g.mu.Unlock()
		if ready {
			break
		}
		select {
		case <-next:
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.verify.leads(ctx)
}

// verifier confirms leadership with a quorum, one round for every caller
// that arrived before the round began: a round that began earlier proves
// nothing about a read that came after it.
type verifier struct {
	confirm func(context.Context) error

	mu      sync.Mutex // guards next, running
	next    *round     // the round new callers join
	running bool
}

type round struct {
	done chan struct{}
	err  error
}

// leads reports nil if this node was still the leader at some moment after
// the call began, ErrNotLeader if it could not confirm that.
func (v *verifier) leads(ctx context.Context) error {
	v.mu.Lock()
	if v.next == nil {
		v.next = &round{done: make(chan struct{})}
	}
	r := v.next
	if !v.running {
		v.running = true
		go v.run()
	}
	v.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *verifier) run() {
	for {
		v.mu.Lock()
		r := v.next
		v.next = nil
		if r == nil {
			v.running = false
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), readIndexTimeout)
		err := v.confirm(ctx)
		cancel()
		switch {
		case err == nil, errors.Is(err, cluster.ErrClosed):
		default:
			// Deposed, or no quorum answered: this node cannot vouch
			// for its store.
			err = ErrNotLeader
		}
		r.err = fromCluster(err)
		close(r.done)
	}
}
