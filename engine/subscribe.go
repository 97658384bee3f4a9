package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/store"
)

// SubscribeOptions selects the attempts a Subscription receives.
type SubscribeOptions struct {
	// Tenant, if set, receives only attempts for that tenant's messages.
	Tenant string
	// MessageID, if set, receives only attempts for that message.
	MessageID string
	// Buffer is the capacity of the subscription's channel. Defaults to
	// 256.
	Buffer int
}

// Subscription delivers attempt outcomes as this node applies them.
type Subscription struct {
	// C receives the outcomes, oldest first. It is closed when the
	// subscription's context ends or the engine stops.
	C <-chan AttemptEvent

	c       chan AttemptEvent
	opts    SubscribeOptions
	dropped atomic.Int64
}

// Dropped counts the outcomes that found C full and were dropped.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Subscribe returns a subscription to the outcomes of attempts, which
// every node applies once the leader has committed them: a subscription
// on any node sees every attempt, through leader changes, until ctx ends.
//
// Delivery never waits for a subscriber: an outcome that finds C full is
// dropped and counted in Dropped, so a subscriber that falls behind should
// read the message (Message) to learn where things stand. A subscription
// that starts late sees only later attempts; WaitDelivered waits for one
// message without missing anything.
func (e *Engine) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if opts.Tenant != "" {
		if _, err := tenantOf(opts.Tenant); err != nil {
			return nil, err
		}
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	select {
	case <-e.stopping:
		return nil, ErrClosed
	default:
	}
	s := &Subscription{c: make(chan AttemptEvent, opts.Buffer), opts: opts}
	s.C = s.c
	e.subs.add(s)
	go func() {
		select {
		case <-ctx.Done():
		case <-e.stopping:
		}
		e.subs.remove(s)
	}()
	return s, nil
}

// subscribers fans applied attempts out to subscriptions.
type subscribers struct {
	mu  sync.RWMutex // guards set
	set map[*Subscription]struct{}
}

func (ss *subscribers) add(s *Subscription) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.set == nil {
		ss.set = map[*Subscription]struct{}{}
	}
	ss.set[s] = struct{}{}
}

func (ss *subscribers) remove(s *Subscription) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.set[s]; ok {
		delete(ss.set, s)
		close(s.c)
	}
}

// publish hands each event to the subscriptions that want it, without
// waiting: it runs on the apply path.
func (ss *subscribers) publish(evs []AttemptEvent) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	for s := range ss.set {
		for _, ev := range evs {
			if (s.opts.Tenant != "" && ev.Tenant != s.opts.Tenant) || (s.opts.MessageID != "" && ev.MessageID != s.opts.MessageID) {
				continue
			}
			select {
			case s.c <- ev:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

// attemptEvents converts the attempts the store applied.
func attemptEvents(as []store.AppliedAttempt) []AttemptEvent {
	evs := make([]AttemptEvent, len(as))
	for i, a := range as {
		evs[i] = AttemptEvent{Tenant: a.Tenant, MessageID: a.MessageID, DeliveryID: a.DeliveryID, EndpointID: a.EndpointID,
			URL: a.URL, Attempt: a.Attempt, At: utc(a.At), StatusCode: a.StatusCode, Error: a.Error,
			Duration: time.Duration(a.DurationMS) * time.Millisecond, Status: Status(a.Status)}
		if a.NextAttemptAt != 0 {
			evs[i].NextAttemptAt = utc(a.NextAttemptAt)
		}
	}
	return evs
}
