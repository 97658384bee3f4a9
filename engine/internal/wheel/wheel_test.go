package wheel

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// TestWheelMatchesNaive drives the wheel with random timers and random
// advances, and checks each fires exactly once, at the first Advance whose
// time reaches its due tick.
func TestWheelMatchesNaive(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed))
			const tick = 10 * time.Millisecond
			w := New(epoch, tick)
			now := epoch
			due := map[string]time.Time{}
			spans := []time.Duration{50 * time.Millisecond, 5 * time.Second, 10 * time.Minute, 30 * time.Hour, 400 * 24 * time.Hour}
			for step := 0; step < 2000; step++ {
				if r.IntN(3) > 0 {
					id := fmt.Sprintf("t%d", step)
					span := spans[r.IntN(len(spans))]
					d := now.Add(time.Duration(r.Int64N(int64(span))) - span/10)
					due[id] = d
					w.Add(id, d)
				}
				if next, ok := w.Next(); ok && r.IntN(2) == 0 {
					now = next // jump straight to the next event, as the scheduler does
				} else {
					now = now.Add(time.Duration(r.Int64N(int64(spans[r.IntN(len(spans))]))))
				}
				w.Advance(now, func(tm Timer) {
					want, ok := due[tm.ID]
					if !ok {
						t.Fatalf("%s fired twice or never added", tm.ID)
					}
					if want.After(now) {
						t.Fatalf("%s fired at %v, due %v", tm.ID, now, want)
					}
					delete(due, tm.ID)
				})
				for id, d := range due {
					if !d.Truncate(tick).Add(tick).After(now) {
						t.Fatalf("%s due %v not fired by %v", id, d, now)
					}
				}
				if w.Len() != len(due) {
					t.Fatalf("Len = %d, want %d", w.Len(), len(due))
				}
			}
		})
	}
}

// TestNextNeverOvershoots checks that Next never reports a time later than
// the earliest due timer, so a scheduler sleeping until Next is never late.
func TestNextNeverOvershoots(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w := New(epoch, time.Millisecond)
	var dues []time.Time
	for i := 0; i < 500; i++ {
		d := epoch.Add(time.Duration(r.Int64N(int64(48 * time.Hour))))
		dues = append(dues, d)
		w.Add(fmt.Sprint(i), d)
	}
	sort.Slice(dues, func(i, j int) bool { return dues[i].Before(dues[j]) })
	now := epoch
	fired := 0
	for w.Len() > 0 {
		next, ok := w.Next()
		if !ok {
			t.Fatal("Next reports empty while timers remain")
		}
		if next.After(dues[fired].Add(time.Millisecond)) {
			t.Fatalf("Next = %v, but a timer is due at %v", next, dues[fired])
		}
		if !next.After(now) && fired < len(dues) && dues[fired].After(now) {
			t.Fatalf("Next = %v does not move past now %v", next, now)
		}
		now = next
		w.Advance(now, func(Timer) { fired++ })
	}
	if fired != len(dues) {
		t.Fatalf("fired %d, want %d", fired, len(dues))
	}
	if _, ok := w.Next(); ok {
		t.Fatal("Next reports work on an empty wheel")
	}
}

func BenchmarkAddAdvance(b *testing.B) {
	w := New(epoch, 10*time.Millisecond)
	now := epoch
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprint("dlv_", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w.Add(ids[i%len(ids)], now.Add(time.Duration(i%4096)*time.Millisecond))
		if i%64 == 0 {
			now = now.Add(10 * time.Millisecond)
			w.Advance(now, func(Timer) {})
		}
	}
}
