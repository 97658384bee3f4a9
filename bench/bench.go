package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/signer"
)

// Scenarios that Run knows.
var Scenarios = []string{"steady", "retry", "slow-endpoint", "failover"}

// Config is one benchmark run.
type Config struct {
	// Scenario is one of Scenarios.
	Scenario string
	// Binary is the herald executable to run as servers.
	Binary string
	// Nodes is 1 or 3. Defaults to 1, and to 3 for failover.
	Nodes int
	// Messages to send. Defaults to 20000.
	Messages int
	// Concurrency is the number of concurrent clients. Defaults to 48.
	Concurrency int
	// Size is the approximate message body size in bytes. Defaults to 1024.
	Size int
	// Rate, if set, offers messages at this many per second (spread over
	// the clients) instead of as fast as acknowledgements allow, to measure
	// latency below saturation.
	Rate int
	// Dir holds the servers' data. Defaults to a temporary directory,
	// removed afterwards.
	Dir string
	// Progress, if set, receives a progress line while the run goes on.
	Progress io.Writer
	// ProfileDir, if set, receives a CPU profile of the leader taken while
	// the load runs (cpu-<scenario>-<nodes>.prof), for `go tool pprof`.
	ProfileDir string
	// PeerTLS runs the nodes with mutual TLS on their peer ports, as a
	// deployment across machines must, to measure what it costs.
	PeerTLS bool
	// OtherTenants, if set, creates this many tenants besides the default
	// before the load starts, each with EndpointsPerTenant endpoints
	// subscribed to the messages' type at a receiver that must never be
	// called. The load stays in the default tenant, so comparing with a
	// run without them shows whether fan-out depends on other tenants.
	OtherTenants int
	// EndpointsPerTenant is the number of endpoints of each other tenant.
	// Defaults to 2.
	EndpointsPerTenant int
	// Warmup messages are sent and delivered before the measured ones, and
	// count in no figure: the measured load then meets a server whose
	// files, heap and connections have grown to their working size, as
	// creating other tenants' endpoints grows them too.
	Warmup int
	// Backlog messages, if set, are enqueued before the warm-up for an
	// endpoint that refuses every attempt, and wait until its breaker
	// opens: the load then runs while they stay pending in the store.
	Backlog int
	// Batch, above 1, sends the messages in batches of this many
	// (POST /v1/messages/batch), each client one batch at a time.
	Batch int
	// ServeArgs are extra flags for every herald serve, after the
	// scenario's (tests shorten --breaker-period with them).
	ServeArgs []string
}

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 1
		if c.Scenario == "failover" {
			c.Nodes = 3
		}
	}
	if c.Messages == 0 {
		c.Messages = 20000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 48
	}
	if c.Size == 0 {
		c.Size = 1024
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.EndpointsPerTenant == 0 {
		c.EndpointsPerTenant = 2
	}
	return c
}

func (c Config) validate() error {
	switch {
	case !slices.Contains(Scenarios, c.Scenario):
		return fmt.Errorf("bench: unknown scenario %q (want one of %s)", c.Scenario, strings.Join(Scenarios, ", "))
	case c.Nodes != 1 && c.Nodes != 3:
		return fmt.Errorf("bench: nodes must be 1 or 3, got %d", c.Nodes)
	case c.Scenario == "failover" && c.Nodes != 3:
		return errors.New("bench: the failover scenario needs 3 nodes")
	case c.Messages < 1 || c.Concurrency < 1 || c.Size < 64 || c.Rate < 0:
		return errors.New("bench: messages and concurrency must be positive, size at least 64, rate not negative")
	case c.OtherTenants < 0 || c.EndpointsPerTenant < 1 || c.Warmup < 0:
		return errors.New("bench: other tenants and warm-up messages must not be negative, endpoints per tenant at least 1")
	case c.Backlog < 0 || c.Backlog > maxBacklog:
		return fmt.Errorf("bench: backlog must be between 0 and %d, got %d", maxBacklog, c.Backlog)
	case c.Batch < 0 || c.Batch > maxBatch:
		return fmt.Errorf("bench: batch must be between 0 and %d, got %d", maxBatch, c.Batch)
	case c.Batch > 1 && c.Rate > 0:
		return errors.New("bench: --rate offers single messages; it does not go with --batch")
	case c.Binary == "":
		return errors.New("bench: Binary is required")
	}
	return nil
}

