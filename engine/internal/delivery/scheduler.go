package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/heraldhq/herald/engine/internal/wheel"
	"github.com/heraldhq/herald/store"
)

// Resolution is the scheduler's resolution, its timing wheel's tick:
// deliveries fire within a tick of their time.
const Resolution = 10 * time.Millisecond

const (
	// windowSize is how many due deliveries of one destination are read
	// from the store at a time: the most the leader holds of any backlog.
	windowSize = 64
	// headsPage is how many destinations one read transaction lists when
	// a term begins.
	headsPage = 4096
	// An open breaker probes its endpoint after probeFirst, then at
	// doubling intervals up to probeMax.
	// keptIdle bounds the healthy queues with nothing pending kept in
	// memory.
	keptIdle   = 10000
	probeFirst = 5 * time.Second
	probeMax   = 5 * time.Minute
)

// The schedule is kept per destination (an endpoint, or an override URI's
// origin). The store's due index orders each destination's pending
// deliveries by due time; the leader holds, per destination, only when to
// look at it next (in a timing wheel) and a window of at most windowSize
// deliveries read from the index, refilled as attempts start. Memory thus
// grows with the number of destinations that have pending work, not with
// the backlog, and a new leader lists one entry per destination before it
// starts delivering.
//
// Destinations with due deliveries take turns in a ring for the node-wide
// attempt slots (MaxInflight), one attempt per turn, each destination at
// most Concurrency at a time: a destination with a million due deliveries
// waits its turn like one with a single delivery. Destinations whose last
// attempt succeeded take turns in one ring; the others (failing, or not
// tried yet in this term) in a second ring, and the two rings alternate,
// but the second holds at most half of the slots together. However many of them hang until the
// attempt timeout, a healthy destination waits for a slot no longer than
// one attempt.

// queue is one destination's part of the schedule.
type queue struct {
	key string
	// due holds deliveries read from the store, due and not yet started.
	due []store.Due
	// held names the deliveries in due, in attempts, or whose outcomes
	// are being committed: reads of the index leave them out.
	held map[string]bool
	// more means the store may hold due deliveries the window did not
	// take: read again once the window empties.
	more    bool
	wake    int64 // the wheel's tick at which it looks at the queue next; 0: not armed
	reading bool  // a read of the index is on its way
	// stale is set when the queue was to be read again, or got new work,
	// while a read was on its way: that read may have missed it.
	stale   bool
	ready   bool // in a ring, waiting for an attempt slot
	running int  // attempts in flight
	// healthy is set while the queue's last attempt (in this term)
	// succeeded; the others wait in the unproven ring.
	healthy bool

	// From the endpoint, as of the last read: its rate limit, and when
	// the next attempt may start under it.
	rate     int
	nextSlot int64
	breaker  breaker
	// learnt is set once the breaker's state has been read from the
	// endpoint; from then on this leader's outcomes (and the apply hook)
	// keep it, as the record may lag behind by the outcomes in flight.
	learnt bool
}

// breaker is a queue's circuit breaker, as the leader runs it. Whether it
// is open is replicated (EndpointHealth.BreakerOpenedAt); the probe count
// is not, so a new leader probes at once and then from probeFirst again.
type breaker struct {
	openedAt int64 // 0: closed
	probes   int   // probes made since it opened
	probing  bool  // a probe is in flight
	probeAt  int64 // when the next probe may start
}

// probeDelay is the wait before the probe after n failed ones.
func probeDelay(n int) time.Duration {
	if n >= 10 {
		return probeMax
	}
	return min(probeFirst<<n, probeMax)
}

// scheduler holds the leader's schedule and runs attempts from it.
// Followers keep it inactive and empty.
type scheduler struct {
	dl   *Deliverer
	wake chan struct{} // buffered 1: nudges run

	mu       sync.Mutex // guards everything below
	active   bool
	ctx      context.Context // the term's; attempts run under it
	cancel   context.CancelFunc
	wheel    *wheel.Wheel // queue keys by wake time
	queues   map[string]*queue
	ring     ring     // queues ready for an attempt slot
	unproven ring     // other queues ready for an attempt slot
	toRead   []*queue // queues whose window run reads next
	running  int      // attempts in flight on the node
	// runningUnproven counts the attempts in flight to queues that were
	// not healthy when they started.
	runningUnproven int
	unprovenTurn    bool // the unproven ring goes first on the next turn

	workers sync.WaitGroup // attempts, and the commits of their outcomes
}

