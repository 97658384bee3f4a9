package delivery

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald/store"
)

// The scheduler runs in a synctest bubble: time.Now and timers are the
// bubble's fake clock, so "fires at 100ms, not at 99ms" is exact and the
// tests take no real time.

// schedHarness runs a scheduler with a recording dispatch func.
type schedHarness struct {
	t     *testing.T
	s     *scheduler
	st    *store.Store
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	fired map[string][]time.Time // delivery id → fake times dispatched
}

func newSchedHarness(t *testing.T) *schedHarness {
	h := &schedHarness{t: t, s: newScheduler(time.Now), start: time.Now(), stop: make(chan struct{}),
		done: make(chan struct{}), fired: map[string][]time.Time{}}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true, OnApplied: func(a store.Applied) {
		if len(a.Scheduled) > 0 {
			h.s.observe(a.Scheduled)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	t.Cleanup(func() { st.Close() })
	h.s.dispatch = func(d store.Due) {
		h.mu.Lock()
		h.fired[d.DeliveryID] = append(h.fired[d.DeliveryID], time.Now())
		h.mu.Unlock()
	}
	go func() {
		defer close(h.done)
		h.s.run(h.stop)
	}()
	t.Cleanup(func() {
		close(h.stop)
		<-h.done
	})
	return h
}

func (h *schedHarness) activate() {
	h.t.Helper()
	if err := h.s.activate(context.Background(), h.st); err != nil {
		h.t.Fatalf("activate: %v", err)
	}
}

// at schedules id at start+offset through the store's hook, as a committed
// outcome would.
func (h *schedHarness) at(id string, offset time.Duration) {
	h.s.observe([]store.Due{{DeliveryID: id, At: h.start.Add(offset).UnixNano(), Queue: "q"}})
}

// advanceTo sleeps the bubble's clock to start+offset and lets every
// goroutine settle.
func (h *schedHarness) advanceTo(offset time.Duration) {
	h.t.Helper()
	if d := time.Until(h.start.Add(offset)); d > 0 {
		time.Sleep(d)
	}
	synctest.Wait()
}

// firings returns when id was dispatched, as offsets from start.
func (h *schedHarness) firings(id string) []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Duration
	for _, at := range h.fired[id] {
		out = append(out, at.Sub(h.start))
	}
	return out
}

func (h *schedHarness) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, f := range h.fired {
		n += len(f)
	}
	return n
}

func (h *schedHarness) expect(id string, want ...time.Duration) {
	h.t.Helper()
	got := h.firings(id)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		h.t.Errorf("%s dispatched at %v, want %v", id, got, want)
	}
}

func TestSchedulerFiresAtDueTimeNotBefore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t)
		h.activate()
		h.at("far", 23*time.Hour+59*time.Minute) // upper wheel levels
		h.at("now", 0)
		h.at("past", -time.Hour)
		synctest.Wait()
		h.expect("now", 0)
		h.expect("past", 0)

		// The run loop sleeps towards "far"; an earlier entry must wake it.
		h.at("a", 100*time.Millisecond)
		h.at("b", 105*time.Millisecond) // between ticks
		h.advanceTo(100*time.Millisecond - time.Nanosecond)
		h.expect("a")
		h.advanceTo(100 * time.Millisecond)
		h.expect("a", 100*time.Millisecond)
		h.expect("b")
		h.advanceTo(105*time.Millisecond + Resolution)
		if got := h.firings("b"); len(got) != 1 || got[0] < 105*time.Millisecond || got[0] >= 105*time.Millisecond+Resolution {
			t.Errorf("b (due 105ms) dispatched at %v, want once within a tick after its time", got)
		}

		h.at("8h", 8*time.Hour+7*time.Minute+25*time.Second)
		h.advanceTo(8*time.Hour + 7*time.Minute + 25*time.Second - time.Millisecond)
		h.expect("8h")
		h.advanceTo(8*time.Hour + 7*time.Minute + 25*time.Second)
		h.expect("8h", 8*time.Hour+7*time.Minute+25*time.Second)
		h.advanceTo(23*time.Hour + 58*time.Minute)
		h.expect("far")
		h.advanceTo(23*time.Hour + 59*time.Minute)
		h.expect("far", 23*time.Hour+59*time.Minute)
		if n := h.total(); n != 6 {
			t.Errorf("%d dispatches, want 6 (each entry once)", n)
		}
		if n := h.s.len(); n != 0 {
			t.Errorf("scheduler still holds %d entries", n)
		}
	})
}

