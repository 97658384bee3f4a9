package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/heraldhq/herald/engine/internal/wheel"
	"github.com/heraldhq/herald/store"
)

// Resolution is the scheduler's resolution, its timing wheel's tick.
// Deliveries due now bypass the wheel entirely (they are ready at once);
// retries fire within a tick of their time.
const Resolution = 10 * time.Millisecond

// rebuildPage is how many due-index entries one read transaction loads when
// a new leader rebuilds its schedule.
const rebuildPage = 4096

// scheduler holds the leader's pending deliveries in a timing wheel and
// hands each to the dispatcher when it falls due. Followers keep it
// inactive and empty.
type scheduler struct {
	now      func() time.Time
	dispatch func(store.Due) // set once before run
	wake     chan struct{}   // buffered 1: nudges run after an add

	mu     sync.Mutex // guards active, wheel, due
	active bool
	wheel  *wheel.Wheel
	// due maps each scheduled delivery to its current due time and queue.
	// The wheel may hold stale timers for a delivery that was rescheduled
	// or loaded twice; only the one matching this map fires.
	due map[string]store.Due
}

func newScheduler(now func() time.Time) *scheduler {
	return &scheduler{now: now, wake: make(chan struct{}, 1)}
}

// observe takes deliveries committed with a new due time, from the store's
// apply hook. It never blocks the apply path.
func (s *scheduler) observe(dues []store.Due) {
	s.mu.Lock()
	if s.active {
		for _, d := range dues {
			s.addLocked(d)
		}
	}
	s.mu.Unlock()
	s.nudge()
}

func (s *scheduler) addLocked(d store.Due) {
	s.due[d.DeliveryID] = d
	s.wheel.Add(d.DeliveryID, time.Unix(0, d.At))
}

func (s *scheduler) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// activate starts a leadership term: an empty wheel, then every pending
// delivery from the store's due index, a page per read transaction.
// Deliveries committed meanwhile arrive through observe; duplicates are
// harmless.
func (s *scheduler) activate(ctx context.Context, st Reader) error {
	s.mu.Lock()
	if ctx.Err() != nil {
		// The term ended before it began: deactivate may have run already.
		s.mu.Unlock()
		return ctx.Err()
	}
	s.active = true
	s.wheel = wheel.New(s.now(), Resolution)
	s.due = map[string]store.Due{}
	s.mu.Unlock()
	var after store.Due
	for ctx.Err() == nil {
		page, err := st.DuePage(after, rebuildPage)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if !s.active {
			s.mu.Unlock()
			return nil
		}
		for _, d := range page {
			if _, ok := s.due[d.DeliveryID]; !ok {
				s.addLocked(d)
			}
		}
		s.mu.Unlock()
		s.nudge()
		if len(page) < rebuildPage {
			return nil
		}
		after = page[len(page)-1]
	}
	return ctx.Err()
}

// deactivate drops the schedule; nothing more is dispatched until the next
// activate.
func (s *scheduler) deactivate() {
	s.mu.Lock()
	s.active = false
	s.wheel = nil
	s.due = nil
	s.mu.Unlock()
}

func (s *scheduler) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.due)
}

// run fires due deliveries until stop is closed, sleeping until the wheel's
// next event or a nudge.
func (s *scheduler) run(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var fired []store.Due
	for {
		fired = fired[:0]
		wait := time.Duration(-1)
		s.mu.Lock()
		if s.active {
			now := s.now()
			s.wheel.Advance(now, func(t wheel.Timer) {
				d, ok := s.due[t.ID]
				if ok && d.At <= now.UnixNano() {
					delete(s.due, t.ID)
					fired = append(fired, d)
				}
			})
			if next, ok := s.wheel.Next(); ok {
				wait = max(next.Sub(now), 0)
			}
		}
		s.mu.Unlock()
		for _, d := range fired {
			s.dispatch(d)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-s.wake:
		case <-stop:
			return
		}
	}
}
