package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// okTransport answers every attempt 200 at once, without a network.
type okTransport struct{ n *atomic.Int64 }

func (t okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	t.n.Add(1)
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

// benchType is the event type of the benchmarks' messages.
const benchType = "bench.done"

// benchTarget is an engine with one endpoint in the default tenant and a
// counter of its deliveries.
type benchTarget struct {
	e         *Engine
	url       string // the receiver's base URL
	delivered atomic.Int64
}

// openBenchTarget opens an engine that delivers to a loopback receiver
// ("loopback") or to okTransport ("fake-transport"), and registers one
// endpoint subscribed to every type. It closes when tb ends.
func openBenchTarget(tb testing.TB, mode string) *benchTarget {
	tb.Helper()
	t := &benchTarget{url: "http://receiver.invalid"}
	t.e = openEngine(tb, func(c *Config) {
		c.Logger = nil
		if mode == "fake-transport" {
			c.Transport = okTransport{&t.delivered}
		}
	})
	if mode == "loopback" {
		t.url = newReceiver(tb, func(int, http.ResponseWriter, *http.Request) { t.delivered.Add(1) }).URL
	}
	if _, err := t.e.CreateEndpoint(context.Background(), EndpointInput{URL: t.url + "/hook"}); err != nil {
		tb.Fatal(err)
	}
	return t
}

// send enqueues n 1 KiB messages from 48 goroutines and waits until the
// receiver has them all.
func (t *benchTarget) send(n int) error {
	ctx := context.Background()
	data := json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 1000)))
	start := t.delivered.Load() // an engine may serve several rounds
	var next atomic.Int64
	errs := make(chan error, 48)
	var wg sync.WaitGroup
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, _, err := t.e.Enqueue(ctx, MessageInput{Type: benchType, Data: data}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for t.delivered.Load()-start < int64(n) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling interval
	}
	if got := t.delivered.Load() - start; got != int64(n) {
		return fmt.Errorf("%d of %d messages delivered", got, n)
	}
	return nil
}

// run sends b.N messages with the timer running and reports msgs/s and,
// where /proc is, the process's CPU per message.
func (t *benchTarget) run(b *testing.B) {
	stopProfile := profileTimed(b)
	cpu0, cpuOK := processCPU()
	b.ResetTimer()
	err := t.send(b.N)
	b.StopTimer()
	stopProfile()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if cpu1, ok := processCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
	}
}

