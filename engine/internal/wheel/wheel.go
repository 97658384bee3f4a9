// Package wheel is a hierarchical timing wheel: O(1) insertion and amortised
// O(1) expiry for the many timers of a retry schedule, spanning milliseconds
// to days with a few hundred slots.
//
// Time is counted in ticks. Level l has 64 slots of 64^l ticks each; a timer
// sits in the level of the highest base-64 digit in which its tick differs
// from the current tick (the scheme of William Ahern's timeout.c). As time
// advances, the slots passed over are emptied and their timers fire or drop
// to a finer level. The wheel is not safe for concurrent use.
package wheel

import (
	"math/bits"
	"time"
)

const (
	slotBits = 6
	slots    = 1 << slotBits
	levels   = 8 // 64^8 ticks: centuries at any sensible tick
)

// Timer is a scheduled item.
type Timer struct {
	ID  string
	Due time.Time
}

type entry struct {
	id  string
	due int64 // tick
}

// Wheel holds timers.
type Wheel struct {
	tick   time.Duration
	now    int64 // current tick
	ready  []entry
	slot   [levels][slots][]entry
	occ    [levels]uint64 // bit s set when slot s holds timers
	length int
}

// New returns a wheel whose current time is start, with the given
// resolution: timers fire on the first tick at or after their due time.
func New(start time.Time, tick time.Duration) *Wheel {
	return &Wheel{tick: tick, now: start.UnixNano() / int64(tick)}
}

// Len returns the number of timers in the wheel.
func (w *Wheel) Len() int { return w.length }

// Add schedules id at due. Timers already due fire at the next Advance.
func (w *Wheel) Add(id string, due time.Time) {
	t := due.UnixNano()
	tick := t / int64(w.tick)
	if t%int64(w.tick) != 0 && t > 0 {
		tick++ // round up: never fire early
	}
	w.insert(entry{id: id, due: tick})
	w.length++
}

func (w *Wheel) insert(e entry) {
	if e.due <= w.now {
		w.ready = append(w.ready, e)
		return
	}
	l := (bits.Len64(uint64(e.due^w.now)) - 1) / slotBits
	if l >= levels {
		l = levels - 1
	}
	s := int(e.due>>(slotBits*l)) & (slots - 1)
	if e.due-w.now >= int64(1)<<(slotBits*levels) {
		// Beyond the wheel's span: park in the last slot of the top level
		// and re-file it when that slot comes round.
		s = (int(w.now>>(slotBits*l)) - 1) & (slots - 1)
	}
	w.slot[l][s] = append(w.slot[l][s], e)
	w.occ[l] |= 1 << s
}

// Advance moves the wheel to now and calls fire for every timer due by
// then, in no particular order.
func (w *Wheel) Advance(now time.Time, fire func(Timer)) {
	target := now.UnixNano() / int64(w.tick)
	if target > w.now {
		var moved []entry
		for l := 0; l < levels; l++ {
			shift := uint(slotBits * l)
			from, to := w.now>>shift, target>>shift
			if from == to {
				break // coarser levels have not moved either
			}
			n := to - from
			if n > slots {
				n = slots
			}
			for i := int64(1); i <= n; i++ {
				s := int(from+i) & (slots - 1)
				if w.occ[l]&(1<<s) == 0 {
					continue
				}
				moved = append(moved, w.slot[l][s]...)
				w.slot[l][s] = w.slot[l][s][:0:0]
				w.occ[l] &^= 1 << s
			}
		}
		w.now = target
		for _, e := range moved {
			w.insert(e)
		}
	}
	ready := w.ready
	w.ready = nil
	w.length -= len(ready)
	for _, e := range ready {
		fire(Timer{ID: e.id, Due: time.Unix(0, e.due*int64(w.tick))})
	}
}

// Next returns when Advance next has work: a timer's due tick or the tick
// at which a coarser slot must be re-filed. ok is false when the wheel is
// empty.
func (w *Wheel) Next() (at time.Time, ok bool) {
	if len(w.ready) > 0 {
		return time.Unix(0, w.now*int64(w.tick)), true
	}
	best := int64(-1)
	for l := 0; l < levels; l++ {
		if w.occ[l] == 0 {
			continue
		}
		shift := uint(slotBits * l)
		cur := int(w.now>>shift) & (slots - 1)
		// Occupied slots after the current one in this lap, else (for
		// parked far timers) the earliest slot of the next lap.
		rot := bits.RotateLeft64(w.occ[l], -(cur + 1))
		d := bits.TrailingZeros64(rot) + 1 // slots ahead of cur
		tick := ((w.now >> shift) + int64(d)) << shift
		if best < 0 || tick < best {
			best = tick
		}
	}
	if best < 0 {
		return time.Time{}, false
	}
	return time.Unix(0, best*int64(w.tick)), true
}
