package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Reads run in short read transactions of their own; none is held across
// calls, so bbolt can reuse freed pages.

// Message returns a message and its deliveries.
func (s *Store) Message(id string) (*Message, []Delivery, error) {
	var m Message
	var ds []Delivery
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getRecord(tx.Bucket(bMessages), id, &m)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		ds, err = deliveriesOf(tx, &m)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &m, ds, nil
}

func deliveriesOf(tx *bolt.Tx, m *Message) ([]Delivery, error) {
	b := tx.Bucket(bDeliveries)
	ds := make([]Delivery, 0, len(m.Deliveries))
	for _, id := range m.Deliveries {
		var d Delivery
		ok, err := getRecord(b, id, &d)
		if err != nil {
			return nil, err
		}
		if ok {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// ListMessages returns up to limit messages, newest first, starting after
// the message id after (exclusive; empty starts at the newest). When status
// is set only messages with that aggregate status are returned.
func (s *Store) ListMessages(status string, limit int, after string) ([]Message, error) {
	var out []Message
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bMessages).Cursor()
		var k, v []byte
		if after == "" {
			k, v = c.Last()
		} else {
			k, v = c.Seek([]byte(after))
			if k == nil {
				k, v = c.Last()
			}
			if k != nil && bytes.Compare(k, []byte(after)) >= 0 {
				k, v = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var m Message
			if err := decode(v, &m); err != nil {
				return err
			}
			if status == "" || m.Status() == status {
				out = append(out, m)
			}
		}
		return nil
	})
	return out, err
}

// Envelope returns the exact body stored for a message.
func (s *Store) Envelope(messageID string) ([]byte, error) {
	var body []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bEnvelopes).Get([]byte(messageID))
		if v == nil {
			return ErrNotFound
		}
		body = bytes.Clone(v)
		return nil
	})
	return body, err
}

// AttemptView is what a worker needs to make one attempt of a delivery.
type AttemptView struct {
	Delivery Delivery
	Envelope []byte
	// Endpoint is nil for override deliveries.
	Endpoint *Endpoint
}

// ForAttempt reads a delivery with its envelope and endpoint in one
// transaction. It returns ErrNotFound when any of them is gone.
func (s *Store) ForAttempt(deliveryID string) (*AttemptView, error) {
	var a AttemptView
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getRecord(tx.Bucket(bDeliveries), deliveryID, &a.Delivery)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		v := tx.Bucket(bEnvelopes).Get([]byte(a.Delivery.MessageID))
		if v == nil {
			return ErrNotFound
		}
		a.Envelope = bytes.Clone(v)
		if a.Delivery.Override() {
			return nil
		}
		a.Endpoint = new(Endpoint)
		ok, err = getRecord(tx.Bucket(bEndpoints), a.Delivery.EndpointID, a.Endpoint)
		if err != nil {
			return err
		}
		if !ok {
			a.Endpoint = nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Due is a pending delivery's next attempt time.
type Due struct {
	DeliveryID string
	At         int64
	// Queue names the delivery's destination (see Delivery.Queue).
	Queue string
}

// DuePage returns up to limit pending deliveries in due-time order, starting
// after the given one (zero Due starts at the earliest). Callers page through
// the index instead of holding one long transaction.
func (s *Store) DuePage(after Due, limit int) ([]Due, error) {
	var out []Due
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bDue).Cursor()
		var k, v []byte
		if after.DeliveryID == "" {
			k, v = c.First()
		} else {
			start := dueKey(after.At, after.DeliveryID)
			k, v = c.Seek(start)
			if k != nil && bytes.Equal(k, start) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			out = append(out, Due{DeliveryID: string(k[8:]), At: int64(binary.BigEndian.Uint64(k[:8])), Queue: string(v)})
		}
		return nil
	})
	return out, err
}

// Endpoint returns one endpoint.
func (s *Store) Endpoint(id string) (*Endpoint, error) {
	var ep Endpoint
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getRecord(tx.Bucket(bEndpoints), id, &ep)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ep, nil
}

// Endpoints returns every endpoint in id order.
func (s *Store) Endpoints() ([]Endpoint, error) { return all[Endpoint](s, bEndpoints) }

// SigningKeys returns every signing key, live and retired, in id order.
func (s *Store) SigningKeys() ([]SigningKey, error) { return all[SigningKey](s, bKeys) }

// Nodes returns the known cluster nodes in id order.
func (s *Store) Nodes() ([]Node, error) { return all[Node](s, bNodes) }

// all decodes every record of a bucket, in key order.
func all[T any](s *Store, bucket []byte) ([]T, error) {
	var out []T
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			var rec T
			if err := decode(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// IdempotentMessage returns the message id recorded for an idempotency key
// that is still live at now.
func (s *Store) IdempotentMessage(key string, now int64) (string, bool, error) {
	var rec idempotencyRecord
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		ok, err = getRecord(tx.Bucket(bIdempotency), key, &rec)
		return err
	})
	if err != nil || !ok || rec.ExpiresAt <= now {
		return "", false, err
	}
	return rec.MessageID, true, nil
}

// Check verifies the store's invariants: every message's counters match its
// deliveries, and the due and per-endpoint indexes hold exactly the pending
// deliveries. Tests run it after every scenario.
func (s *Store) Check() error {
	return s.view(func(tx *bolt.Tx) error {
		wantDue := map[string]bool{}
		wantByEp := map[string]bool{}
		err := tx.Bucket(bMessages).ForEach(func(k, v []byte) error {
			var m Message
			if err := decode(v, &m); err != nil {
				return err
			}
			ds, err := deliveriesOf(tx, &m)
			if err != nil {
				return err
			}
			if len(ds) != len(m.Deliveries) {
				return fmt.Errorf("store: message %s lists %d deliveries, %d exist", m.ID, len(m.Deliveries), len(ds))
			}
			var count Message
			for _, d := range ds {
				count.count(d.Status, 1)
				if d.Status == StatusPending {
					wantDue[string(dueKey(d.NextAttemptAt, d.ID))] = true
					if !d.Override() {
						wantByEp[string(byEndpointKey(d.EndpointID, d.ID))] = true
					}
				}
			}
			if count.Pending != m.Pending || count.Succeeded != m.Succeeded || count.Failed != m.Failed || count.Cancelled != m.Cancelled {
				return fmt.Errorf("store: message %s counters %d/%d/%d/%d, deliveries say %d/%d/%d/%d", m.ID,
					m.Pending, m.Succeeded, m.Failed, m.Cancelled, count.Pending, count.Succeeded, count.Failed, count.Cancelled)
			}
			if tx.Bucket(bEnvelopes).Get(k) == nil {
				return fmt.Errorf("store: message %s has no envelope", m.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := sameKeys(tx.Bucket(bDue), wantDue, "due"); err != nil {
			return err
		}
		return sameKeys(tx.Bucket(bByEndpoint), wantByEp, "by_endpoint")
	})
}

func sameKeys(b *bolt.Bucket, want map[string]bool, name string) error {
	n := 0
	err := b.ForEach(func(k, _ []byte) error {
		if !want[string(k)] {
			return fmt.Errorf("store: stray %s index entry %q", name, k)
		}
		n++
		return nil
	})
	if err == nil && n != len(want) {
		err = fmt.Errorf("store: %s index has %d entries, want %d", name, n, len(want))
	}
	return err
}

// Dump returns every bucket's contents, for tests that compare replicas.
func (s *Store) Dump() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			m := map[string]string{}
			if err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				m[string(k)] = string(v)
				return nil
			}); err != nil {
				return err
			}
			out[string(name)] = m
		}
		return nil
	})
	return out, err
}
