package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/store"
)

// Engine is a Herald node. Its methods are safe for concurrent use.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	store  *store.Store
	node   *cluster.Node
	sched  *scheduler
	disp   *dispatcher
	policy retryPolicy
	keys   *keyring

	peerClient *http.Client // for calls to the leader's internal API

	appliedMu    sync.Mutex // guards appliedIndex, appliedCh
	appliedIndex uint64
	appliedCh    chan struct{} // closed when appliedIndex advances

	stopping  chan struct{} // closed when Stop begins
	stopOnce  sync.Once
	stopErr   error
	loopDone  chan struct{}
	termMu    sync.Mutex // guards termStop
	termStop  context.CancelFunc
	termGroup sync.WaitGroup // leader-term goroutines (sweeper)
	// delivering is true while this node leads with its schedule built.
	delivering atomic.Bool
}

// Open starts an engine on cfg.DataDir, bootstrapping a new cluster from
// cfg.Peers when the directory is empty. It returns once the node is
// running; it may not lead yet (see Ready).
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, stopping: make(chan struct{}), loopDone: make(chan struct{}),
		appliedCh: make(chan struct{}), peerClient: &http.Client{Timeout: forwardTimeout}}
	e.policy = newRetryPolicy(cfg.RetrySchedule)
	e.sched = newScheduler(cfg.Now)
	st, err := store.Open(cfg.statePath(), store.Options{OnApplied: e.onApplied, NoSync: true})
	if err != nil {
		return nil, err
	}
	if e.appliedIndex, err = st.AppliedIndex(); err != nil {
		st.Close()
		return nil, err
	}
	e.store = st
	e.keys = newKeyring(st, cfg)
	transport := cfg.Transport
	if transport == nil {
		transport = newTransport(cfg.AllowPrivateNetworks)
	}
	client := &http.Client{
		Transport: transport,
		// Redirects are failures: following one would send the signed
		// body somewhere the endpoint's owner did not register.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	e.disp = newDispatcher(e, client)
	e.sched.dispatch = e.disp.submit
	e.node, err = cluster.Open(cluster.Config{
		NodeID:            cfg.NodeID,
		RaftAddr:          cfg.RaftAddr,
		Dir:               cfg.DataDir,
		Store:             st,
		Peers:             cfg.Peers,
		HeartbeatTimeout:  cfg.Raft.HeartbeatTimeout,
		ElectionTimeout:   cfg.Raft.ElectionTimeout,
		SnapshotThreshold: cfg.Raft.SnapshotThreshold,
		TrailingLogs:      cfg.Raft.TrailingLogs,
		SnapshotInterval:  cfg.Raft.SnapshotInterval,
		Transport:         cfg.Raft.Transport,
		Logger:            cfg.Logger,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	go e.sched.run(e.stopping)
	go e.leadershipLoop()
	return e, nil
}

// leadershipLoop follows leadership transitions: on every one it first
// stops scheduling and dispatching, then, if this node now leads, starts a
// new term of delivery.
func (e *Engine) leadershipLoop() {
	defer close(e.loopDone)
	gen := ^uint64(0) // no generation yet: the first one, a follower's, starts a term too
	for {
		leader, g, changed := e.node.Leadership()
		if g != gen {
			gen = g
			e.endTerm()
			e.beginTerm(leader, changed)
		}
		select {
		case <-changed:
		case <-e.stopping:
			e.endTerm()
			return
		}
	}
}

// beginTerm starts this node's work for a term: delivering if it leads,
// else making sure the leader knows its API address. The work runs until
// the leadership changes again (changed is closed) or the engine stops.
func (e *Engine) beginTerm(leader bool, changed <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	e.termMu.Lock()
	e.termStop = cancel
	e.termMu.Unlock()
	e.termGroup.Add(1)
	go func() {
		defer e.termGroup.Done()
		select {
		case <-changed:
			cancel()
		case <-ctx.Done():
		}
	}()
	e.termGroup.Add(1)
	go func() {
		defer e.termGroup.Done()
		if !leader {
			e.publishAddr(ctx)
			return
		}
		if err := e.lead(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("cannot start delivering as leader", "error", err)
		}
	}()
}

// lead runs one leadership term: wait until everything committed before it
// is applied, make sure the cluster has signing keys and knows this node's
// address, rebuild the schedule from the store, then sweep periodically.
func (e *Engine) lead(ctx context.Context) error {
	if err := e.node.Barrier(ctx); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	if err := e.keys.ensure(ctx, e.node); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if err := e.putSelf(ctx); err != nil {
		return fmt.Errorf("publish node address: %w", err)
	}
	e.disp.start(ctx)
	if err := e.sched.activate(ctx, e.store); err != nil {
		return fmt.Errorf("rebuild schedule: %w", err)
	}
	e.delivering.Store(true)
	e.log.Info("leading: delivering", "pending", e.sched.len())
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		e.sweep(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// putSelf records this node's API address in the replicated store, if it
// is not there already, so the other nodes can forward to it.
func (e *Engine) putSelf(ctx context.Context) error {
	if e.cfg.APIAddr == "" {
		return nil
	}
	self := store.Node{ID: e.cfg.NodeID, APIAddr: e.cfg.APIAddr, RaftAddr: e.node.RaftAddr()}
	nodes, err := e.store.Nodes()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n == self {
			return nil
		}
	}
	_, err = e.apply(ctx, store.Command{PutNode: &self})
	return err
}

// publishAddr retries putSelf on a follower until it succeeds or the term
// ends: the leader may not have published its own address yet.
func (e *Engine) publishAddr(ctx context.Context) {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		err := e.putSelf(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// endTerm stops delivering: scheduling first, then the attempts in flight.
func (e *Engine) endTerm() {
	e.delivering.Store(false)
	e.sched.deactivate()
	e.termMu.Lock()
	if e.termStop != nil {
		e.termStop()
		e.termStop = nil
	}
	e.termMu.Unlock()
	e.disp.stop()
	e.termGroup.Wait()
}

// sweep removes expired idempotency keys, finished messages past retention
// and retired keys, a bounded batch at a time.
func (e *Engine) sweep(ctx context.Context) {
	for ctx.Err() == nil {
		now := e.cfg.Now()
		res, err := e.node.Apply(ctx, store.Command{Sweep: &store.Sweep{
			At:                now.UnixNano(),
			RetainSince:       now.Add(-e.cfg.Retention).UnixNano(),
			KeysRetiredBefore: now.Add(-keyRetirementTTL).UnixNano(),
			Limit:             sweepLimit,
		}})
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("sweep failed", "error", err)
			}
			return
		}
		if res.Count < sweepLimit {
			return
		}
	}
}

// apply commits one command, on the leader or by forwarding it there, and
// maps its errors.
func (e *Engine) apply(ctx context.Context, cmd store.Command) (store.Result, error) {
	select {
	case <-e.stopping:
		return store.Result{}, ErrClosed
	default:
	}
	for attempt := 0; ; attempt++ {
		res, err := e.node.Apply(ctx, cmd)
		if errors.Is(err, cluster.ErrNotLeader) {
			res, err = e.forward(ctx, cmd)
			if errors.Is(err, ErrNotLeader) && e.IsLeader() && attempt < 3 {
				continue // this node was elected meanwhile
			}
		}
		if err != nil {
			return res, fromCluster(err)
		}
		return res, fromCluster(res.Err)
	}
}

// Stop shuts the engine down gracefully: it stops scheduling, lets attempts
// in flight finish (until ctx ends), hands leadership to another node if it
// leads, and closes its files. Calls after the first return its result.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() {
		e.sched.deactivate()
		e.disp.drain(ctx)
		close(e.stopping)
		<-e.loopDone
		err := e.node.Stop(ctx)
		if serr := e.store.Close(); err == nil {
			err = serr
		}
		e.stopErr = err
	})
	return e.stopErr
}

// Close stops the engine, waiting at most a few seconds for attempts in
// flight.
func (e *Engine) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.Stop(ctx)
}

// Ready reports whether a leader is known and this node has applied all it
// knows to be committed; a leader is ready once it delivers (its schedule
// is rebuilt and its signing key exists).
func (e *Engine) Ready() bool {
	select {
	case <-e.stopping:
		return false
	default:
	}
	if e.IsLeader() && !e.delivering.Load() {
		return false
	}
	return e.node.Ready()
}

// WaitReady waits until Ready, or until ctx ends. A fresh single node
// elects itself in well under a second.
func (e *Engine) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !e.Ready() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("engine: not ready: %w", ctx.Err())
		case <-e.stopping:
			return ErrClosed
		case <-t.C:
		}
	}
	return nil
}

// IsLeader reports whether this node currently leads.
func (e *Engine) IsLeader() bool {
	leader, _, _ := e.node.Leadership()
	return leader
}