// Result holds a run's figures. Rates are per second, latencies in ms.
type Result struct {
	Scenario    string `json:"scenario"`
	Nodes       int    `json:"nodes"`
	Messages    int    `json:"messages"`
	Concurrency int    `json:"concurrency"`
	OfferedPerS int    `json:"offered_per_s,omitempty"`
	SizeBytes   int    `json:"size_bytes"`

	BaselinePerS  float64 `json:"baseline_per_s"`
	AcceptedPerS  float64 `json:"accepted_per_s"`
	DeliveredPerS float64 `json:"delivered_per_s"`
	// DeliveredRatio is DeliveredPerS / BaselinePerS.
	DeliveredRatio float64 `json:"delivered_ratio"`

	E2EP50  float64 `json:"e2e_p50_ms"`
	E2EP99  float64 `json:"e2e_p99_ms"`
	E2EMax  float64 `json:"e2e_max_ms"`
	EnqP50  float64 `json:"enqueue_p50_ms"`
	EnqP99  float64 `json:"enqueue_p99_ms"`
	EnqMax  float64 `json:"enqueue_max_ms"`
	Lost    int     `json:"lost"`
	Dups    int     `json:"duplicates"`
	BadSigs int     `json:"bad_signatures"`
	// Requests is what the receiver got for the measured messages, retries
	// included: not the baseline's nor the warm-up's.
	Requests int `json:"receiver_requests"`

	// FailoverMS is the time from the leader's SIGKILL to the first
	// delivery after its exit (those in between are its own last ones);
	// ElectionMS to a new leader being reported.
	FailoverMS float64 `json:"failover_ms,omitempty"`
	ElectionMS float64 `json:"election_ms,omitempty"`

	// OtherTenants and OtherEndpoints were created before the load, in
	// SetupS seconds.
	OtherTenants   int     `json:"other_tenants,omitempty"`
	OtherEndpoints int     `json:"other_endpoints,omitempty"`
	SetupS         float64 `json:"setup_s,omitempty"`
	// Warmup messages were delivered before the measured ones.
	Warmup int `json:"warmup,omitempty"`
	// Batch is the messages per enqueue call, when above 1.
	Batch int `json:"batch,omitempty"`

	// Backlog messages were enqueued before the warm-up, at
	// BacklogFillPerS in BacklogFillS seconds, for an endpoint that refuses
	// every attempt; its breaker was open BreakerOpenS seconds after the
	// fill began. FillMemory is the servers' memory then.
	Backlog         int     `json:"backlog,omitempty"`
	BacklogFillS    float64 `json:"backlog_fill_s,omitempty"`
	BacklogFillPerS float64 `json:"backlog_fill_per_s,omitempty"`
	BreakerOpenS    float64 `json:"backlog_breaker_open_s,omitempty"`
	FillMemory      *Memory `json:"after_fill,omitempty"`
	// PendingAtEnd is the deliveries still pending at the end: the
	// backlog's, as the load's were all delivered unless some were lost.
	PendingAtEnd int `json:"pending_at_end"`
	// EndMemory is the running servers' memory at the end.
	EndMemory Memory `json:"at_end"`

	// CPUSeconds is the servers' CPU from just before the first measured
	// message to the end: their start, the setup and the warm-up are not
	// counted.
	CPUSeconds float64 `json:"server_cpu_seconds"`
	PeakRSSMB  float64 `json:"server_peak_rss_mb"`
	// AnonRSSMB is the largest server's anonymous memory at the end of the
	// run; peak RSS also counts the pages of bbolt's memory-mapped files,
	// which grow with the data and are the kernel's to reclaim.
	AnonRSSMB float64 `json:"server_anon_rss_mb"`

	// Cost is the run's cost per message: the servers' and the load
	// generator's, beside the baseline's.
	Cost
}