func TestSchedulerRescheduledEntryFiresOnlyAtNewTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t)
		h.activate()
		h.at("later", 200*time.Millisecond)
		h.at("sooner", 400*time.Millisecond)
		synctest.Wait()
		h.at("later", 300*time.Millisecond)  // postponed (e.g. Retry-After)
		h.at("sooner", 350*time.Millisecond) // brought forward
		h.advanceTo(299 * time.Millisecond)
		h.expect("later")
		h.advanceTo(300 * time.Millisecond)
		h.expect("later", 300*time.Millisecond)
		h.advanceTo(350 * time.Millisecond)
		h.expect("sooner", 350*time.Millisecond)
		h.advanceTo(time.Second) // the stale timers at 200ms and 400ms passed
		h.expect("later", 300*time.Millisecond)
		h.expect("sooner", 350*time.Millisecond)

		// Dispatched, then scheduled again (the next retry): fires again.
		h.at("later", 2*time.Second)
		h.advanceTo(2 * time.Second)
		h.expect("later", 300*time.Millisecond, 2*time.Second)
	})
}

func TestSchedulerDeactivateStopsFiring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t)
		h.activate()
		h.at("x", 100*time.Millisecond)
		h.advanceTo(50 * time.Millisecond)
		h.s.deactivate() // leadership lost
		h.at("y", 150*time.Millisecond)
		h.advanceTo(time.Second)
		h.expect("x")
		h.expect("y")
		if n := h.s.len(); n != 0 {
			t.Fatalf("inactive scheduler holds %d entries", n)
		}
		// Leading again rebuilds from the store only; x and y were never
		// committed there, so nothing fires.
		h.activate()
		h.advanceTo(2 * time.Second)
		if n := h.total(); n != 0 {
			t.Fatalf("%d dispatches after deactivate", n)
		}
	})
}

// enqueue commits, straight to the store in one entry, n messages with one
// override delivery each, all due at createdAt (the store schedules new
// deliveries at their creation time), and returns their delivery ids.
func enqueue(t *testing.T, st *store.Store, index uint64, createdAt time.Time, n int) []string {
	t.Helper()
	cmds := make([]store.Command, n)
	ids := make([]string, n)
	for i := range cmds {
		id, err := store.NewID("msg", createdAt, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cmds[i] = store.Command{Enqueue: &store.Enqueue{ID: id, Type: "t", CreatedAt: createdAt.UnixNano(),
			Envelope: []byte(`{}`), URIs: []string{fmt.Sprintf("https://example.com/%d", i)}}}
		ids[i] = store.DeliveryID(id, 0)
	}
	data, err := store.EncodeBatch(cmds)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Apply([]store.Entry{{Index: index, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res[0] {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return ids
}

func TestSchedulerRebuildsFromStoreOnActivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newSchedHarness(t)
		// Committed while following: the scheduler is inactive and keeps
		// nothing, but the store's due index has them. More than one
		// rebuild page.
		const many = rebuildPage + 100
		for i, n := 0, 0; n < many; i++ {
			k := min(500, many-n)
			enqueue(t, h.st, uint64(i+1), h.start, k)
			n += k
		}
		later := enqueue(t, h.st, 100, h.start.Add(time.Minute), 1)[0]
		synctest.Wait()
		if n := h.total(); n != 0 {
			t.Fatalf("inactive scheduler dispatched %d", n)
		}
		h.advanceTo(time.Second)
		h.activate()
		synctest.Wait()
		h.mu.Lock()
		due := 0
		for id, at := range h.fired {
			if len(at) != 1 {
				t.Errorf("%s dispatched %d times", id, len(at))
			}
			due++
		}
		h.mu.Unlock()
		if due != many {
			t.Fatalf("%d deliveries dispatched on activate, want the %d already due", due, many)
		}
		h.expect(later)
		h.advanceTo(time.Minute)
		h.expect(later, time.Minute)
		if n := h.total(); n != many+1 {
			t.Fatalf("%d dispatches, want %d", n, many+1)
		}
	})
}
