package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/engine/internal/delivery"
	"github.com/heraldhq/herald/store"
)

// outcomeLinger is how long, on a quiet node, an attempt's outcome waits
// for the next enqueue to share its Raft entry (see
// cluster.Config.OutcomeLinger): a message then costs one Raft round, one
// fsync on each node, instead of two. The webhook is sent as before; its
// recorded status can show up to this much later.
const outcomeLinger = 30 * time.Millisecond

// Engine is a Herald node. Its methods are safe for concurrent use.
//
// An Engine is the API facade over parts with one job each: the proposer
// routes writes to the leader, the writer validates and commits them
// there, the read gate keeps reads current, the keyring signs, and the
// deliverer (engine/internal/delivery) makes the attempts while this node
// leads.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	node     *cluster.Node
	applied  *appliedIndex
	keys     *keyring
	w        *writer
	prop     *proposer
	reads    *readGate
	internal http.Handler
	deliver  *delivery.Deliverer
	subs     subscribers
	recent   *recentOutcomes
	notices  *notifier

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
	e := &Engine{cfg: cfg, log: cfg.Logger, stopping: make(chan struct{}), loopDone: make(chan struct{}), notices: newNotifier(cfg.Logger),
		recent: newRecentOutcomes(maxRecentEndpoints)}
	st, err := store.Open(cfg.statePath(), store.Options{OnApplied: e.onApplied, NoSync: true})
	if err != nil {
		return nil, err
	}
	index, err := st.AppliedIndex()
	if err != nil {
		st.Close()
		return nil, err
	}
	e.store = st
	e.applied = newAppliedIndex(index, e.stopping)
	if e.keys, err = newKeyring(st, cfg); err != nil {
		st.Close()
		return nil, err
	}
	schedule, jitter := cfg.RetrySchedule, 0.0
	if schedule == nil {
		schedule, jitter = DefaultRetrySchedule, delivery.DefaultJitter
	}
	transport := cfg.Transport
	if transport == nil {
		transport = delivery.NewTransport(cfg.AllowPrivateNetworks)
	}
	e.w = &writer{cfg: cfg, log: cfg.Logger, store: st, keys: e.keys}
	e.deliver, err = delivery.New(delivery.Config{
		Store:   st,
		Signers: e.keys,
		Commit: func(ctx context.Context, out store.Outcome) error {
			_, err := e.w.commit(ctx, store.Command{Outcome: &out})
			return err
		},
		Transport:       transport,
		Schedule:        schedule,
		Jitter:          jitter,
		AttemptTimeout:  cfg.AttemptTimeout,
		Concurrency:     cfg.EndpointConcurrency,
		MaxInflight:     cfg.MaxInflight,
		BreakerFailures: cfg.BreakerFailures,
		BreakerPeriod:   cfg.BreakerPeriod,
		DisableAfter:    cfg.DisableAfter,
		Now:             cfg.Now,
		Logger:          cfg.Logger,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	// The internal API is served on the peer port, which opens with the
	// node; it answers 503 until the parts it calls exist.
	var internal atomic.Pointer[http.Handler]
	initial := make([]cluster.Peer, len(cfg.Peers))
	for i, p := range cfg.Peers {
		initial[i] = cluster.Peer(p)
	}
	var raftTransport raft.Transport
	var peerDial func(context.Context, string) (net.Conn, error)
	if cfg.inmem != nil {
		raftTransport, peerDial = cfg.inmem.transport, cfg.inmem.dial
	}
	e.node, err = cluster.Open(cluster.Config{
		NodeID:            cfg.NodeID,
		RaftAddr:          cfg.RaftAddr,
		Dir:               cfg.DataDir,
		Store:             st,
		Peers:             initial,
		HeartbeatTimeout:  cfg.Raft.HeartbeatTimeout,
		ElectionTimeout:   cfg.Raft.ElectionTimeout,
		SnapshotThreshold: cfg.Raft.SnapshotThreshold,
		TrailingLogs:      cfg.Raft.TrailingLogs,
		SnapshotInterval:  cfg.Raft.SnapshotInterval,
		OutcomeLinger:     outcomeLinger,
		Transport:         raftTransport,
		TLS:               (*cluster.TLSFiles)(cfg.PeerTLS),
		PeerDial:          peerDial,
		PeerHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := internal.Load(); h != nil {
				(*h).ServeHTTP(w, r)
				return
			}
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}),
		Logger: cfg.Logger,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	e.w.node = e.node
	p := &peers{node: e.node, isLeader: e.IsLeader}
	e.reads = newReadGate(e.node, e.applied, p)
	e.w.reads = e.reads
	e.prop = &proposer{w: e.w, peers: p, applied: e.applied, isLeader: e.IsLeader, stopping: e.stopping}
	e.internal = (&internalAPI{w: e.w, reads: e.reads, isLeader: e.IsLeader, log: cfg.Logger}).handler()
	internal.Store(&e.internal)
	go e.deliver.Run(e.stopping)
	go e.notices.run(e)
	go e.leadershipLoop()
	return e, nil
}

// ReloadTLS re-reads the peer TLS certificate, key and CA files
// (Config.PeerTLS) for every new connection; on error the previous ones
// stay in use.
func (e *Engine) ReloadTLS() error { return e.node.ReloadTLS() }

// onApplied is the store's hook after every applied batch.
func (e *Engine) onApplied(a store.Applied) {
	if len(a.Scheduled) > 0 {
		e.deliver.Observe(a.Scheduled)
	}
	if len(a.Endpoints) > 0 {
		e.deliver.Changed(a.Endpoints)
	}
	if a.KeysChanged {
		e.keys.stale.Store(true)
	}
	if len(a.Attempts) > 0 {
		evs := attemptEvents(a.Attempts)
		if e.cfg.OnAttempt != nil && e.IsLeader() {
			for _, ev := range evs {
				e.cfg.OnAttempt(ev)
			}
		}
		e.subs.publish(evs)
		e.recent.observe(evs)
	}
	if e.delivering.Load() { // the leader tells the operator, once
		e.notices.observe(a)
	}
	e.applied.advance(a.Index)
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
			e.beginTerm(leader, g, changed)
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
func (e *Engine) beginTerm(leader bool, gen uint64, changed <-chan struct{}) {
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
		if err := e.lead(ctx, gen); err != nil && ctx.Err() == nil {
			e.log.Error("cannot start delivering as leader", "error", err)
		}
	}()
}

// lead runs one leadership term: wait until everything committed before it
// is applied (from then on reads may be served here), make sure the cluster
// has signing keys and knows this node's address, rebuild the schedule from
// the store, then sweep periodically.
func (e *Engine) lead(ctx context.Context, gen uint64) error {
	if err := e.node.Barrier(ctx); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	e.reads.termBegun(gen)
	if err := e.w.ensureSigningKey(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if e.cfg.APIAddr != "" {
		if _, err := e.w.publishNode(ctx, e.self()); err != nil {
			return fmt.Errorf("publish node address: %w", err)
		}
	}
	if err := e.deliver.Begin(ctx); err != nil {
		return fmt.Errorf("rebuild schedule: %w", err)
	}
	e.delivering.Store(true)
	e.log.Info("leading: delivering", "destinations", e.deliver.Stats().Destinations)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		e.w.sweep(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// self is this node's addresses, as the other nodes need them.
func (e *Engine) self() store.Node {
	return store.Node{ID: e.cfg.NodeID, APIAddr: e.cfg.APIAddr, RaftAddr: e.node.RaftAddr()}
}

// publishAddr makes sure, from a follower, that the cluster knows this
// node's API address, retrying until it succeeds or the term ends: the
// leader may not have published its own address yet.
func (e *Engine) publishAddr(ctx context.Context) {
	if e.cfg.APIAddr == "" {
		return
	}
	self := e.self()
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		if _, err := e.prop.propose(ctx, &request{PublishNode: &self}); err == nil {
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
	e.termMu.Lock()
	if e.termStop != nil {
		e.termStop()
		e.termStop = nil
	}
	e.termMu.Unlock()
	e.deliver.End()
	e.termGroup.Wait()
}

// Stop shuts the engine down gracefully: it stops scheduling, lets attempts
// in flight finish (until ctx ends), hands leadership to another node if it
// leads, and closes its files. Calls after the first return its result.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() {
		e.deliver.Drain(ctx)
		close(e.stopping)
		<-e.loopDone
		<-e.notices.done
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
