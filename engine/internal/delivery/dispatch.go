package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/heraldhq/herald/store"
)

// dispatcher runs attempts for the leader. Each destination (an endpoint,
// or an override URL) has its own FIFO queue served by at most
// EndpointConcurrency workers, so a receiver that hangs ties up only its
// own workers.
type dispatcher struct {
	dl *Deliverer

	mu     sync.Mutex // guards ctx, queues, inflight, slots
	ctx    context.Context
	cancel context.CancelFunc
	queues map[string]*queue
	// inflight holds the dues queued or being attempted. It is keyed by
	// due time as well as delivery: a retry committed by an attempt is due
	// again while that attempt's worker is still finishing, and must not be
	// dropped as a duplicate of it.
	inflight map[store.Due]bool
	// slots holds, per rate-limited destination, the earliest time its
	// next attempt may start. It outlives the queues, which are dropped
	// whenever they drain: a steady trickle must be limited too.
	slots   map[string]time.Time
	workers sync.WaitGroup
	commits sync.WaitGroup // outcomes being committed
}

// queue is one destination's backlog.
type queue struct {
	key     string
	ids     []store.Due
	workers int
}

func newDispatcher(dl *Deliverer) *dispatcher {
	return &dispatcher{dl: dl}
}

// start begins a leadership term; attempts run under ctx.
func (d *dispatcher) start(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.queues = map[string]*queue{}
	d.inflight = map[store.Due]bool{}
	d.slots = map[string]time.Time{}
}

// stop cancels every attempt in flight and drops the queues. The schedule
// is rebuilt from the store when this node leads again.
func (d *dispatcher) stop() {
	d.mu.Lock()
	if d.cancel != nil {
		d.cancel()
	}
	d.ctx, d.cancel, d.queues, d.inflight, d.slots = nil, nil, nil, nil, nil
	d.mu.Unlock()
	d.wait()
}

// drain stops taking new work and waits, until ctx ends, for queued and
// in-flight attempts to finish.
func (d *dispatcher) drain(ctx context.Context) {
	d.mu.Lock()
	for _, q := range d.queues {
		for _, due := range q.ids {
			delete(d.inflight, due)
		}
		q.ids = nil
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// submit queues a due delivery. It never blocks.
func (d *dispatcher) submit(due store.Due) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil || d.inflight[due] {
		return
	}
	d.inflight[due] = true
	q := d.queues[due.Queue]
	if q == nil {
		q = &queue{key: due.Queue}
		d.queues[due.Queue] = q
	}
	q.ids = append(q.ids, due)
	if q.workers < d.dl.cfg.Concurrency {
		q.workers++
		d.workers.Add(1)
		go d.work(d.ctx, q)
	}
}

// work attempts deliveries from q until it is empty or the term ends.
func (d *dispatcher) work(ctx context.Context, q *queue) {
	defer d.workers.Done()
	for {
		due, ok := d.take(ctx, q)
		if !ok {
			return
		}
		res := d.dl.attempt(ctx, due, func(limit int) time.Duration { return d.reserve(q, limit) })
		if res == nil || res.Result == store.ResultGone {
			// A 410 disables the endpoint: commit that before taking the
			// endpoint's next delivery, so nothing more is sent to it.
			if res != nil {
				d.dl.record(ctx, res)
			}
			d.release(due)
			continue
		}
		// The worker moves on while the outcome commits: a Raft round per
		// attempt would otherwise cap each destination at
		// EndpointConcurrency attempts per commit latency. The due stays in
		// flight until its outcome is applied, so it is not sent twice.
		d.commits.Add(1)
		go func() {
			defer d.commits.Done()
			d.dl.record(ctx, res)
			d.release(due)
		}()
	}
}

// inFlight counts the dues queued or being attempted.
func (d *dispatcher) inFlight() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.inflight)
}

// release ends a due's time in flight.
func (d *dispatcher) release(due store.Due) {
	d.mu.Lock()
	if d.inflight != nil {
		delete(d.inflight, due)
	}
	d.mu.Unlock()
}

// wait waits for the workers and the commits of their outcomes.
func (d *dispatcher) wait() {
	d.workers.Wait()
	d.commits.Wait()
}

func (d *dispatcher) take(ctx context.Context, q *queue) (store.Due, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ctx.Err() != nil || len(q.ids) == 0 {
		q.workers--
		if q.workers == 0 && len(q.ids) == 0 && d.queues != nil && d.queues[q.key] == q {
			delete(d.queues, q.key)
		}
		return store.Due{}, false
	}
	due := q.ids[0]
	q.ids[0] = store.Due{}
	q.ids = q.ids[1:]
	return due, true
}

// reserve claims the queue's next send slot under a limit of perSecond
// attempts and returns how long to wait for it. Zero means no limit.
func (d *dispatcher) reserve(q *queue, perSecond int) time.Duration {
	if perSecond <= 0 {
		return 0
	}
	now := d.dl.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slots == nil {
		return 0 // the term ended; the attempt is being cancelled
	}
	slot := d.slots[q.key]
	if slot.Before(now) {
		slot = now
	}
	d.slots[q.key] = slot.Add(time.Second / time.Duration(perSecond))
	return slot.Sub(now)
}