// Run runs one scenario: the raw baseline first, then Herald.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "herald-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	res := &Result{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Messages: cfg.Messages, Concurrency: cfg.Concurrency,
		SizeBytes: cfg.Size, OfferedPerS: cfg.Rate, Batch: cfg.Batch}
	r := &run{cfg: cfg, res: res, payload: payload(eventType, cfg.Size)}
	var err error
	if r.rc, err = NewReceiver(ReceiverConfig{Respond: r.respond()}); err != nil {
		return nil, err
	}
	defer r.rc.Close()
	meter := startCPUMeter(cfg.ProfileDir, fmt.Sprintf("bench-baseline-%s-%d", cfg.Scenario, cfg.Nodes))
	res.BaselinePerS, err = r.baseline(ctx)
	r.baselineCPU = meter.stop()
	if err != nil {
		return nil, fmt.Errorf("bench: baseline: %w", err)
	}
	if err := r.herald(ctx); err != nil {
		return nil, err
	}
	if res.BaselinePerS > 0 {
		res.DeliveredRatio = res.DeliveredPerS / res.BaselinePerS
	}
	return res, nil
}

type run struct {
	cfg     Config
	res     *Result
	payload []byte
	rc      *Receiver
	// baselineCPU is this process's CPU seconds during the baseline.
	baselineCPU float64
}

// eventType is the type of every message the bench measures.
const eventType = "bench.done"

// payload returns a message body of type typ of about size bytes.
func payload(typ string, size int) []byte {
	overhead := len(`{"type":"` + typ + `","data":{"pad":""}}`)
	return fmt.Appendf(nil, `{"type":"%s","data":{"pad":"%s"}}`, typ, strings.Repeat("x", max(size-overhead, 0)))
}

// failShare is the share of messages whose first attempt is answered 503 in
// the retry scenario.
const failShare = 5 // one in five

