package store

import (
	"errors"
	"testing"
)

// An EnqueueBatch is one command in one entry: each message is accepted or
// rejected on its own, and idempotency keys hold within the batch too.
func TestEnqueueBatch(t *testing.T) {
	s := openTest(t)
	g := newIDs(7)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	day := ms(24 * 3600 * 1000)
	m1, m2 := g.next(t, "msg", t0), g.next(t, "msg", t0)
	bad := fanOut(g.next(t, "msg", t0), "x", t0)
	bad.Enqueue.Type = "no spaces"
	batch := []Enqueue{
		*withKey(fanOut(m1, "x", t0), "K", t0+day).Enqueue,
		*bad.Enqueue,
		*withKey(fanOut(g.next(t, "msg", t0), "x", t0), "K", t0+day).Enqueue, // the key again: m1
		*fanOut(m2, "x", t0).Enqueue,
	}
	before, err := s.AppliedIndex()
	if err != nil {
		t.Fatal(err)
	}
	r := runOK(t, s, Command{EnqueueBatch: &EnqueueBatch{Messages: batch}})[0]
	if after, _ := s.AppliedIndex(); after != before+1 {
		t.Errorf("applied index %d, want %d: one entry", after, before+1)
	}
	if len(r.Batch) != len(batch) {
		t.Fatalf("%d results for %d messages", len(r.Batch), len(batch))
	}
	if b := r.Batch[0]; b.Err != nil || b.Duplicate || b.MessageID != m1 || b.Count != 1 {
		t.Errorf("first message: %+v", b)
	}
	if invalidField(r.Batch[1].Err) != "enqueue.type" {
		t.Errorf("invalid message: %v", r.Batch[1].Err)
	}
	if b := r.Batch[2]; b.Err != nil || !b.Duplicate || b.MessageID != m1 {
		t.Errorf("the key again in the batch: %+v, want m1", b)
	}
	if b := r.Batch[3]; b.Err != nil || b.Duplicate || b.MessageID != m2 {
		t.Errorf("last message: %+v", b)
	}
	for _, id := range []string{m1, m2} {
		if _, _, err := s.Message(DefaultTenant, id); err != nil {
			t.Errorf("message %s: %v", id, err)
		}
	}

	for _, n := range []int{0, MaxBatchMessages + 1} {
		msgs := make([]Enqueue, n)
		for i := range msgs {
			msgs[i] = *fanOut(g.next(t, "msg", t0), "x", t0).Enqueue
		}
		r := run(t, s, Command{EnqueueBatch: &EnqueueBatch{Messages: msgs}})[0]
		var inv *InvalidError
		if !errors.As(r.Err, &inv) || inv.Field != "enqueue_batch.messages" || r.Batch != nil {
			t.Errorf("a batch of %d: %+v", n, r)
		}
	}
}