// profileTimed starts a CPU profile of the timed part when
// HERALD_BENCH_CPUPROFILE names a directory (go test -cpuprofile also
// covers the setup, which for BenchmarkEnqueueToDeliveryTenants is most of
// the run): one file per sub-benchmark round, named after it and b.N.
func profileTimed(b *testing.B) (stop func()) {
	dir := os.Getenv("HERALD_BENCH_CPUPROFILE")
	if dir == "" || b.N == 1 { // the first round only sizes the next
		return func() {}
	}
	name := strings.NewReplacer("/", "_", "=", "-").Replace(b.Name())
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.prof", name, b.N)))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatalf("HERALD_BENCH_CPUPROFILE: %v (not with -cpuprofile)", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// processCPU returns the user and system CPU time of this process (every
// thread: the engine, the writers and the receiver alike), from
// /proc/self/stat. Less disturbed than ns/op by other processes on the
// machine, it is what to compare when they are busy. ok is false where
// there is no /proc.
func processCPU() (cpu time.Duration, ok bool) {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// utime and stime, in USER_HZ (100 on every Linux Go supports), are
	// the 14th and 15th fields, the 12th and 13th after the command name.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// BenchmarkEnqueueToDelivery measures the whole path in one process: 48
// concurrent enqueues of 1 KiB messages through Raft and bbolt, and their
// delivery. ns/op is per message. "loopback" delivers over HTTP to a local
// receiver; "fake-transport" isolates Herald's own cost (Raft, bbolt,
// scheduling, dispatch, signing) from the network's.
func BenchmarkEnqueueToDelivery(b *testing.B) {
	for _, mode := range []string{"loopback", "fake-transport"} {
		b.Run(mode, func(b *testing.B) {
			openBenchTarget(b, mode).run(b)
		})
	}
}

// Other tenants of BenchmarkEnqueueToDeliveryTenants, and the messages
// it sends before timing.
const (
	benchOtherTenants   = 50_000
	benchOtherPerTenant = 2
	benchWarmup         = 5000
)

// BenchmarkEnqueueToDeliveryTenants is BenchmarkEnqueueToDelivery with the
// one endpoint of the default tenant alone ("alone") and next to 100,000
// endpoints of 50,000 other tenants ("others=100000"), two each,
// subscribed to the messages' type and never delivered to, since a
// message fans out only within its tenant. Their creation (2–3 s on two
// idle cores) is not timed and is done once: an engine serves every round
// of its sub-benchmark, so pass -benchtime as a count (20000x) for a
// single measured round. Each engine first delivers benchWarmup untimed
// messages, so that both variants start with their files and heap grown.
// HERALD_BENCH_OTHER_TENANTS changes the number of other tenants (0 skips
// the variant); HERALD_BENCH_CPUPROFILE profiles the timed part alone.
func BenchmarkEnqueueToDeliveryTenants(b *testing.B) {
	others := benchOtherTenants
	if s := os.Getenv("HERALD_BENCH_OTHER_TENANTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("HERALD_BENCH_OTHER_TENANTS=%q: want a count of tenants", s)
		}
		others = n
	}
	counts := []int{0}
	if others > 0 {
		counts = append(counts, others)
	}
	for _, mode := range []string{"loopback", "fake-transport"} {
		for _, tenants := range counts {
			name := mode + "/alone"
			if tenants > 0 {
				name = fmt.Sprintf("%s/others=%d", mode, tenants*benchOtherPerTenant)
			}
			var t *benchTarget // made in the first round, used by all
			b.Run(name, func(sub *testing.B) {
				if t == nil {
					t = openBenchTarget(outliving{sub, b}, mode)
					start := time.Now()
					if err := createOtherEndpoints(context.Background(), t.e, tenants, benchOtherPerTenant, t.url+"/never"); err != nil {
						sub.Fatal(err)
					}
					if tenants > 0 {
						sub.Logf("created %d endpoints in %d tenants in %v", tenants*benchOtherPerTenant, tenants,
							time.Since(start).Round(time.Millisecond))
					}
					if err := t.send(benchWarmup); err != nil {
						sub.Fatal(err)
					}
				}
				t.run(sub)
			})
			if t != nil {
				t.e.Close() // before the next variant's engine opens
			}
		}
	}
}

// outliving is a sub-benchmark's TB whose cleanups and temporary
// directories belong to the parent benchmark, so that what it opens
// outlives the round (a sub-benchmark cleans up after each round).
type outliving struct {
	testing.TB
	parent testing.TB
}

func (o outliving) Cleanup(f func()) { o.parent.Cleanup(f) }
func (o outliving) TempDir() string  { return o.parent.TempDir() }

// createOtherEndpoints creates perTenant endpoints subscribed to benchType
// in each of n tenants other than the default, from enough goroutines that
// the engine commits them in large groups. Half the tenants sort before
// "default" and half after, so its index keys sit among theirs.
func createOtherEndpoints(ctx context.Context, e *Engine, n, perTenant int, url string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range 1024 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n*perTenant) && ctx.Err() == nil; i = next.Add(1) - 1 {
				t := i / int64(perTenant)
				tenant := fmt.Sprintf("%c-tenant-%06d", "cz"[t%2], t)
				in := EndpointInput{Tenant: tenant, URL: url, EventTypes: []string{benchType}}
				if _, err := e.CreateEndpoint(ctx, in); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("create endpoint %d in %s: %w", i, tenant, err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
