package delivery

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// The scheduler runs in a synctest bubble over a real store: time is the
// bubble's fake clock, outcomes are applied to the store as the leader's
// commits would be, and the receivers are a fake transport.

// harness is a Deliverer over a real store, leading.
type harness struct {
	t     *testing.T
	st    *store.Store
	dl    *Deliverer
	mu    sync.Mutex // serializes Apply, as Raft does
	index uint64
	// respond answers an attempt; host is the request's host.
	respond func(r *http.Request) (*http.Response, error)

	reqMu sync.Mutex
	hosts []string // the host of every request, in order
}

type staticSigners struct{}

func (staticSigners) Endpoint(*store.Endpoint, time.Time) (signer.Signer, error) {
	return signer.NewHMAC("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
}

func (staticSigners) Override(string) (signer.Signer, error) {
	return signer.NewHMAC("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
}

func (h *harness) RoundTrip(r *http.Request) (*http.Response, error) {
	h.reqMu.Lock()
	h.hosts = append(h.hosts, r.URL.Host)
	h.reqMu.Unlock()
	return h.respond(r)
}

func (h *harness) requests() []string {
	h.reqMu.Lock()
	defer h.reqMu.Unlock()
	return append([]string(nil), h.hosts...)
}

func ok(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// newHarness opens a store and a Deliverer with the given limits, and
// starts a term.
func newHarness(t *testing.T, maxInflight, concurrency int) *harness {
	return newHarnessWith(t, maxInflight, concurrency, nil)
}

// newHarnessWith is newHarness with the Deliverer's Config changed by
// modify before it starts.
func newHarnessWith(t *testing.T, maxInflight, concurrency int, modify func(*harness, *Config)) *harness {
	h := &harness{t: t, respond: ok}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true, OnApplied: func(a store.Applied) {
		if h.dl != nil {
			h.dl.Observe(a.Scheduled)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	cfg := Config{
		Store: st, Signers: staticSigners{}, Transport: h,
		Commit: func(_ context.Context, out store.Outcome) error {
			h.apply(store.Command{Outcome: &out})
			return nil
		},
		Schedule: []time.Duration{time.Hour}, AttemptTimeout: 10 * time.Second,
		Concurrency: concurrency, MaxInflight: maxInflight,
		// No breaker, nor auto-disable: these tests are about turns.
		BreakerFailures: 1 << 30, BreakerPeriod: 24 * time.Hour, DisableAfter: 24 * time.Hour,
		Now: time.Now, Logger: slog.New(slog.DiscardHandler),
	}
	if modify != nil {
		modify(h, &cfg)
	}
	if h.dl, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); h.dl.Run(stop) }()
	if err := h.dl.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.dl.End()
		close(stop)
		<-done
		st.Close()
	})
	return h
}

func (h *harness) apply(cmds ...store.Command) {
	h.t.Helper()
	data, err := store.EncodeBatch(cmds)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.index++
	res, err := h.st.Apply([]store.Entry{{Index: h.index, Data: data}})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range res[0] {
		if r.Err != nil {
			h.t.Fatal(r.Err)
		}
	}
}

// endpoint registers an endpoint at https://host/ subscribed to typ.
func (h *harness) endpoint(host, typ string) {
	id, err := store.NewID("ep", time.Now(), rand.Reader)
	if err != nil {
		h.t.Fatal(err)
	}
	now := time.Now().UnixNano()
	h.apply(store.Command{CreateEndpoint: &store.CreateEndpoint{Endpoint: store.Endpoint{ID: id, Tenant: store.DefaultTenant,
		URL: "https://" + host + "/", EventTypes: []string{typ}, State: store.StateEnabled,
		Secrets: []store.Secret{{Key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, CreatedAt: now, UpdatedAt: now}}})
}

// enqueue commits n messages of type typ, in one entry.
func (h *harness) enqueue(typ string, n int) { h.apply(h.messages(typ, n)...) }

// messages makes n Enqueue commands of type typ.
func (h *harness) messages(typ string, n int) []store.Command {
	var cmds []store.Command
	for range n {
		id, err := store.NewID("msg", time.Now(), rand.Reader)
		if err != nil {
			h.t.Fatal(err)
		}
		cmds = append(cmds, store.Command{Enqueue: &store.Enqueue{Tenant: store.DefaultTenant, ID: id, Type: typ,
			CreatedAt: time.Now().UnixNano(), Envelope: []byte(`{"type":"` + typ + `","data":{}}`)}})
	}
	return cmds
}

// TestWindowIsBounded: a destination with a thousand due deliveries whose
// receiver hangs has at most Concurrency attempts in flight and at most a
// window of due deliveries read into memory.
func TestWindowIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1024, 8)
		var inFlight, most atomic.Int64
		h.respond = func(r *http.Request) (*http.Response, error) {
			n := inFlight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-r.Context().Done()
			inFlight.Add(-1)
			return nil, r.Context().Err()
		}
		h.endpoint("a.example", "a")
		h.enqueue("a", 1000)
		time.Sleep(time.Second)
		synctest.Wait()
		st := h.dl.Stats()
		if st.InFlight != 8 || most.Load() != 8 {
			t.Errorf("%d attempts in flight (most %d), want Concurrency 8", st.InFlight, most.Load())
		}
		if st.Windowed > windowSize || st.Destinations != 1 {
			t.Errorf("schedule holds %+v: over a window of %d", st, windowSize)
		}
		// As attempts time out, the window is read again: every delivery
		// is attempted once, in due order.
		time.Sleep(1000 / 8 * 10 * time.Second)
		synctest.Wait()
		if n := len(h.requests()); n != 1000 {
			t.Errorf("%d attempts after every delivery's turn, want 1000", n)
		}
	})
}

