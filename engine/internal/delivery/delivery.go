// Package delivery makes Herald's attempts on the leader: a scheduler holds
// pending deliveries in a timing wheel and hands each to a per-destination
// queue when it falls due; workers sign and POST each attempt and turn its
// outcome into the delivery's next step, which is committed back through
// Raft.
//
// It never imports the public engine package: its store reads, the
// committer of outcomes and the signers are given to it in Config, the way
// a job executor is given what it needs rather than the client that owns
// it.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// Reader is the store reads delivery needs.
type Reader interface {
	// ForAttempt reads a delivery with its envelope and endpoint.
	ForAttempt(deliveryID string) (*store.AttemptView, error)
	// DuePage pages through the pending deliveries in due-time order.
	DuePage(after store.Due, limit int) ([]store.Due, error)
}

// Signers sign attempts.
type Signers interface {
	// Endpoint returns the signer for an attempt, at now, to a registered
	// endpoint: one v1 signature per live secret.
	Endpoint(ep *store.Endpoint, now time.Time) (signer.Signer, error)
	// Override returns the signer for an attempt to an override URL.
	Override(url string) (signer.Signer, error)
}

// Config configures a Deliverer. Every field is required unless it says
// otherwise.
type Config struct {
	Store   Reader
	Signers Signers
	// Commit commits an attempt's outcome through Raft and returns once it
	// is applied.
	Commit func(context.Context, store.Outcome) error
	// Transport carries attempts. Redirects are never followed.
	Transport http.RoundTripper
	// Schedule is the delays between attempts (one retry per entry), and
	// Jitter the fraction (e.g. 0.2 for ±20 %) each delay may vary by.
	Schedule []time.Duration
	Jitter   float64
	// AttemptTimeout bounds one attempt, from dialling to reading the
	// response headers.
	AttemptTimeout time.Duration
	// Concurrency bounds the attempts in flight to one destination, and
	// MaxInflight those of the whole node, shared round-robin between
	// destinations.
	Concurrency int
	MaxInflight int
	// BreakerFailures and BreakerPeriod open an endpoint's circuit breaker
	// after that many failed attempts in a row over at least that long;
	// DisableAfter disables an endpoint failing for that long.
	BreakerFailures int
	BreakerPeriod   time.Duration
	DisableAfter    time.Duration
	Now             func() time.Time
	Logger          *slog.Logger
}

func (c Config) validate() error {
	switch {
	case c.Store == nil, c.Signers == nil, c.Commit == nil, c.Transport == nil, c.Now == nil, c.Logger == nil:
		return errors.New("delivery: Store, Signers, Commit, Transport, Now and Logger are required")
	case len(c.Schedule) == 0:
		return errors.New("delivery: Schedule is required")
	case c.AttemptTimeout <= 0, c.Concurrency <= 0, c.MaxInflight <= 0, c.BreakerFailures <= 0, c.BreakerPeriod <= 0, c.DisableAfter <= 0:
		return errors.New("delivery: AttemptTimeout, Concurrency, MaxInflight, BreakerFailures, BreakerPeriod and DisableAfter must be positive")
	}
	return nil
}

// Deliverer delivers for the leader, one leadership term at a time.
type Deliverer struct {
	cfg    Config
	client *http.Client
	policy retryPolicy
	sched  *scheduler
	disp   *dispatcher
}

// New returns a Deliverer; it does nothing until Run and Begin.
func New(cfg Config) (*Deliverer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Deliverer{cfg: cfg, policy: newRetryPolicy(cfg.Schedule, cfg.Jitter), sched: newScheduler(cfg.Now)}
	d.client = &http.Client{
		Transport: cfg.Transport,
		// Redirects are failures: following one would send the signed
		// body somewhere the endpoint's owner did not register.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.disp = newDispatcher(d)
	d.sched.dispatch = d.disp.submit
	return d, nil
}

// Run fires due deliveries until stop is closed.
func (d *Deliverer) Run(stop <-chan struct{}) { d.sched.run(stop) }

// Begin starts a leadership term: attempts run under ctx, and the schedule
// is rebuilt from the store's due index. It returns once the schedule is
// rebuilt.
func (d *Deliverer) Begin(ctx context.Context) error {
	d.disp.start(ctx)
	return d.sched.activate(ctx, d.cfg.Store)
}

// Observe takes deliveries committed with a new due time, from the store's
// apply hook. It never blocks.
func (d *Deliverer) Observe(dues []store.Due) { d.sched.observe(dues) }

// End ends a term: nothing more is scheduled, attempts in flight are
// cancelled, and End returns once their workers are gone. The next
// term rebuilds the schedule from the store.
func (d *Deliverer) End() {
	d.sched.deactivate()
	d.disp.stop()
}

// Drain stops scheduling and waits, until ctx ends, for the attempts in
// flight to finish and their outcomes to be committed.
func (d *Deliverer) Drain(ctx context.Context) {
	d.sched.deactivate()
	d.disp.drain(ctx)
}

// Scheduling reports whether the scheduler is active (between Begin and
// End or Drain).
func (d *Deliverer) Scheduling() bool {
	d.sched.mu.Lock()
	defer d.sched.mu.Unlock()
	return d.sched.active
}

// Scheduled counts the pending deliveries in the schedule.
func (d *Deliverer) Scheduled() int { return d.sched.len() }

// InFlight counts the deliveries queued for or in an attempt.
func (d *Deliverer) InFlight() int { return d.disp.inFlight() }
