package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// proposer is the one way a write enters the cluster: it executes a request
// here when this node leads, or forwards the typed request to the leader
// and waits until this node has applied the result.
type proposer struct {
	w        *writer
	peers    *peers
	applied  *appliedIndex
	isLeader func() bool
	stopping <-chan struct{}
}

// propose executes req on the leader, wherever that is.
func (p *proposer) propose(ctx context.Context, req *request) (reply, error) {
	select {
	case <-p.stopping:
		return reply{}, ErrClosed
	default:
	}
	for attempt := 0; ; attempt++ {
		if p.isLeader() {
			rep, err := p.w.execute(ctx, req)
			// ErrNotLeader means nothing was appended: leadership moved
			// between the check and the append, so forward instead.
			if errors.Is(err, ErrNotLeader) && attempt < 3 && ctx.Err() == nil {
				continue
			}
			return rep, err
		}
		rep, err := p.forward(ctx, req)
		if errors.Is(err, errLeaderHere) && attempt < 3 {
			continue
		}
		if errors.Is(err, errLeaderHere) {
			err = ErrNotLeader
		}
		return rep, err
	}
}

// forward sends req to the leader and, but for enqueues, waits until this
// node has applied the entry that carried it: a few answers come from this
// node's own state (tenant tokens, the JWKS), and they must see the write.
// An enqueue's reply holds all its caller gets, and every read of messages
// passes the read gate, which waits for this node to apply what was
// acknowledged before the read began; waiting here as well would add the
// time this node takes to learn of the commit (on a quiet cluster, until
// the leader's next append: up to Raft's CommitTimeout, 50–100 ms) to two
// thirds of the enqueues. A node too far behind the leader answers
// ErrCatchingUp at once instead of forwarding; one that learns from the
// leader's answer that it is that far behind answers with the committed
// result at once, rather than hold it until it has caught up (reads here
// answer ErrCatchingUp meanwhile, never a state without the write).
func (p *proposer) forward(ctx context.Context, req *request) (reply, error) {
	if err := caughtUp(p.peers.node); err != nil {
		return reply{}, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return reply{}, err
	}
	var rep reply
	if err := p.peers.callLeader(ctx, forwardTimeout, http.MethodPost, internalProposePath, body, &rep); err != nil {
		return reply{}, err
	}
	if err := fromWire(rep.Error); err != nil {
		return reply{}, err
	}
	p.peers.node.NoteLeaderIndex(rep.Index)
	if _, far := p.peers.node.CatchingUp(); far || req.Enqueue != nil || req.EnqueueBatch != nil {
		return rep, nil
	}
	if err := p.applied.wait(ctx, rep.Index); err != nil {
		return reply{}, err
	}
	return rep, nil
}