// TestDestinationsTakeTurns: with one attempt slot, a destination with one
// due delivery goes second, not after another's backlog.
func TestDestinationsTakeTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1, 32)
		h.endpoint("big.example", "big")
		h.endpoint("small.example", "small")
		// In one entry, so that neither has a head start.
		h.apply(append(h.messages("big", 300), h.messages("small", 1)...)...)
		time.Sleep(time.Second)
		synctest.Wait()
		reqs := h.requests()
		if len(reqs) != 301 {
			t.Fatalf("%d attempts, want 301", len(reqs))
		}
		for i, host := range reqs {
			if host == "small.example" {
				if i > 1 {
					t.Errorf("small.example went %d-th, after %d of big.example's", i+1, i)
				}
				return
			}
		}
	})
}

// gatedReader runs gate before each read of a window.
type gatedReader struct {
	*store.Store
	gate func()
}

func (g gatedReader) QueueDue(queue string, upTo int64, limit int, skip func([]byte) bool) (*store.QueueWindow, error) {
	g.gate()
	return g.Store.QueueDue(queue, upTo, limit, skip)
}

// TestReadDuringReleaseIsRepeated: a failed attempt's outcome is committed
// with its retry due at once, and the window read that this starts is
// still on its way when the delivery is let go (so the read skipped it as
// held). The queue must be read again, not dropped as empty: the retry is
// made.
func TestReadDuringReleaseIsRepeated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hold atomic.Bool
		reading := make(chan struct{}) // closed when the gated read starts
		release := make(chan struct{}) // closed to let it go on
		h := newHarnessWith(t, 16, 4, func(h *harness, c *Config) {
			c.Store = gatedReader{Store: h.st, gate: func() {
				if hold.CompareAndSwap(true, false) {
					close(reading)
					<-release
				}
			}}
			c.Schedule = []time.Duration{time.Millisecond, time.Hour}
			c.Commit = func(_ context.Context, out store.Outcome) error {
				if out.Attempt == 1 {
					hold.Store(true)
					h.apply(store.Command{Outcome: &out})
					<-reading // the retry's read is on its way; then let go
					return nil
				}
				h.apply(store.Command{Outcome: &out})
				return nil
			}
		})
		var calls atomic.Int32
		h.respond = func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				return &http.Response{StatusCode: 500, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
			}
			return ok(r)
		}
		h.endpoint("a.example", "t")
		h.enqueue("t", 1)
		<-reading
		synctest.Wait() // the delivery is let go while the read waits
		close(release)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(h.requests()); n != 2 {
			t.Fatalf("%d attempts, want the retry made after the read that missed it", n)
		}
	})
}