func newScheduler(dl *Deliverer) *scheduler {
	return &scheduler{dl: dl, wake: make(chan struct{}, 1)}
}

func (s *scheduler) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// begin starts a leadership term: an empty schedule, then one entry per
// destination with pending deliveries, a page per read transaction.
// Deliveries committed meanwhile arrive through observe; a queue learnt
// twice is armed at the earlier time.
func (s *scheduler) begin(ctx context.Context) error {
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		return ctx.Err() // the term ended before it began
	}
	s.active = true
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.wheel = wheel.New(s.dl.cfg.Now(), Resolution)
	s.queues = map[string]*queue{}
	s.ring, s.unproven = ring{}, ring{}
	s.toRead = nil
	s.mu.Unlock()
	after := ""
	for ctx.Err() == nil {
		heads, err := s.dl.cfg.Store.QueueHeads(after, headsPage)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if !s.active {
			s.mu.Unlock()
			return nil
		}
		for _, h := range heads {
			s.arm(s.queue(h.Queue), h.At)
		}
		s.mu.Unlock()
		s.nudge()
		if len(heads) < headsPage {
			return nil
		}
		after = heads[len(heads)-1].Queue
	}
	return ctx.Err()
}

// end ends a term: nothing more starts, attempts in flight are cancelled,
// and end returns once their workers are gone.
func (s *scheduler) end() {
	s.mu.Lock()
	s.stopLocked()
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.workers.Wait()
}

// drain stops starting attempts and waits, until ctx ends, for those in
// flight to finish and their outcomes to be committed.
func (s *scheduler) drain(ctx context.Context) {
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (s *scheduler) stopLocked() {
	s.active = false
	s.wheel, s.queues, s.ring, s.unproven, s.toRead = nil, nil, ring{}, ring{}, nil
}

// observe takes deliveries committed with a new due time, from the store's
// apply hook. It never blocks the apply path.
func (s *scheduler) observe(dues []store.Due) {
	s.mu.Lock()
	if s.active {
		for _, d := range dues {
			q := s.queue(d.Queue)
			if q.reading || q.running > 0 || len(q.due) > 0 {
				q.more = true // the read under way may have missed it
			}
			q.stale = q.stale || q.reading
			s.arm(q, d.At)
		}
	}
	s.mu.Unlock()
	s.nudge()
}

func (s *scheduler) changed(changes []store.EndpointChange) {
	s.mu.Lock()
	if s.active {
		for _, c := range changes {
			if q := s.queues[c.EndpointID]; q != nil && c.Kind == store.ChangeBreakerClosed && q.breaker.openedAt != 0 {
				q.breaker = breaker{}
				q.more = true
				s.makeReady(q)
			}
		}
	}
	s.mu.Unlock()
	s.nudge()
}

// queue returns the destination's queue, made if need be.
func (s *scheduler) queue(key string) *queue {
	q := s.queues[key]
	if q == nil {
		q = &queue{key: key, held: map[string]bool{}}
		s.queues[key] = q
	}
	return q
}

// arm has the wheel look at q at the given time, unless it will sooner.
func (s *scheduler) arm(q *queue, at int64) {
	at = tickOf(at)
	if q.wake != 0 && q.wake <= at {
		return
	}
	q.wake = at
	s.wheel.Add(q.key, time.Unix(0, at))
}

// tickOf rounds a time up to the wheel's tick, as its timers fire.
func tickOf(at int64) int64 {
	if r := at % int64(Resolution); r > 0 {
		at += int64(Resolution) - r
	}
	return max(at, 1)
}

// fire is the wheel's call for q at its wake time.
func (s *scheduler) fire(q *queue, now int64) {
	q.wake = 0
	switch {
	case q.breaker.openedAt != 0 && now < q.breaker.probeAt:
		s.arm(q, q.breaker.probeAt)
	case len(q.due) > 0:
		s.makeReady(q) // a rate-limit slot came
	default:
		s.read(q)
	}
}

func (s *scheduler) read(q *queue) {
	if q.reading {
		q.stale = true // read again once this read is done
		return
	}
	q.reading = true
	s.toRead = append(s.toRead, q)
}

func (s *scheduler) makeReady(q *queue) {
	if q.ready {
		return
	}
	q.ready = true
	if q.healthy {
		s.ring.push(q)
	} else {
		s.unproven.push(q)
	}
}

// next returns the next queue to take a turn, from the two rings in turn:
// the other ring's queues may take a turn only while they hold under half
// of the slots, so healthy queues always have the other half, and a busy
// healthy queue does not keep an untried one waiting either.
func (s *scheduler) next() *queue {
	unprovenOK := s.runningUnproven < max(s.dl.cfg.MaxInflight/2, 1)
	s.unprovenTurn = !s.unprovenTurn
	if s.unprovenTurn && unprovenOK {
		if q := s.unproven.pop(); q != nil {
			return q
		}
	}
	if q := s.ring.pop(); q != nil {
		return q
	}
	if unprovenOK {
		return s.unproven.pop()
	}
	return nil
}

// run fires due queues, reads their windows and starts attempts until stop
// is closed, sleeping until the wheel's next event or a nudge.
func (s *scheduler) run(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Duration(-1)
		s.mu.Lock()
		var reads []*queue
		if s.active {
			now := s.dl.cfg.Now()
			s.wheel.Advance(now, func(t wheel.Timer) {
				if q := s.queues[t.ID]; q != nil && q.wake == t.Due.UnixNano() {
					s.fire(q, now.UnixNano())
				}
			})
			s.dispatch(now.UnixNano())
			reads, s.toRead = s.toRead, nil
			if next, ok := s.wheel.Next(); ok {
				wait = max(next.Sub(now), 0)
			}
		}
		s.mu.Unlock()
		if len(reads) > 0 {
			for _, q := range reads {
				s.refill(q)
			}
			continue // start what was read
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-s.wake:
		case <-stop:
			return
		}
	}
}