// respond returns the main receiver's behaviour for the scenario.
func (r *run) respond() func(id string, n int) int {
	if r.cfg.Scenario != "retry" {
		return nil
	}
	return func(id string, n int) int {
		h := fnv.New32a()
		h.Write([]byte(id))
		if n == 0 && h.Sum32()%failShare == 0 && !strings.HasPrefix(id, "base-") {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
}

// baselinePasses is how many times the baseline posts the messages; its
// figure is the median pass. One pass lasts about a second, and single
// passes varied by ±15 % from run to run.
const baselinePasses = 3

// baseline posts the same bodies straight to the receiver with a plain Go
// client at the same concurrency, baselinePasses times, and returns the
// median pass's exchanges per second.
func (r *run) baseline(ctx context.Context) (float64, error) {
	client := NewClient([]string{r.rc.URL()}, "", r.cfg.Concurrency).HTTP
	rates := make([]float64, baselinePasses)
	for pass := range rates {
		rate, err := r.baselinePass(ctx, client, pass)
		if err != nil {
			return 0, err
		}
		rates[pass] = rate
	}
	slices.Sort(rates)
	return rates[len(rates)/2], nil
}

// baselinePass posts the messages once, with webhook-ids of its own.
func (r *run) baselinePass(ctx context.Context, client *http.Client, pass int) (float64, error) {
	prefix := fmt.Sprintf("base-%d-", pass)
	var next atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(r.cfg.Messages) {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.rc.URL(), bytes.NewReader(r.payload))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("webhook-id", prefix+strconv.FormatInt(n, 10))
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if n := failed.Load(); n > 0 {
		return 0, fmt.Errorf("%d baseline requests failed", n)
	}
	return float64(r.cfg.Messages) / time.Since(start).Seconds(), nil
}

// herald starts the servers, drives the load and measures it.
func (r *run) herald(ctx context.Context) error {
	args := []string{}
	switch r.cfg.Scenario {
	case "retry":
		args = append(args, "--retry-schedule", "100ms,200ms,500ms,1s,2s")
	case "slow-endpoint":
		args = append(args, "--attempt-timeout", "2s", "--retry-schedule", "1s,1s,1s,1s,1s")
	}
	args = append(args, r.cfg.ServeArgs...)
	cl, err := StartCluster(ctx, ClusterConfig{Binary: r.cfg.Binary, Nodes: r.cfg.Nodes, Dir: r.cfg.Dir, Args: args,
		Debug: r.cfg.ProfileDir != "", PeerTLS: r.cfg.PeerTLS})
	if err != nil {
		return err
	}
	defer cl.Stop()
	var urls []string
	for _, n := range cl.Nodes {
		urls = append(urls, n.URL())
	}
	client := NewClient(urls, "", r.cfg.Concurrency)
	_, secret, err := client.CreateEndpointFor(ctx, r.rc.URL(), []string{eventType})
	if err != nil {
		return fmt.Errorf("bench: create endpoint: %w", err)
	}
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{secret}})
	if err != nil {
		return err
	}
	r.rc.SetVerifier(v, 1) // every delivery's signature
	if r.cfg.Scenario == "slow-endpoint" {
		hang, err := NewReceiver(ReceiverConfig{Respond: func(string, int) int { return 0 }})
		if err != nil {
			return err
		}
		defer hang.Close()
		if _, _, err := client.CreateEndpointFor(ctx, hang.URL(), []string{eventType}); err != nil {
			return err
		}
	}
	var others *Receiver // the other tenants' endpoints' receiver
	if r.cfg.OtherTenants > 0 {
		if others, err = NewReceiver(ReceiverConfig{}); err != nil {
			return err
		}
		defer others.Close()
		if err := r.createOthers(ctx, urls, others.URL()); err != nil {
			return err
		}
	}
	if r.cfg.Backlog > 0 {
		if err := r.fillBacklog(ctx, cl, urls); err != nil {
			return err
		}
	}

	if r.cfg.Warmup > 0 {
		warm := r.cfg
		warm.Scenario, warm.Messages, warm.Rate = "warmup", r.cfg.Warmup, 0
		if err := newLoad(warm, client, r.payload).run(ctx, r.rc, nil); err != nil {
			return fmt.Errorf("bench: warm-up: %w", err)
		}
		r.res.Warmup = r.cfg.Warmup
	}
	_, requestsBefore, dupsBefore, _ := r.rc.Counts() // the baseline's and the warm-up's

	l := newLoad(r.cfg, client, r.payload)
	stats := make([]ProcStats, len(cl.Nodes))
	// Server CPU counts from here: not the start, the setup nor the warm-up.
	cpuBefore := make([]float64, len(cl.Nodes))
	mallocsBefore := make([]float64, len(cl.Nodes))
	mallocs := 0.0 // the servers' allocations during the run; -1 when unknown
	for i := range cl.Nodes {
		if st, err := readProcStats(cl.Pid(i)); err == nil {
			cpuBefore[i] = st.CPUSeconds
		}
		if mallocsBefore[i], err = client.Metric(ctx, i, mallocsMetric); err != nil {
			mallocs = -1
		}
	}
	var statsMu sync.Mutex
	collect := func(i int) { // once per node: at its kill or at the end
		m, merr := client.Metric(ctx, i, mallocsMetric)
		st, err := readProcStats(cl.Pid(i))
		statsMu.Lock()
		defer statsMu.Unlock()
		if err == nil {
			stats[i].CPUSeconds += st.CPUSeconds - cpuBefore[i]
			stats[i].PeakRSSMB = max(stats[i].PeakRSSMB, st.PeakRSSMB)
			stats[i].AnonRSSMB = st.AnonRSSMB
		}
		if merr != nil || mallocs < 0 {
			mallocs = -1
		} else {
			mallocs += m - mallocsBefore[i]
		}
	}
	pids := make([]int, len(cl.Nodes))
	for i := range cl.Nodes {
		pids[i] = cl.Pid(i)
	}
	perf, perfErr := startPerf(ctx, r.cfg.Dir, pids)
	var kill *killer
	var onAck func(int64)
	if r.cfg.Scenario == "failover" {
		kill = &killer{cl: cl, at: int64(r.cfg.Messages / 3), collect: collect}
		onAck = func(n int64) { kill.maybeKill(ctx, n) }
	}
	if r.cfg.ProfileDir != "" {
		stop, err := r.profile(ctx, cl)
		if err != nil {
			return err
		}
		defer stop()
	}
	procs := runtime.GOMAXPROCS(loadProcs)
	meter := startCPUMeter(r.cfg.ProfileDir, fmt.Sprintf("bench-%s-%d", r.cfg.Scenario, r.cfg.Nodes))
	err = l.run(ctx, r.rc, onAck)
	benchCPU := meter.stop()
	runtime.GOMAXPROCS(procs)
	instructions := -1.0
	if perf != nil {
		if instructions, perfErr = perf.stop(); perfErr != nil {
			instructions = -1
		}
	}
	if err != nil {
		return err
	}
	if err := kill.wait(); err != nil {
		return err
	}
	if others != nil {
		if _, n, _, _ := others.Counts(); n > 0 {
			return fmt.Errorf("bench: %d requests reached other tenants' endpoints: fan-out crossed tenants", n)
		}
	}
	for i := range cl.Nodes {
		if cl.Running(i) {
			collect(i)
		}
	}
	if err := r.end(ctx, cl, client); err != nil {
		return err
	}
	r.res.fill(l, r.rc, kill)
	r.res.Requests -= requestsBefore
	r.res.Dups -= dupsBefore
	for _, st := range stats {
		r.res.CPUSeconds += st.CPUSeconds
		r.res.PeakRSSMB = max(r.res.PeakRSSMB, st.PeakRSSMB)
		r.res.AnonRSSMB = max(r.res.AnonRSSMB, st.AnonRSSMB)
	}
	r.res.Instructions = "counted"
	if perfErr != nil {
		r.res.Instructions = perfErr.Error()
	}
	r.res.Cost.fill(r.res.CPUSeconds, mallocs, instructions, r.cfg.Messages-r.res.Lost,
		benchCPU, r.cfg.Messages, r.baselineCPU, baselinePasses*r.cfg.Messages)
	return nil
}

