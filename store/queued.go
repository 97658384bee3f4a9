package store

import (
	"bytes"
	"encoding/binary"
	"net/url"

	bolt "go.etcd.io/bbolt"
)

// The due index orders each destination's pending deliveries by due time:
// queue ‖ 0 ‖ be64(next attempt) ‖ dlv id → ∅ (bucket queued). The leader
// keeps only a window of each queue in memory and refills it from here,
// so its memory does not grow with the backlog.

// Due is a pending delivery's next attempt time.
type Due struct {
	DeliveryID string
	At         int64
	// Queue names the delivery's destination (see Delivery.Queue).
	Queue string
}

// queuePrefix is what every due index key of queue begins with.
func queuePrefix(queue string) []byte { return append([]byte(queue), 0) }

func dueKey(queue string, at int64, dlvID string) []byte {
	k := make([]byte, 0, len(queue)+1+8+len(dlvID))
	k = append(append(k, queue...), 0)
	return append(binary.BigEndian.AppendUint64(k, uint64(at)), dlvID...)
}

// parseDueKey splits a due index key; ok is false for a malformed one.
func parseDueKey(k []byte) (d Due, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return Due{}, false
	}
	at, id, ok := dueTail(k[i+1:])
	return Due{Queue: string(k[:i]), At: at, DeliveryID: string(id)}, ok
}

// dueTail splits what follows queue ‖ 0 in a due index key.
func dueTail(tail []byte) (at int64, deliveryID []byte, ok bool) {
	if len(tail) < 8 {
		return 0, nil, false
	}
	return int64(binary.BigEndian.Uint64(tail)), tail[8:], true
}

// Queue names the destination whose queue the delivery waits in: its
// endpoint, or for an override URI its origin (scheme, host and port), so
// that many URIs on one server share that server's queue and limits.
func (d *Delivery) Queue() string {
	if !d.Override() {
		return d.EndpointID
	}
	return Origin(d.URL)
}

// Origin returns scheme://host:port of an absolute URL, with the scheme's
// default port made explicit; the URL itself when it does not parse.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + joinHostPort(u.Hostname(), port)
}

func joinHostPort(host, port string) string {
	if bytes.IndexByte([]byte(host), ':') >= 0 {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// QueueHeads returns the earliest pending delivery of each destination,
// up to limit destinations in name order after the named one ("" starts at
// the first). A new leader pages through it to learn what to schedule.
func (s *Store) QueueHeads(after string, limit int) ([]Due, error) {
	var out []Due
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bQueued).Cursor()
		k, _ := c.First()
		if after != "" {
			k, _ = c.Seek(append([]byte(after), 1)) // past every key of after ‖ 0 ‖ …
		}
		for k != nil && len(out) < limit {
			d, ok := parseDueKey(k)
			if !ok {
				k, _ = c.Next()
				continue
			}
			out = append(out, d)
			k, _ = c.Seek(append([]byte(d.Queue), 1))
		}
		return nil
	})
	return out, err
}

// QueueWindow is what a destination's queue holds as of one read.
type QueueWindow struct {
	// Due is the deliveries due by the time asked for, earliest first.
	Due []Due
	// Next is the due time of the first delivery past them (beyond the
	// time asked for, or past the limit); 0 when there is none.
	Next int64
	// Endpoint is the queue's endpoint; nil for an override origin or an
	// endpoint deleted since.
	Endpoint *Endpoint
}

// QueueDue reads up to limit of the queue's deliveries due by upTo,
// earliest first, leaving out those skip names (the ones the caller holds
// already), and the queue's endpoint, in one transaction.
func (s *Store) QueueDue(queue string, upTo int64, limit int, skip func(deliveryID []byte) bool) (*QueueWindow, error) {
	var w QueueWindow
	err := s.view(func(tx *bolt.Tx) error {
		prefix := queuePrefix(queue)
		c := tx.Bucket(bQueued).Cursor()
		// Keys are parsed in place: most of a busy queue's are ones the
		// caller holds, skipped without a copy.
		for k, _ := seekPrefix(c, prefix); k != nil; k, _ = nextPrefix(c, prefix) {
			at, id, ok := dueTail(k[len(prefix):])
			if !ok || skip(id) {
				continue
			}
			if at > upTo || len(w.Due) == limit {
				w.Next = at
				break
			}
			w.Due = append(w.Due, Due{DeliveryID: string(id), At: at, Queue: queue})
		}
		ep := new(Endpoint)
		if ok, err := getRecord(tx.Bucket(bEndpoints), queue, ep); err != nil || !ok {
			return err
		}
		w.Endpoint = ep
		return nil
	})
	return &w, err
}

// Pending counts the pending deliveries of every tenant, from the tenants'
// counters: the backlog not yet delivered.
func (s *Store) Pending() (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bTenants).ForEach(func(_, v []byte) error {
			var tc Tenant
			if err := decode(v, &tc); err != nil {
				return err
			}
			n += tc.Pending
			return nil
		})
	})
	return n, err
}
