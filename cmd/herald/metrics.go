package main

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/heraldhq/herald/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the Prometheus metrics served on /metrics. Each server has
// its own registry; nothing is registered globally. docs/operations.md
// documents every metric.
type metrics struct {
	reg               *prometheus.Registry
	messagesAccepted  prometheus.Counter
	attempts          *prometheus.CounterVec
	attemptDuration   prometheus.Histogram
	deliveriesEnded   *prometheus.CounterVec
	httpRequests      *prometheus.CounterVec
	httpRequestLength *prometheus.HistogramVec
	failures          *failureCounts
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		messagesAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_messages_accepted_total",
			Help: "Messages accepted (committed) through the API, not counting idempotent repeats.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_attempts_total",
			Help: "Delivery attempts made by this node, by result: success (2xx), http_error (any other status) or network_error.",
		}, []string{"result"}),
		attemptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_attempt_duration_seconds",
			Help:    "Duration of delivery attempts made by this node.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		deliveriesEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_deliveries_finished_total",
			Help: "Deliveries that reached a final status on this node: succeeded, failed or cancelled.",
		}, []string{"status"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_http_requests_total",
			Help: "API requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		httpRequestLength: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_http_request_duration_seconds",
			Help:    "API request latency by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		failures: newFailureCounts(defaultTopEndpoints),
	}
	for _, r := range []string{"success", "http_error", "network_error"} {
		m.attempts.WithLabelValues(r)
	}
	for _, s := range []string{"succeeded", "failed", "cancelled"} {
		m.deliveriesEnded.WithLabelValues(s)
	}
	m.reg.MustRegister(m.messagesAccepted, m.attempts, m.attemptDuration, m.deliveriesEnded,
		m.httpRequests, m.httpRequestLength, m.failures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watch registers the collector of the engine's state, read at scrape time.
func (m *metrics) watch(e *engine.Engine) {
	m.reg.MustRegister(newStateCollector(e))
}

// engineState is what a scrape reads from the engine.
type engineState interface {
	IsLeader() bool
	Ready() bool
	CatchingUp() (behind uint64, far bool)
	Stats() engine.Stats
}

// stateCollector emits the engine's gauges from one snapshot per scrape:
// Stats reads the store, so it is called once, not once per gauge.
type stateCollector struct {
	e                                             engineState
	leader, ready, catchingUp                     *prometheus.Desc
	scheduled, inFlight, appliedIndex, storeBytes *prometheus.Desc
}

func newStateCollector(e engineState) *stateCollector {
	gauge := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &stateCollector{
		e:            e,
		leader:       gauge("herald_leader", "1 when this node is the Raft leader."),
		ready:        gauge("herald_ready", "1 when a leader is known and this node is caught up."),
		catchingUp:   gauge("herald_catching_up", "1 while this node is too far behind the leader to answer: it answers the API with 503 until it has caught up."),
		scheduled:    gauge("herald_deliveries_scheduled", "Pending deliveries of every tenant: the backlog not yet delivered (every node counts it from its store)."),
		inFlight:     gauge("herald_deliveries_in_flight", "Attempts in flight on this node (0 on followers)."),
		appliedIndex: gauge("herald_raft_applied_index", "Last Raft index applied to this node's store."),
		storeBytes:   gauge("herald_store_bytes", "Size of the state file."),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.leader, c.ready, c.catchingUp, c.scheduled, c.inFlight, c.appliedIndex, c.storeBytes} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Stats()
	_, far := c.e.CatchingUp()
	for _, g := range []struct {
		d *prometheus.Desc
		v float64
	}{
		{c.leader, boolGauge(c.e.IsLeader())},
		{c.ready, boolGauge(c.e.Ready())},
		{c.catchingUp, boolGauge(far)},
		{c.scheduled, float64(st.Scheduled)},
		{c.inFlight, float64(st.InFlight)},
		{c.appliedIndex, float64(st.AppliedIndex)},
		{c.storeBytes, float64(st.StoreBytes)},
	} {
		ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, g.v)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeAttempt is the engine's OnAttempt hook; it does not block.
func (m *metrics) observeAttempt(ev engine.AttemptEvent) {
	result := "network_error"
	switch {
	case ev.StatusCode >= 200 && ev.StatusCode < 300:
		result = "success"
	case ev.StatusCode != 0:
		result = "http_error"
	}
	m.attempts.WithLabelValues(result).Inc()
	if result != "success" {
		m.failures.observe(ev.Tenant, ev.EndpointID)
	}
	m.attemptDuration.Observe(ev.Duration.Seconds())
	switch ev.Status {
	case engine.StatusSucceeded, engine.StatusFailed, engine.StatusCancelled:
		m.deliveriesEnded.WithLabelValues(string(ev.Status)).Inc()
	}
}

// observeRequest counts one API request. route is the matched pattern
// ("" for no route), so label cardinality stays bounded.
func (m *metrics) observeRequest(method, route string, code int, d time.Duration) {
	if route == "" {
		route, method = "unmatched", "other"
	}
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.httpRequestLength.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

const (
	// defaultTopEndpoints is how many endpoints get their own failure
	// series by default (--metrics-top-endpoints).
	defaultTopEndpoints = 20
	// maxTopEndpoints bounds --metrics-top-endpoints.
	maxTopEndpoints = 1000
	// maxTenantSeries is how many tenants get their own failure series;
	// the failures of the others are summed under tenant="_other", which
	// no tenant id can be (ids start with a letter or digit).
	maxTenantSeries = 100
	otherTenant     = "_other"
	// trackedPerSeries: failures are counted for this many times more
	// endpoints than get a series, so an endpoint climbing into the top
	// is usually counted from its first failure.
	trackedPerSeries = 10
)

// endpointKey names an endpoint's failure series.
type endpointKey struct{ tenant, endpoint string }

// failureCounts counts failed attempts (any outcome but a 2xx) by tenant
// and by endpoint, in bounded memory: at most maxTenantSeries tenants (the
// first to fail; the rest fold into _other) and top*trackedPerSeries
// endpoints (when full, the one with the fewest failures is forgotten for
// the newcomer). A scrape shows only the top endpoints by failures: the
// series of an endpoint that falls out of the top is removed, not folded,
// and comes back, counting on, if it climbs back.
type failureCounts struct {
	top          int // endpoint series shown; 0: none, and none counted
	tenantDesc   *prometheus.Desc
	endpointDesc *prometheus.Desc

	mu           sync.Mutex
	tenants      map[string]uint64
	otherTenants uint64
	endpoints    map[endpointKey]uint64
}

func newFailureCounts(top int) *failureCounts {
	return &failureCounts{
		top: top,
		tenantDesc: prometheus.NewDesc("herald_tenant_attempts_failed_total",
			fmt.Sprintf("Failed delivery attempts made by this node, by tenant (at most %d tenants, the rest under %s).", maxTenantSeries, otherTenant),
			[]string{"tenant"}, nil),
		endpointDesc: prometheus.NewDesc("herald_endpoint_attempts_failed_total",
			"Failed delivery attempts made by this node, for the endpoints with the most failures (--metrics-top-endpoints).",
			[]string{"tenant", "endpoint"}, nil),
		tenants:   map[string]uint64{},
		endpoints: map[endpointKey]uint64{},
	}
}

// observe counts one failed attempt; endpoint is empty for an override URI,
// which counts for its tenant only.
func (f *failureCounts) observe(tenant, endpoint string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tenants[tenant]; ok || len(f.tenants) < maxTenantSeries {
		f.tenants[tenant]++
	} else {
		f.otherTenants++
	}
	if f.top == 0 || endpoint == "" {
		return
	}
	k := endpointKey{tenant, endpoint}
	if _, ok := f.endpoints[k]; !ok && len(f.endpoints) >= f.top*trackedPerSeries {
		delete(f.endpoints, f.fewest())
	}
	f.endpoints[k]++
}

// fewest is the tracked endpoint with the fewest failures.
func (f *failureCounts) fewest() endpointKey {
	var least endpointKey
	n := uint64(math.MaxUint64)
	for k, c := range f.endpoints {
		if c < n {
			least, n = k, c
		}
	}
	return least
}

func (f *failureCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.tenantDesc
	ch <- f.endpointDesc
}

func (f *failureCounts) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	tenants := maps.Clone(f.tenants)
	other := f.otherTenants
	top := f.topEndpoints()
	f.mu.Unlock()
	for t, c := range tenants {
		ch <- prometheus.MustNewConstMetric(f.tenantDesc, prometheus.CounterValue, float64(c), t)
	}
	if other > 0 {
		ch <- prometheus.MustNewConstMetric(f.tenantDesc, prometheus.CounterValue, float64(other), otherTenant)
	}
	for _, e := range top {
		ch <- prometheus.MustNewConstMetric(f.endpointDesc, prometheus.CounterValue, float64(e.count), e.tenant, e.endpoint)
	}
}

type endpointCount struct {
	endpointKey
	count uint64
}

// topEndpoints returns the f.top endpoints with the most failures; ties go
// to the smaller key, so a scrape is deterministic. f.mu is held.
func (f *failureCounts) topEndpoints() []endpointCount {
	all := make([]endpointCount, 0, len(f.endpoints))
	for k, c := range f.endpoints {
		all = append(all, endpointCount{k, c})
	}
	slices.SortFunc(all, func(a, b endpointCount) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.endpoint, b.endpoint))
	})
	return all[:min(len(all), f.top)]
}
