package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/store"
)

// proposal is one command waiting to be group-committed.
type proposal struct {
	cmd  store.Command
	done chan applied // buffered: the committer never blocks on it
}

type applied struct {
	res store.Result
	err error
}

// Apply commits cmd through Raft and returns its result once it has been
// applied to the store. Concurrent calls share log entries. ErrNotLeader
// means the command was not appended; ErrUncertain and a context error mean
// it may still commit, so retry with the same ids.
func (n *Node) Apply(ctx context.Context, cmd store.Command) (store.Result, error) {
	if n.raft.State() != raft.Leader {
		return store.Result{}, ErrNotLeader
	}
	p := proposal{cmd: cmd, done: make(chan applied, 1)}
	select {
	case n.proposals <- p:
	case <-ctx.Done():
		return store.Result{}, ctx.Err()
	case <-n.closed:
		return store.Result{}, ErrClosed
	}
	select {
	case a := <-p.done:
		return a.res, a.err
	case <-ctx.Done():
		return store.Result{}, ctx.Err()
	case <-n.closed:
		return store.Result{}, ErrClosed
	}
}

// quietRate is the rate of proposals, per second, below which a batch of
// attempt outcomes alone lingers (see Config.OutcomeLinger). Above it
// batches form on their own, and outcomes alone (a backlog draining) must
// not hold the delivery slots that wait for them.
const quietRate = 400

// rateWindow measures the rate of proposals over windows of a second or
// more.
type rateWindow struct {
	start time.Time
	count int     // proposals since start
	last  float64 // per second over the last complete window
}

func (w *rateWindow) add(n int, now time.Time) {
	if w.start.IsZero() {
		w.start = now
	}
	w.count += n
	if el := now.Sub(w.start); el >= time.Second {
		w.last = float64(w.count) / el.Seconds()
		w.start, w.count = now, 0
	}
}

// quiet reports whether both the last window and the current one are
// below quietRate.
func (w *rateWindow) quiet() bool { return w.last < quietRate && w.count < quietRate }

// outcomesOnly reports whether every command of batch records an attempt's
// outcome.
func outcomesOnly(batch []proposal) bool {
	for _, p := range batch {
		if p.cmd.Outcome == nil {
			return false
		}
	}
	return true
}

// linger waits, at most OutcomeLinger, for a command other than an outcome
// to join batch, taking every proposal that comes meanwhile. It returns
// false if the node closed, having failed the batch.
func (n *Node) linger(batch *[]proposal) bool {
	n.lingering.Add(1)
	defer n.lingering.Add(-1)
	timer := time.NewTimer(n.cfg.OutcomeLinger)
	defer timer.Stop()
	for len(*batch) < n.cfg.MaxBatch {
		select {
		case p := <-n.proposals:
			*batch = append(*batch, p)
			if p.cmd.Outcome == nil {
				return true
			}
		case <-timer.C:
			return true
		case <-n.closed:
			fail(*batch, ErrClosed)
			return false
		}
	}
	return true
}

// commitLoop takes whatever proposals are queued, up to MaxBatch, encodes
// them as one log entry and hands it to Raft. While entries are awaiting
// commit, new proposals queue up and form the next, larger batch: group
// commit without a timer adding latency. The one wait: on a quiet node
// with nothing awaiting commit, outcomes alone linger for company (see
// Config.OutcomeLinger).
func (n *Node) commitLoop() {
	defer n.wg.Done()
	waiting := make(chan pending, cap(n.inflight))
	go n.awaitCommits(waiting)
	defer close(waiting)
	var rate rateWindow
	for {
		var batch []proposal
		select {
		case p := <-n.proposals:
			batch = append(batch, p)
		case <-n.closed:
			return
		}
	drain:
		for len(batch) < n.cfg.MaxBatch {
			select {
			case p := <-n.proposals:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if n.cfg.OutcomeLinger > 0 && len(n.inflight) == 0 && outcomesOnly(batch) && rate.quiet() {
			if !n.linger(&batch) {
				return
			}
		}
		rate.add(len(batch), time.Now())
		select {
		case n.inflight <- struct{}{}:
		case <-n.closed:
			fail(batch, ErrClosed)
			return
		}
		cmds := make([]store.Command, len(batch))
		for i, p := range batch {
			cmds[i] = p.cmd
		}
		// EncodeBatch returns a fresh slice: Raft's log cache keeps it.
		data, err := store.EncodeBatch(cmds)
		if err != nil {
			<-n.inflight
			fail(batch, err)
			continue
		}
		select {
		case waiting <- pending{future: n.raft.Apply(data, 0), batch: batch}:
		case <-n.closed:
			fail(batch, ErrClosed)
			return
		}
	}
}

type pending struct {
	future raft.ApplyFuture
	batch  []proposal
}

// awaitCommits resolves entries in the order they were appended, which is
// the order Raft commits them.
func (n *Node) awaitCommits(waiting <-chan pending) {
	for p := range waiting {
		err := mapErr(p.future.Error())
		<-n.inflight
		if err != nil {
			fail(p.batch, err)
			continue
		}
		results, ok := p.future.Response().([]store.Result)
		if !ok || len(results) != len(p.batch) {
			if len(results) == 1 && results[0].Err != nil {
				err = results[0].Err // the entry could not be decoded
			} else {
				err = fmt.Errorf("cluster: entry returned %d results for %d commands", len(results), len(p.batch))
			}
			fail(p.batch, err)
			continue
		}
		for i, prop := range p.batch {
			prop.done <- applied{res: results[i]}
		}
	}
}

func fail(batch []proposal, err error) {
	for _, p := range batch {
		p.done <- applied{err: err}
	}
}