// refill reads q's window from the store: what is due now, less what the
// queue holds already.
func (s *scheduler) refill(q *queue) {
	s.mu.Lock()
	if !s.active || s.queues[q.key] != q {
		s.mu.Unlock()
		return
	}
	held := make(map[string]bool, len(q.held))
	for id := range q.held {
		held[id] = true
	}
	limit := windowSize
	if q.breaker.openedAt != 0 {
		limit = 1 // the probe
	}
	s.mu.Unlock()

	now := s.dl.cfg.Now().UnixNano()
	w, err := s.dl.cfg.Store.QueueDue(q.key, now, limit, func(id []byte) bool { return held[string(id)] })

	s.mu.Lock()
	defer s.mu.Unlock()
	q.reading = false
	if !s.active || s.queues[q.key] != q {
		return
	}
	// Work came, a delivery was let go or a timer fired while this read
	// was on its way: it may have missed a delivery, so read again.
	stale := q.stale
	q.stale = false
	if err != nil {
		s.dl.cfg.Logger.Error("read the due index", "queue", q.key, "error", err)
		s.arm(q, now+int64(time.Second))
		return
	}
	q.rate = 0
	if ep := w.Endpoint; ep != nil {
		q.rate = ep.RateLimitPerS
		if ep.Health.BreakerOpenedAt != 0 && !q.learnt {
			// Opened under another leader: probe now, then as usual.
			q.breaker = breaker{openedAt: ep.Health.BreakerOpenedAt}
		}
		q.learnt = true
	}
	for _, d := range w.Due {
		if !q.held[d.DeliveryID] {
			q.held[d.DeliveryID] = true
			q.due = append(q.due, d)
		}
	}
	q.more = len(w.Due) == limit
	switch {
	case len(q.due) > 0:
		s.makeReady(q)
	case w.Next != 0:
		s.arm(q, w.Next)
	case q.rate > 0 && q.nextSlot > now:
		// Nothing pending, but the rate limit holds for what comes next.
		s.arm(q, q.nextSlot)
	case stale: // kept, and read again below
	case len(q.held) == 0 && q.wake == 0 && (!q.healthy || len(s.queues) > keptIdle):
		// Nothing pending: the next commit makes it again. Healthy queues
		// are kept (up to a bound) to remember that they are.
		delete(s.queues, q.key)
	}
	if stale {
		s.read(q)
	}
}

