package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// deliveryDeadline bounds the wait for deliveries after the last message
// was acknowledged; what has not arrived by then counts as lost.
const deliveryDeadline = 2 * time.Minute

// load is the load generator: Concurrency clients each posting messages
// with their own idempotency keys, moving to another node on errors.
type load struct {
	cfg     Config
	client  *Client
	payload []byte

	acked atomic.Int64
	mu    sync.Mutex // guards the fields below
	start time.Time
	sent  map[string]time.Time // message id → when its POST began
	enq   []time.Duration
	last  time.Time // last acknowledgement
}

func newLoad(cfg Config, client *Client, payload []byte) *load {
	return &load{cfg: cfg, client: client, payload: payload, sent: make(map[string]time.Time, cfg.Messages),
		enq: make([]time.Duration, 0, cfg.Messages)}
}

// killer SIGKILLs the leader once `at` messages are acknowledged.
type killer struct {
	cl      *Cluster
	at      int64
	collect func(i int) // records a node's resource figures before it dies
	once    sync.Once
	killed  time.Time // when SIGKILL was sent
	exited  time.Time // when the old leader was seen gone: it delivers nothing after
	elected time.Duration
	err     error
	done    chan struct{}
}

func (k *killer) maybeKill(ctx context.Context, acked int64) {
	if k == nil {
		return
	}
	if acked < k.at {
		return
	}
	k.once.Do(func() {
		k.done = make(chan struct{})
		go func() {
			defer close(k.done)
			lead, err := k.cl.Leader(ctx)
			if err != nil {
				k.err = err
				return
			}
			k.collect(lead)
			k.killed = time.Now()
			if k.err = k.cl.Kill(lead); k.err != nil {
				return
			}
			k.exited = time.Now()
			if _, k.err = k.cl.Leader(ctx); k.err == nil {
				k.elected = time.Since(k.killed)
			}
		}()
	})
}

// run sends every message, calling onAck (if set) with the running count
// of acknowledgements, then waits for the receiver to get them all.
func (l *load) run(ctx context.Context, rc *Receiver, onAck func(acked int64)) error {
	var next atomic.Int64
	errs := make(chan error, l.cfg.Concurrency)
	before, _, _, _ := rc.Counts() // the baseline's and the warm-up's
	stopProgress := l.progress(rc, before)
	defer stopProgress()
	tokens := l.pace(ctx)
	l.start = time.Now()
	var wg sync.WaitGroup
	for w := range l.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPoster(l.client.URLs, l.client.Token)
			defer p.close()
			size := int64(max(l.cfg.Batch, 1))
			for ctx.Err() == nil {
				end := next.Add(size)
				first, last := end-size+1, min(end, int64(l.cfg.Messages))
				if first > last {
					return
				}
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				}
				t0 := time.Now()
				ids, err := l.send(ctx, p, w, first, last)
				if err != nil {
					errs <- err
					return
				}
				now := time.Now()
				l.mu.Lock()
				for _, id := range ids {
					l.sent[id] = t0
				}
				l.enq = append(l.enq, now.Sub(t0))
				l.last = now
				l.mu.Unlock()
				if n := l.acked.Add(int64(len(ids))); onAck != nil {
					onAck(n)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("bench: enqueue: %w", err)
	}
	deadline := time.Now().Add(deliveryDeadline)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		// The receiver's count is cheap; the exact check looks up every
		// message, so it waits until the count says they may all be in.
		if delivered, _, _, _ := rc.Counts(); delivered-before >= int(l.acked.Load()) && l.undelivered(rc) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	return ctx.Err()
}

// send enqueues messages first to last (counted from 1) through p, one at
// a time or as one batch.
func (l *load) send(ctx context.Context, p *poster, start int, first, last int64) ([]string, error) {
	if l.cfg.Batch <= 1 {
		id, err := p.send(ctx, start, l.key(first), l.payload)
		return []string{id}, err
	}
	keys := make([]string, 0, last-first+1)
	for n := first; n <= last; n++ {
		keys = append(keys, l.key(n))
	}
	return p.sendBatch(ctx, start, keys, l.payload)
}

// key is the idempotency key of message n: <scenario>-<n>.
func (l *load) key(n int64) string {
	var b [64]byte
	k := append(b[:0], l.cfg.Scenario...)
	k = append(k, '-')
	return string(strconv.AppendInt(k, n, 10))
}