// loadProcs is GOMAXPROCS while the load runs. Herald is the bottleneck
// then, and the bench process mostly waits: with a second P, the Go
// scheduler woke a spinning thread for nearly every request and answer
// that came in, which cost the machine about a tenth of the load
// generator's CPU; one P is enough for the clients and the receiver, and
// leaves the rest to Herald. The baseline keeps every core: it measures
// how fast the machine can exchange.
const loadProcs = 1

// settleWait bounds the wait at the end for the leader to record the
// outcome of deliveries the receiver already had.
const settleWait = 10 * time.Second

// end records what is pending and the servers' memory at the end. Pending
// is read once it is down to the backlog, or after settleWait.
func (r *run) end(ctx context.Context, cl *Cluster, client *Client) error {
	deadline := time.Now().Add(settleWait)
	for {
		lead, err := cl.Leader(ctx)
		if err != nil {
			return err
		}
		if r.res.PendingAtEnd, _, err = leaderFigures(ctx, client, lead); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if r.res.PendingAtEnd <= r.cfg.Backlog || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	var err error
	if r.res.EndMemory, err = memoryNow(ctx, cl, client); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// profile starts a CPU profile of the leader in the background; stop waits
// for it and writes it to ProfileDir.
func (r *run) profile(ctx context.Context, cl *Cluster) (stop func(), err error) {
	lead, err := cl.Leader(ctx)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("cpu-%s-%d.prof", r.cfg.Scenario, r.cfg.Nodes))
	done := make(chan struct{})
	go func() {
		defer close(done)
		url := "http://" + cl.Nodes[lead].DebugAddr + "/debug/pprof/profile?seconds=5"
		resp, err := http.Get(url)
		if err != nil {
			fmt.Fprintf(r.cfg.Progress, "profile: %v\n", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(r.cfg.Progress, "profile: %v\n", err)
			return
		}
		defer f.Close()
		io.Copy(f, resp.Body)
	}()
	return func() { <-done }, nil
}
