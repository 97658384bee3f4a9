package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// scrape reads a /metrics page into series ("name{labels}") and values.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// withPrefix returns the series of one metric.
func withPrefix(all map[string]float64, name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range all {
		if strings.HasPrefix(k, name+"{") {
			out[k] = v
		}
	}
	return out
}

// post sends a JSON body to a server without a token and returns the id
// of what it created.
func post(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var created struct{ ID string }
	if err != nil || (resp.StatusCode != 201 && resp.StatusCode != 202) || json.Unmarshal(b, &created) != nil {
		t.Fatalf("POST %s: %d %s (%v)", url, resp.StatusCode, b, err)
	}
	return created.ID
}

// TestMetricsFailures runs `herald serve` with --metrics-top-endpoints 2,
// fails deliveries to four endpoints of two tenants, and checks the
// failure counters: every tenant counted, only the top two endpoints shown.
func TestMetricsFailures(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	rcv := newHook(t)
	rcv.setStatus(500)
	srv := startServe(t, "--allow-private-networks", "--retry-schedule", "10ms", "--metrics-top-endpoints", "2")
	waitReady(t, http.DefaultClient, srv.base)

	// Each endpoint takes its own event type; a message makes two failed
	// attempts (one retry) to it.
	messages := map[string]int{"default/a": 3, "default/b": 2, "default/c": 1, "acme/d": 1}
	ids := map[string]string{}
	for name, n := range messages {
		tenant, ep, _ := strings.Cut(name, "/")
		path := "/v1/tenants/" + tenant
		ids[name] = post(t, srv.base+path+"/endpoints", fmt.Sprintf(`{"url": "%s/%s", "event_types": ["t.%s"]}`, rcv.URL, ep, ep))
		for range n {
			post(t, srv.base+path+"/messages", `{"type": "t.`+ep+`", "data": {}}`)
		}
	}
	waitUntil(t, 20*time.Second, "every delivery failed", func() bool {
		return scrape(t, srv.base)[`herald_deliveries_finished_total{status="failed"}`] == 7
	})

	m := scrape(t, srv.base)
	if got := m[`herald_attempts_total{result="http_error"}`]; got != 14 {
		t.Errorf("http_error attempts = %v, want 14", got)
	}
	wantTenants := map[string]float64{
		`herald_tenant_attempts_failed_total{tenant="default"}`: 12,
		`herald_tenant_attempts_failed_total{tenant="acme"}`:    2,
	}
	if got := withPrefix(m, "herald_tenant_attempts_failed_total"); !equalSeries(got, wantTenants) {
		t.Errorf("tenant failures = %v, want %v", got, wantTenants)
	}
	wantEndpoints := map[string]float64{
		`herald_endpoint_attempts_failed_total{endpoint="` + ids["default/a"] + `",tenant="default"}`: 6,
		`herald_endpoint_attempts_failed_total{endpoint="` + ids["default/b"] + `",tenant="default"}`: 4,
	}
	if got := withPrefix(m, "herald_endpoint_attempts_failed_total"); !equalSeries(got, wantEndpoints) {
		t.Errorf("endpoint failures = %v, want the top two %v", got, wantEndpoints)
	}
}

func equalSeries(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestFailureCountsBounded: however many tenants and endpoints fail, the
// counts take bounded memory and a scrape bounded series.
func TestFailureCountsBounded(t *testing.T) {
	f := newFailureCounts(3)
	for i := range maxTenantSeries + 50 {
		f.observe(fmt.Sprintf("t%d", i), "")
	}
	// Endpoint i fails i%7+1 times; a heavy one, late, still makes the top.
	for i := range 200 {
		for range i%7 + 1 {
			f.observe("t0", fmt.Sprintf("ep%d", i))
		}
	}
	for range 20 {
		f.observe("t0", "heavy")
	}
	if len(f.tenants) != maxTenantSeries || f.otherTenants != 50 {
		t.Errorf("%d tenants tracked, %d failures under _other; want %d and 50", len(f.tenants), f.otherTenants, maxTenantSeries)
	}
	if len(f.endpoints) > 3*trackedPerSeries {
		t.Errorf("%d endpoints tracked, want at most %d", len(f.endpoints), 3*trackedPerSeries)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(f)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			labels := []string{}
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			series[fam.GetName()] = append(series[fam.GetName()], fmt.Sprintf("%v=%v", labels, m.GetCounter().GetValue()))
		}
	}
	if n := len(series["herald_tenant_attempts_failed_total"]); n != maxTenantSeries+1 {
		t.Errorf("%d tenant series, want %d and _other", n, maxTenantSeries)
	}
	// The top three (Gather sorts them by label): heavy, then two of the
	// endpoints failing 7 times.
	top := strings.Join(series["herald_endpoint_attempts_failed_total"], " ")
	if len(series["herald_endpoint_attempts_failed_total"]) != 3 || !strings.Contains(top, "[heavy t0]=20") || strings.Count(top, "=7") != 2 {
		t.Errorf("endpoint series = %v, want heavy=20 and two =7", top)
	}
}

// countingState is an engineState that counts its Stats calls.
type countingState struct {
	stats int
}

func (c *countingState) IsLeader() bool             { return true }
func (c *countingState) Ready() bool                { return true }
func (c *countingState) CatchingUp() (uint64, bool) { return 0, false }
func (c *countingState) Stats() engine.Stats {
	c.stats++
	return engine.Stats{Scheduled: 5, InFlight: 2, AppliedIndex: 9, StoreBytes: 4096}
}

// TestStateCollectorReadsOnce: one scrape reads the engine's Stats (and so
// the store) once, however many gauges come from it.
func TestStateCollectorReadsOnce(t *testing.T) {
	state := &countingState{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStateCollector(state))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if state.stats != 1 {
		t.Errorf("a scrape called Stats %d times, want 1", state.stats)
	}
	got := map[string]float64{}
	for _, fam := range families {
		got[fam.GetName()] = fam.GetMetric()[0].GetGauge().GetValue()
	}
	want := map[string]float64{"herald_leader": 1, "herald_ready": 1, "herald_catching_up": 0, "herald_deliveries_scheduled": 5,
		"herald_deliveries_in_flight": 2, "herald_raft_applied_index": 9, "herald_store_bytes": 4096}
	if !equalSeries(got, want) {
		t.Errorf("gauges = %v, want %v", got, want)
	}
}
