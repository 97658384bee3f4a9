package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhq/herald/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the Prometheus metrics served on /metrics. Each server has
// its own registry; nothing is registered globally.
//
//	herald_messages_accepted_total                   messages created through the API
//	herald_attempts_total{result}                    delivery attempts: success, http_error, network_error
//	herald_attempt_duration_seconds                  duration of delivery attempts
//	herald_deliveries_finished_total{status}         deliveries ended: succeeded, failed, cancelled
//	herald_http_requests_total{method,route,code}    API requests
//	herald_http_request_duration_seconds{route}      API request latency
//	herald_leader, herald_ready                      1 when this node leads / is ready
//	herald_catching_up                               1 while this node is too far behind the leader to answer
type metrics struct {
	reg               *prometheus.Registry
	messagesAccepted  prometheus.Counter
	attempts          *prometheus.CounterVec
	attemptDuration   prometheus.Histogram
	deliveriesEnded   *prometheus.CounterVec
	httpRequests      *prometheus.CounterVec
	httpRequestLength *prometheus.HistogramVec
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
	}
	for _, r := range []string{"success", "http_error", "network_error"} {
		m.attempts.WithLabelValues(r)
	}
	for _, s := range []string{"succeeded", "failed", "cancelled"} {
		m.deliveriesEnded.WithLabelValues(s)
	}
	m.reg.MustRegister(m.messagesAccepted, m.attempts, m.attemptDuration, m.deliveriesEnded,
		m.httpRequests, m.httpRequestLength,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watch adds gauges that read the engine's state at scrape time.
func (m *metrics) watch(e *engine.Engine) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_leader", Help: "1 when this node is the Raft leader."},
			func() float64 { return boolGauge(e.IsLeader()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_ready", Help: "1 when a leader is known and this node is caught up."},
			func() float64 { return boolGauge(e.Ready()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_catching_up", Help: "1 while this node is too far behind the leader to answer: it answers the API with 503 until it has caught up."},
			func() float64 { _, far := e.CatchingUp(); return boolGauge(far) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_deliveries_scheduled", Help: "Pending deliveries of every tenant: the backlog not yet delivered (every node counts it from its store)."},
			func() float64 { return float64(e.Stats().Scheduled) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_deliveries_in_flight", Help: "Attempts in flight on this node (0 on followers)."},
			func() float64 { return float64(e.Stats().InFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_raft_applied_index", Help: "Last Raft index applied to this node's store."},
			func() float64 { return float64(e.Stats().AppliedIndex) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_store_bytes", Help: "Size of the state file."},
			func() float64 { return float64(e.Stats().StoreBytes) }),
	)
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