// dispatch starts attempts while node-wide slots are free, one per queue
// per turn of the ring.
func (s *scheduler) dispatch(now int64) {
	for s.running < s.dl.cfg.MaxInflight {
		q := s.next()
		if q == nil {
			return
		}
		q.ready = false
		limit := s.dl.cfg.Concurrency
		if q.breaker.openedAt != 0 {
			limit = 1 // the probe alone
		}
		switch {
		case len(q.due) == 0:
			if q.more && q.running < limit {
				s.read(q)
			}
			continue
		case q.running >= limit:
			continue // a finishing attempt makes it ready again
		case q.rate > 0 && q.nextSlot > now:
			s.arm(q, q.nextSlot)
			continue
		}
		if q.breaker.openedAt != 0 {
			q.breaker.probing = true
		}
		d := q.due[0]
		q.due[0] = store.Due{}
		q.due = q.due[1:]
		q.running++
		s.running++
		if !q.healthy {
			s.runningUnproven++
		}
		if q.rate > 0 {
			q.nextSlot = max(q.nextSlot, now) + int64(time.Second)/int64(q.rate)
		}
		s.workers.Add(1)
		go s.work(s.ctx, q, d, !q.healthy)
		if len(q.due) > 0 || q.more {
			s.makeReady(q)
		}
	}
}

// work makes one attempt, then commits its outcome. The attempt slots are
// released before the commit: a Raft round per attempt would otherwise cap
// each destination at Concurrency attempts per commit latency. The
// delivery stays held until its outcome is applied, so it is not read and
// sent again meanwhile.
func (s *scheduler) work(ctx context.Context, q *queue, d store.Due, unproven bool) {
	defer s.workers.Done()
	out := s.dl.attempt(ctx, d)
	if out != nil && out.Result == store.ResultGone {
		// A 410 disables the endpoint: commit that before the queue's
		// next attempt, so nothing more is sent to it.
		s.dl.record(ctx, out)
	}
	s.mu.Lock()
	s.running--
	q.running--
	if unproven {
		s.runningUnproven--
	}
	if s.active && s.queues[q.key] == q {
		s.settle(q, out)
	}
	s.mu.Unlock()
	s.nudge()
	if out != nil && out.Result != store.ResultGone {
		s.dl.record(ctx, out)
	}
	s.mu.Lock()
	delete(q.held, d.DeliveryID)
	if s.active && s.queues[q.key] == q && len(q.due) == 0 && q.wake == 0 {
		// Reads skipped the delivery while it was held: if it is due again
		// (or the queue holds others), the next read finds it.
		s.read(q)
	}
	s.mu.Unlock()
	s.nudge()
}

// settle updates q after an attempt: its breaker, and its turn in the ring.
func (s *scheduler) settle(q *queue, out *store.Outcome) {
	now := s.dl.cfg.Now().UnixNano()
	b := &q.breaker
	wasProbe := b.probing
	b.probing = false
	if out != nil && out.Result != store.ResultCancelled {
		q.healthy = out.Result == store.ResultSucceeded
	}
	switch {
	case out == nil:
		if b.openedAt != 0 {
			s.arm(q, max(b.probeAt, now))
			return
		}
	case out.Result == store.ResultSucceeded:
		if b.openedAt != 0 {
			*b = breaker{} // closed: the backlog is read again
			q.more = true
		}
	case out.Result == store.ResultGone, out.Disable:
		s.dropWindow(q)
	case out.Result == store.ResultCancelled:
	case out.OpenBreaker || b.openedAt != 0:
		if b.openedAt == 0 {
			*b = breaker{openedAt: now}
		} else if wasProbe {
			b.probes++
		}
		b.probeAt = now + int64(probeDelay(b.probes))
		s.dropWindow(q)
		s.arm(q, b.probeAt)
		return
	}
	if len(q.due) > 0 || q.more {
		s.makeReady(q)
	}
}

// dropWindow lets go of the deliveries q read but did not start; they stay
// due in the store.
func (s *scheduler) dropWindow(q *queue) {
	for _, d := range q.due {
		delete(q.held, d.DeliveryID)
	}
	q.due = nil
	q.more = true
}

// stats reports the destinations with pending work known to the schedule,
// the deliveries held in their windows, and the attempts in flight.
func (s *scheduler) stats() (queues, windowed, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		windowed += len(q.due)
	}
	return len(s.queues), windowed, s.running
}

// ring is a FIFO of queues.
type ring struct {
	items []*queue
	head  int
}

func (r *ring) push(q *queue) { r.items = append(r.items, q) }

func (r *ring) pop() *queue {
	if r.head == len(r.items) {
		return nil
	}
	q := r.items[r.head]
	r.items[r.head] = nil
	r.head++
	if r.head == len(r.items) || (r.head > 1024 && r.head > len(r.items)/2) {
		r.items = append(r.items[:0], r.items[r.head:]...)
		r.head = 0
	}
	return q
}
