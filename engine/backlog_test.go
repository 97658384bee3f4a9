package engine

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests measure the heap, so they do not run in parallel (the
// parallel tests of the package start once they are done).

const (
	// backlogType is the event type of a backlog's messages, healthyType
	// that of the messages to a healthy endpoint next to it.
	backlogType = "backlog.queued"
	healthyType = "healthy.sent"
	// backlogWriters is how many goroutines enqueue a backlog: enough
	// that the engine commits it in large groups.
	backlogWriters = 256
)

// backlog is an engine whose one endpoint, subscribed to backlogType,
// takes an attempt a second and answers 503, each retried an hour later:
// what is enqueued for it stays pending.
type backlog struct {
	e   *Engine
	cfg Config
	rc  *receiver // the rate-limited endpoint's receiver
}

func openBacklog(tb testing.TB) *backlog {
	tb.Helper()
	cfg := Config{
		DataDir:              tb.TempDir(),
		RaftAddr:             "127.0.0.1:0",
		AllowPrivateNetworks: true,
		AttemptTimeout:       5 * time.Second,
		RetrySchedule:        []time.Duration{time.Hour},
		// No Logger: a test's buffered output would grow the heap.
	}
	b := &backlog{cfg: cfg}
	b.reopen(tb)
	tb.Cleanup(func() {
		if err := b.e.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	b.rc = newReceiver(tb, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mustCreateEndpoint(tb, b.e, EndpointInput{URL: b.rc.URL, EventTypes: []string{backlogType}, RateLimitPerS: 1})
	return b
}

// grow enqueues messages for the rate-limited endpoint until n are
// pending, and checks that the store counts them all.
func (b *backlog) grow(tb testing.TB, n int) {
	tb.Helper()
	b.enqueue(tb, backlogType, n-b.e.Stats().Scheduled)
	if got := b.e.Stats().Scheduled; got != n {
		tb.Fatalf("the store counts %d pending deliveries, want %d", got, n)
	}
}

// raftLogCache is how many of the latest Raft entries the cluster keeps
// in memory (cluster.Open's log cache).
const raftLogCache = 1024

// warm enqueues messages no endpoint subscribes to, in groups as large as
// grow's, until Raft's log cache is full: what it holds is bounded by its
// size, not by the backlog, and must not count as the backlog's growth.
func (b *backlog) warm(tb testing.TB) {
	tb.Helper()
	for b.e.Stats().AppliedIndex < raftLogCache+100 {
		b.enqueue(tb, "nobody.listens", 5000)
	}
}

// enqueue enqueues n messages of type typ from backlogWriters goroutines.
func (b *backlog) enqueue(tb testing.TB, typ string, n int) {
	tb.Helper()
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range backlogWriters {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, _, err := b.e.Enqueue(ctxb, MessageInput{Type: typ, Data: []byte(`{"order":12345}`)}); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatalf("Enqueue: %v", firstErr)
	}
}

// stop closes the engine.
func (b *backlog) stop(tb testing.TB) {
	tb.Helper()
	if err := b.e.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

// reopen opens an engine on the data dir (the previous one stopped); it
// returns how long it took from Open to delivering as leader. Unlike
// startEngine, it leaves nothing that keeps a stopped engine reachable, so
// that the heap measured is the open engine's alone.
func (b *backlog) reopen(tb testing.TB) time.Duration {
	tb.Helper()
	start := time.Now()
	e, err := Open(ctxb, b.cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	b.e = e
	waitFor(tb, 10*time.Second, "leadership", func() bool { return e.IsLeader() && e.delivering.Load() })
	return time.Since(start)
}

// liveHeap returns the bytes of live heap objects, after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// residentBytes returns the process's resident set (VmRSS), 0 where there
// is no /proc.
func residentBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// checkWindow fails unless the leader holds at most one window of the
// backlog, and knows of no more destinations than it has.
func checkWindow(tb testing.TB, e *Engine, destinations int) {
	tb.Helper()
	if s := e.deliver.Stats(); s.Windowed > 64 || s.Destinations > destinations {
		tb.Fatalf("the schedule holds %d deliveries of %d destinations, want at most one window (64) of %d",
			s.Windowed, s.Destinations, destinations)
	}
}

// maxBytesPerPending bounds the heap a pending delivery may add. Holding
// each one in memory, as the deliverer did before the due index (map
// entry, timing wheel timer, ids), took 300 bytes or more.
const maxBytesPerPending = 50

// The leader's heap does not grow with the backlog: from 10,000 pending
// deliveries to 150,000 (50,000 under the race detector) it grows by less
// than maxBytesPerPending each, while the store counts them all and the
// schedule holds one window. Raft's log cache is filled first, so that
// the baseline has it at its full (bounded) size.
func TestBacklogMemoryIsFlat(t *testing.T) {
	small, large := 10_000, 150_000
	if raceEnabled {
		large = 50_000
	}
	b := openBacklog(t)
	b.warm(t)
	b.grow(t, small)
	checkWindow(t, b.e, 1)
	before := liveHeap()

	start := time.Now()
	b.grow(t, large)
	t.Logf("enqueued %d messages in %v", large-small, time.Since(start).Round(time.Millisecond))
	checkWindow(t, b.e, 1)
	after := liveHeap()

	growth := int64(after) - int64(before)
	t.Logf("live heap: %.1f MB with %d pending, %.1f MB with %d (%+d bytes per extra pending delivery)",
		mb(before), small, mb(after), large, growth/int64(large-small))
	if limit := int64(maxBytesPerPending * (large - small)); growth > limit {
		t.Fatalf("the heap grew by %.1f MB for %d more pending deliveries, want under %.1f MB", mb(uint64(growth)), large-small, mb(uint64(limit)))
	}
}

// A node restarted with a large backlog on a rate-limited endpoint leads
// and delivers at once: the backlog's next due delivery, and a new
// message to a healthy endpoint, which does not wait behind the backlog.
func TestRestartWithBacklogDeliversNewMessageAtOnce(t *testing.T) {
	n := 50_000
	if raceEnabled {
		n = 20_000
	}
	b := openBacklog(t)
	healthy := newReceiver(t, nil)
	mustCreateEndpoint(t, b.e, EndpointInput{URL: healthy.URL, EventTypes: []string{healthyType}})
	b.grow(t, n)
	attempted := b.rc.count()

	b.stop(t)
	open := b.reopen(t)
	restarted := time.Now().Add(-open)
	t.Logf("with %d pending deliveries: %v from Open to delivering as leader", n, open.Round(time.Millisecond))
	if got := b.e.Stats().Scheduled; got != n {
		t.Fatalf("the restarted node counts %d pending deliveries, want %d", got, n)
	}

	sent := time.Now()
	m := mustEnqueue(t, b.e, MessageInput{Type: healthyType})
	waitFor(t, 10*time.Second, "the new message's delivery", func() bool { return healthy.count() == 1 })
	t.Logf("new message delivered %v after its enqueue, %v after Open",
		time.Since(sent).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	waitStatus(t, b.e, m.ID, "succeeded")

	waitFor(t, 10*time.Second, "the backlog's next attempt", func() bool { return b.rc.count() > attempted })
	t.Logf("the backlog's next attempt came %v after Open", b.rc.requests()[attempted].At.Sub(restarted).Round(time.Millisecond))
	checkWindow(t, b.e, 2)
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// BenchmarkBacklog measures a node holding a backlog of pending
// deliveries, for each size in HERALD_BACKLOG_SIZES (a comma-separated
// list; default 100000): the live heap of the leader that took the
// backlog (fill-heap-MB) and of a restarted one (heap-MB), the resident
// set and the state file's size, and, as ns/op, the time from opening a
// restarted node to its first delivery of a new message to a healthy
// endpoint (open-ms/op of it until the node leads). The backlog is
// enqueued once per size, untimed; each iteration restarts the node, so
// pass -benchtime as a count (3x).
func BenchmarkBacklog(b *testing.B) {
	sizes := []int{100_000}
	if s := os.Getenv("HERALD_BACKLOG_SIZES"); s != "" {
		sizes = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("HERALD_BACKLOG_SIZES=%q: want a comma-separated list of counts", s)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			bl := openBacklog(b)
			healthy := newReceiver(b, nil)
			mustCreateEndpoint(b, bl.e, EndpointInput{URL: healthy.URL, EventTypes: []string{healthyType}})
			start := time.Now()
			bl.grow(b, n)
			b.Logf("enqueued %d messages in %v", n, time.Since(start).Round(time.Millisecond))
			fillHeap := liveHeap()

			var open time.Duration
			for b.Loop() { // the function runs once: the backlog is made once
				b.StopTimer()
				bl.stop(b)
				b.StartTimer()
				open += bl.reopen(b)
				want := healthy.count() + 1
				mustEnqueue(b, bl.e, MessageInput{Type: healthyType})
				for healthy.count() < want {
					time.Sleep(time.Millisecond) // polling interval
				}
			}
			b.StopTimer()
			checkWindow(b, bl.e, 2)
			b.ReportMetric(float64(open.Milliseconds())/float64(b.N), "open-ms/op")
			b.ReportMetric(mb(fillHeap), "fill-heap-MB")
			b.ReportMetric(mb(liveHeap()), "heap-MB")
			b.ReportMetric(float64(residentBytes())/(1<<20), "rss-MB")
			b.ReportMetric(float64(bl.e.Stats().StoreBytes)/(1<<20), "state-MB")
		})
	}
}
