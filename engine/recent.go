package engine

import (
	"container/list"
	"sync"
	"time"
)

const (
	// RecentWindow is how many of an endpoint's latest attempts
	// EndpointStats counts.
	RecentWindow = 100
	// maxRecentEndpoints bounds how many endpoints a node keeps recent
	// outcomes for; the least recently attempted is forgotten first.
	maxRecentEndpoints = 10_000
)

// EndpointRecent is the outcome of an endpoint's latest attempts as this
// node saw them apply: kept in memory since the node started, so a node
// that just started knows none, and an override URI's attempts are not
// counted.
type EndpointRecent struct {
	// Attempts counts the latest attempts, at most RecentWindow, and
	// Succeeded those of them that succeeded.
	Attempts, Succeeded int
	// LastError, LastStatusCode and LastErrorAt describe the latest
	// failed attempt; LastError is "" when none failed.
	LastError      string
	LastStatusCode int
	LastErrorAt    time.Time
}

// SuccessRate is the share of the latest attempts that succeeded, from 0
// to 1; 0 when there were none.
func (r EndpointRecent) SuccessRate() float64 {
	if r.Attempts == 0 {
		return 0
	}
	return float64(r.Succeeded) / float64(r.Attempts)
}

// EndpointStats returns the outcome of an endpoint's latest attempts as
// this node saw them (see EndpointRecent); the zero value when it saw
// none.
func (e *Engine) EndpointStats(tenant, id string) EndpointRecent {
	if tenant == "" {
		tenant = DefaultTenant
	}
	return e.recent.get(recentKey{tenant: tenant, endpoint: id})
}

// recentKey names an endpoint.
type recentKey struct{ tenant, endpoint string }

// endpointOutcomes is one endpoint's ring of latest outcomes.
type endpointOutcomes struct {
	key  recentKey
	ok   [RecentWindow]bool
	next int // the ring's next slot
	sum  EndpointRecent
}

// add records one attempt, forgetting the oldest when the ring is full.
func (o *endpointOutcomes) add(ev AttemptEvent) {
	ok := ev.Status == StatusSucceeded
	if o.sum.Attempts == RecentWindow {
		if o.ok[o.next] {
			o.sum.Succeeded--
		}
	} else {
		o.sum.Attempts++
	}
	o.ok[o.next] = ok
	o.next = (o.next + 1) % RecentWindow
	if ok {
		o.sum.Succeeded++
		return
	}
	o.sum.LastError, o.sum.LastStatusCode, o.sum.LastErrorAt = ev.Error, ev.StatusCode, ev.At
}

// recentOutcomes keeps the latest outcomes of at most max endpoints.
type recentOutcomes struct {
	max int

	mu    sync.Mutex // guards byKey, order
	byKey map[recentKey]*list.Element
	order list.List // of *endpointOutcomes, the most recently attempted first
}

func newRecentOutcomes(max int) *recentOutcomes {
	return &recentOutcomes{max: max, byKey: map[recentKey]*list.Element{}}
}

// observe records applied attempts; cancelled ones made no request, and
// override URIs are no endpoint.
func (r *recentOutcomes) observe(evs []AttemptEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		if ev.EndpointID == "" || ev.Status == StatusCancelled {
			continue
		}
		r.outcomes(recentKey{tenant: ev.Tenant, endpoint: ev.EndpointID}).add(ev)
	}
}

// outcomes returns key's ring, now the most recent, making room for a new
// one by forgetting the least recent.
func (r *recentOutcomes) outcomes(key recentKey) *endpointOutcomes {
	if el, ok := r.byKey[key]; ok {
		r.order.MoveToFront(el)
		return el.Value.(*endpointOutcomes)
	}
	if r.order.Len() >= r.max {
		oldest := r.order.Back()
		r.order.Remove(oldest)
		delete(r.byKey, oldest.Value.(*endpointOutcomes).key)
	}
	o := &endpointOutcomes{key: key}
	r.byKey[key] = r.order.PushFront(o)
	return o
}

func (r *recentOutcomes) get(key recentKey) EndpointRecent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[key]; ok {
		return el.Value.(*endpointOutcomes).sum
	}
	return EndpointRecent{}
}
