package main

import (
	"net/http"
	"time"
)

// rateSample is what the overview's live chart polls (GET /ui/rates): this
// node's running totals, from which the page computes per-second rates.
type rateSample struct {
	At        int64   `json:"at"`        // Unix milliseconds
	Accepted  float64 `json:"accepted"`  // herald_messages_accepted_total
	Delivered float64 `json:"delivered"` // herald_deliveries_finished_total{status="succeeded"}
	Backlog   int     `json:"backlog"`
}

// rates answers the admin's chart; a tenant sees nothing of the cluster.
func (c *console) rates(w http.ResponseWriter, r *http.Request, v view) {
	if !v.admin() {
		writeError(w, http.StatusForbidden, codeForbidden, "the cluster's rates are shown to the admin only")
		return
	}
	s := rateSample{At: time.Now().UnixMilli(), Backlog: c.api.e.Stats().Scheduled}
	if c.api.metrics != nil {
		s.Accepted, s.Delivered = c.counters()
	}
	writeJSON(w, http.StatusOK, s)
}

// counters reads the two counters the chart shows from the metrics
// registry, as a scrape would.
func (c *console) counters() (accepted, delivered float64) {
	mfs, err := c.api.metrics.reg.Gather()
	if err != nil {
		c.api.log.Warn("console: gather metrics", "error", err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "herald_messages_accepted_total":
				accepted += m.GetCounter().GetValue()
			case "herald_deliveries_finished_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "status" && l.GetValue() == "succeeded" {
						delivered += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return accepted, delivered
}