// pace returns a channel that yields tokens at Rate per second, or nil
// when the load is not paced. The channel holds at most Concurrency tokens,
// so a server that falls behind gets a bounded burst, not a flood.
func (l *load) pace(ctx context.Context) <-chan struct{} {
	if l.cfg.Rate <= 0 {
		return nil
	}
	tokens := make(chan struct{}, l.cfg.Concurrency)
	go func() {
		start := time.Now()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for sent := 0; sent < l.cfg.Messages; {
			due := min(int(time.Since(start).Seconds()*float64(l.cfg.Rate)), l.cfg.Messages)
			for ; sent < due; sent++ {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return tokens
}

// wait waits for the killer's goroutine and reports its error.
func (k *killer) wait() error {
	if k == nil || k.done == nil {
		return nil
	}
	<-k.done
	if k.err != nil {
		return fmt.Errorf("bench: killing the leader: %w", k.err)
	}
	return nil
}

// undelivered counts acknowledged messages the receiver has not had.
func (l *load) undelivered(rc *Receiver) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range l.sent {
		if _, ok := rc.Delivered(id); !ok {
			n++
		}
	}
	return n
}

// progress prints a progress line every half second until stopped.
func (l *load) progress(rc *Receiver, before int) (stop func()) {
	return everyHalfSecond(l.cfg.Progress, func() string {
		delivered, _, _, _ := rc.Counts()
		return fmt.Sprintf("%s: %d/%d acknowledged, %d delivered", l.cfg.Scenario, l.acked.Load(), l.cfg.Messages, delivered-before)
	})
}

// fill computes the result's figures from the run.
func (res *Result) fill(l *load, rc *Receiver, kill *killer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acked := len(l.sent)
	if d := l.last.Sub(l.start); d > 0 {
		res.AcceptedPerS = float64(acked) / d.Seconds()
	}
	var e2e []time.Duration
	var lastDelivery time.Time
	firstAfterKill := time.Time{}
	for id, t0 := range l.sent {
		at, ok := rc.Delivered(id)
		if !ok {
			res.Lost++
			continue
		}
		e2e = append(e2e, at.Sub(t0))
		if at.After(lastDelivery) {
			lastDelivery = at
		}
		// Deliveries between the signal and the exit are the dying leader's.
		if kill != nil && !kill.exited.IsZero() && at.After(kill.exited) && (firstAfterKill.IsZero() || at.Before(firstAfterKill)) {
			firstAfterKill = at
		}
	}
	if d := lastDelivery.Sub(l.start); d > 0 {
		res.DeliveredPerS = float64(len(e2e)) / d.Seconds()
	}
	res.E2EP50, res.E2EP99, res.E2EMax = percentiles(e2e)
	res.EnqP50, res.EnqP99, res.EnqMax = percentiles(l.enq)
	_, res.Requests, res.Dups, res.BadSigs = rc.Counts()
	if kill != nil && !firstAfterKill.IsZero() {
		res.FailoverMS = ms(firstAfterKill.Sub(kill.killed))
		res.ElectionMS = ms(kill.elected)
	}
}

func percentiles(ds []time.Duration) (p50, p99, maxv float64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) float64 { return ms(ds[min(int(q*float64(len(ds))), len(ds)-1)]) }
	return at(0.50), at(0.99), ms(ds[len(ds)-1])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// inParallel calls do(ctx, w, i) for every i in [0, total) from workers
// goroutines (w is the caller's number, to spread them over the nodes),
// printing "label: done/total" every half second. It returns how long that
// took, or the first error, which stops the others.
func inParallel(ctx context.Context, progress io.Writer, label string, total, workers int,
	do func(ctx context.Context, w, i int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	stop := countProgress(progress, label, &done, total)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < total && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				if err := do(ctx, w, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return elapsed, firstErr
}

// countProgress prints "label: done/total" every half second until
// stopped.
func countProgress(w io.Writer, label string, done *atomic.Int64, total int) (stop func()) {
	return everyHalfSecond(w, func() string { return fmt.Sprintf("%s: %d/%d", label, done.Load(), total) })
}

// everyHalfSecond rewrites one line of w with line() every half second
// until stopped, then clears it.
func everyHalfSecond(w io.Writer, line func() string) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(w, "\r%s   ", line())
			case <-quit:
				fmt.Fprint(w, "\r\033[K")
				return
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}
