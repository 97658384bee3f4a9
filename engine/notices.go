package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/store"
)

// NoticeTenant is the tenant whose endpoints receive Herald's operational
// events, as ordinary signed webhooks: subscribe an endpoint of it to the
// Event types below. Nothing that happens to this tenant's own endpoints
// and deliveries makes an event, so a failing operator endpoint cannot
// feed itself.
const NoticeTenant = "herald"

// Operational event types.
const (
	// EventEndpointDisabled: an endpoint was disabled, by an operator, by
	// a 410 Gone or after failing for Config.DisableAfter.
	EventEndpointDisabled = "endpoint.disabled"
	// EventBreakerOpened and EventBreakerClosed: an endpoint's circuit
	// breaker opened, or closed again.
	EventBreakerOpened = "endpoint.breaker_opened"
	EventBreakerClosed = "endpoint.breaker_closed"
	// EventAttemptExhausted: a delivery ended failed, its retry schedule
	// exhausted or its endpoint gone (410).
	EventAttemptExhausted = "message.attempt.exhausted"
)

// noticeQueue bounds the events waiting to be enqueued; past it they are
// dropped.
const noticeQueue = 1024

// noticeTimeout bounds the enqueueing of one event.
const noticeTimeout = 10 * time.Second

// Notice is the data of an operational event.
type Notice struct {
	Tenant     string `json:"tenant"`
	EndpointID string `json:"endpoint_id,omitempty"`
	// MessageID, DeliveryID, URL, AttemptCount and LastStatusCode are set
	// for EventAttemptExhausted.
	MessageID      string `json:"message_id,omitempty"`
	DeliveryID     string `json:"delivery_id,omitempty"`
	URL            string `json:"url,omitempty"`
	AttemptCount   int    `json:"attempt_count,omitempty"`
	LastStatusCode int    `json:"last_status_code,omitempty"`
	// State is the endpoint's state after the event.
	State  string    `json:"state,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// notice is an operational event waiting to be enqueued.
type notice struct {
	typ, key string // key: the idempotency key, derived from the event
	data     Notice
}

// notifier turns what the store applied into operational events while this
// node delivers, and enqueues them into NoticeTenant, one at a time, from
// a bounded queue. An event is enqueued at most once: those still queued
// when leadership moves are lost.
type notifier struct {
	log     *slog.Logger
	queue   chan notice
	dropped atomic.Int64
	done    chan struct{}
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{log: log, queue: make(chan notice, noticeQueue), done: make(chan struct{})}
}

// observe queues the events of an applied batch, without waiting: it runs
// on the apply path.
func (n *notifier) observe(a store.Applied) {
	for _, c := range a.Endpoints {
		if c.Tenant != NoticeTenant {
			n.add(endpointNotice(c))
		}
	}
	for _, at := range a.Attempts {
		if at.Status == store.StatusFailed && at.Tenant != NoticeTenant {
			n.add(exhaustedNotice(at))
		}
	}
}

func (n *notifier) add(ev notice) {
	select {
	case n.queue <- ev:
	default:
		if d := n.dropped.Add(1); d&(d-1) == 0 { // at 1, 2, 4, …: a backlog does not flood the log
			n.log.Warn("operational events dropped: too many waiting to be enqueued", "dropped", d)
		}
	}
}

var changeEvents = map[string]string{
	store.ChangeDisabled:      EventEndpointDisabled,
	store.ChangeBreakerOpened: EventBreakerOpened,
	store.ChangeBreakerClosed: EventBreakerClosed,
}

func endpointNotice(c store.EndpointChange) notice {
	typ := changeEvents[c.Kind]
	return notice{typ: typ, key: fmt.Sprintf("herald:%s:%s:%d", typ, c.EndpointID, c.At),
		data: Notice{Tenant: c.Tenant, EndpointID: c.EndpointID, State: c.State, Reason: c.Reason, At: utc(c.At)}}
}

func exhaustedNotice(a store.AppliedAttempt) notice {
	reason := "its retry schedule is exhausted"
	switch {
	case a.StatusCode == 410:
		reason = store.ReasonGone
	case strings.HasPrefix(a.Error, store.FailedByDisable):
		reason = a.Error // its endpoint was disabled for failing
	}
	return notice{typ: EventAttemptExhausted, key: fmt.Sprintf("herald:%s:%s:%d", EventAttemptExhausted, a.DeliveryID, a.Attempt),
		data: Notice{Tenant: a.Tenant, EndpointID: a.EndpointID, MessageID: a.MessageID, DeliveryID: a.DeliveryID, URL: a.URL,
			AttemptCount: a.Attempt, LastStatusCode: a.StatusCode, Reason: reason, At: utc(a.At)}}
}

// run enqueues queued events until stopping is closed, while this node
// delivers (leads): a node that does not lead drops them.
func (n *notifier) run(e *Engine) {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stopping
		cancel()
	}()
	for {
		select {
		case ev := <-n.queue:
			if e.delivering.Load() {
				n.enqueue(ctx, e, ev)
			}
		case <-ctx.Done():
			return
		}
	}
}

// enqueue enqueues one event into NoticeTenant, if an endpoint there is
// subscribed to its type: otherwise the message would reach no one.
func (n *notifier) enqueue(ctx context.Context, e *Engine, ev notice) {
	eps, err := e.store.Endpoints(NoticeTenant)
	if err != nil || !slices.ContainsFunc(eps, func(ep store.Endpoint) bool { return subscribed(&ep, ev.typ) }) {
		return
	}
	data, err := json.Marshal(ev.data)
	if err != nil {
		return // cannot happen: strings, numbers and a time
	}
	ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
	defer cancel()
	in := MessageInput{Tenant: NoticeTenant, Type: ev.typ, Data: data, IdempotencyKey: ev.key}
	if _, err := e.w.enqueue(ctx, in); err != nil && ctx.Err() == nil {
		n.log.Warn("cannot enqueue an operational event", "type", ev.typ, "key", ev.key, "error", err)
	}
}

// subscribed reports whether the enabled endpoint ep takes messages of typ.
func subscribed(ep *store.Endpoint, typ string) bool {
	return ep.State == store.StateEnabled && (len(ep.EventTypes) == 0 || slices.Contains(ep.EventTypes, typ))
}
