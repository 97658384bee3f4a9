// Package delivery makes Herald's attempts on the leader: a scheduler
// keeps, per destination, when to look at it next and a bounded window of
// its due deliveries read from the store's due index; destinations take
// turns for the node's attempt slots; workers sign and POST each attempt
// and turn its outcome into the delivery's next step, which is committed
// back through Raft. An endpoint that keeps failing has its circuit
// breaker opened: its deliveries wait in the store while probes test it.
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
	// QueueHeads lists the earliest pending delivery of each destination.
	QueueHeads(after string, limit int) ([]store.Due, error)
	// QueueDue reads a window of a destination's due deliveries.
	QueueDue(queue string, upTo int64, limit int, skip func(deliveryID []byte) bool) (*store.QueueWindow, error)
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
}

// New returns a Deliverer; it does nothing until Run and Begin.
func New(cfg Config) (*Deliverer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Deliverer{cfg: cfg, policy: newRetryPolicy(cfg.Schedule, cfg.Jitter)}
	d.sched = newScheduler(d)
	d.client = &http.Client{
		Transport: cfg.Transport,
		// Redirects are failures: following one would send the signed
		// body somewhere the endpoint's owner did not register.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d, nil
}

// Run runs the schedule until stop is closed.
func (d *Deliverer) Run(stop <-chan struct{}) { d.sched.run(stop) }

// Begin starts a leadership term: attempts run under ctx, and the schedule
// learns every destination with pending deliveries from the store's due
// index. It returns once it has.
func (d *Deliverer) Begin(ctx context.Context) error { return d.sched.begin(ctx) }

// Observe takes deliveries committed with a new due time, from the store's
// apply hook. It never blocks.
func (d *Deliverer) Observe(dues []store.Due) { d.sched.observe(dues) }

// Changed takes changes of endpoints from the store's apply hook: a
// breaker closed elsewhere (an operator enabled the endpoint again)
// releases the deliveries it held. It never blocks.
func (d *Deliverer) Changed(changes []store.EndpointChange) { d.sched.changed(changes) }

// End ends a term: nothing more is scheduled, attempts in flight are
// cancelled, and End returns once their workers are gone. The next
// term rebuilds the schedule from the store.
func (d *Deliverer) End() { d.sched.end() }

// Drain stops scheduling and waits, until ctx ends, for the attempts in
// flight to finish and their outcomes to be committed.
func (d *Deliverer) Drain(ctx context.Context) { d.sched.drain(ctx) }

// Scheduling reports whether the scheduler is active (between Begin and
// End or Drain).
func (d *Deliverer) Scheduling() bool {
	d.sched.mu.Lock()
	defer d.sched.mu.Unlock()
	return d.sched.active
}

// Stats is what the schedule holds in memory.
type Stats struct {
	// Destinations counts the destinations the schedule holds: those with
	// pending deliveries, and up to 10,000 healthy idle ones.
	Destinations int
	// Windowed counts the deliveries read into their destinations'
	// windows and not yet started.
	Windowed int
	// InFlight counts the attempts in flight.
	InFlight int
}

// Stats reports what the schedule holds.
func (d *Deliverer) Stats() Stats {
	q, w, r := d.sched.stats()
	return Stats{Destinations: q, Windowed: w, InFlight: r}
}
