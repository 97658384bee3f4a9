package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Reads run in short read transactions of their own; none is held across
// calls, so bbolt can reuse freed pages.
//
// The reads an API serves take the tenant they act for, and answer
// ErrNotFound for a record of another tenant, as for an unknown id, so
// that no caller can forget the check; an invalid tenant id is an
// *InvalidError (field "tenant"). The reads of the delivery machinery
// (ForAttempt, Envelope, DuePage) and of cluster state are not per tenant.

// Message returns one of the tenant's messages and its deliveries.
func (s *Store) Message(tenant, id string) (*Message, []Delivery, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, nil, err
	}
	var m Message
	var ds []Delivery
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getRecord(tx.Bucket(bMessages), id, &m)
		if err != nil {
			return err
		}
		if !ok || m.Tenant != tenant {
			return ErrNotFound
		}
		if ds, err = deliveriesOf(tx, &m); err != nil {
			return err
		}
		return pendingURLs(tx, ds)
	})
	if err != nil {
		return nil, nil, err
	}
	return &m, ds, nil
}

// pendingURLs shows the pending deliveries to endpoints with the URL their
// next attempt goes to: their endpoint's current one (see ForAttempt).
func pendingURLs(tx *bolt.Tx, ds []Delivery) error {
	urls := map[string]string{}
	for i := range ds {
		d := &ds[i]
		if d.Status != StatusPending || d.Override() {
			continue
		}
		url, ok := urls[d.EndpointID]
		if !ok {
			var ep Endpoint
			found, err := getRecord(tx.Bucket(bEndpoints), d.EndpointID, &ep)
			if err != nil {
				return err
			}
			if found {
				url = ep.URL
			}
			urls[d.EndpointID] = url
		}
		if url != "" {
			d.URL = url
		}
	}
	return nil
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

// ListScanBudget bounds the messages one ListMessages examines: a filter
// that matches few of a tenant's messages must not walk them all in one
// read transaction.
const ListScanBudget = 10_000

// ListFilter selects the messages ListMessages returns; an empty field
// selects any.
type ListFilter struct {
	Status string // the aggregate status
	Type   string // the event type
}

func (f ListFilter) matches(m *Message) bool {
	return (f.Status == "" || m.Status() == f.Status) && (f.Type == "" || m.Type == f.Type)
}

// ListMessages returns up to limit of the tenant's messages that match
// filter, newest first, starting after the message id after (exclusive;
// empty starts at the newest). It reads the tenant's index range only, and examines at most
// ListScanBudget messages, so a page may hold fewer than limit messages,
// or none, while more match further on. next is the cursor to go on from,
// the id of the last message examined; empty when none older is left.
func (s *Store) ListMessages(tenant string, filter ListFilter, limit int, after string) (msgs []Message, next string, err error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, "", err
	}
	err = s.view(func(tx *bolt.Tx) error {
		records := tx.Bucket(bMessages)
		prefix := tenantPrefix(tenant)
		c := tx.Bucket(bTenantMessages).Cursor()
		var k []byte
		if after == "" {
			// The first key past the tenant's range is tenant ‖ 1.
			end := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
			if k, _ = c.Seek(end); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		} else {
			start := append(bytes.Clone(prefix), after...)
			if k, _ = c.Seek(start); k == nil {
				k, _ = c.Last()
			}
			if k != nil && bytes.Compare(k, start) >= 0 {
				k, _ = c.Prev()
			}
		}
		for examined := 0; k != nil && bytes.HasPrefix(k, prefix) && len(msgs) < limit; k, _ = c.Prev() {
			id := string(k[len(prefix):])
			if examined == ListScanBudget {
				return nil
			}
			examined, next = examined+1, id
			var m Message
			ok, err := getRecord(records, id, &m)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("store: tenant %s lists message %s, which does not exist", tenant, id)
			}
			if filter.matches(&m) {
				msgs = append(msgs, m)
			}
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			next = "" // nothing older is left
		}
		return nil
	})
	return msgs, next, err
}

// Envelope returns the exact body stored for a message, of any tenant: it
// serves the delivery machinery, not client reads.
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
// transaction. It returns ErrNotFound when any of them is gone. A delivery
// to an endpoint carries the endpoint's current URL.
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
		} else {
			// A delivery goes to its endpoint's URL of the moment: a URL
			// change does not rewrite every pending delivery.
			a.Delivery.URL = a.Endpoint.URL
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// HasPending reports whether any delivery to the endpoint is pending.
func (s *Store) HasPending(endpointID string) (bool, error) {
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
		k, _ := seekPrefix(tx.Bucket(bQueued).Cursor(), queuePrefix(endpointID)) // its queue
		found = k != nil
		return nil
	})
	return found, err
}

// Endpoint returns one of the tenant's endpoints.
func (s *Store) Endpoint(tenant, id string) (*Endpoint, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	var ep Endpoint
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getRecord(tx.Bucket(bEndpoints), id, &ep)
		if err == nil && (!ok || ep.Tenant != tenant) {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ep, nil
}

// Endpoints returns the tenant's endpoints in id order (ids begin with
// their creation time: oldest first). It reads the tenant's index range
// only.
func (s *Store) Endpoints(tenant string) ([]Endpoint, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	var out []Endpoint
	err := s.view(func(tx *bolt.Tx) error {
		eps := tx.Bucket(bEndpoints)
		prefix := tenantPrefix(tenant)
		c := tx.Bucket(bTenantEndpoints).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			var ep Endpoint
			ok, err := getRecord(eps, string(k[len(prefix):]), &ep)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("store: tenant %s lists endpoint %s, which does not exist", tenant, k[len(prefix):])
			}
			out = append(out, ep)
		}
		return nil
	})
	return out, err
}

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

// IdempotentMessage returns the message id, and the request hash if any,
// recorded for one of the tenant's idempotency keys that is still live at
// now.
func (s *Store) IdempotentMessage(tenant, key string, now int64) (id string, requestHash []byte, ok bool, err error) {
	if err := CheckTenant(tenant); err != nil {
		return "", nil, false, err
	}
	var rec idempotencyRecord
	err = s.view(func(tx *bolt.Tx) error {
		var err error
		ok, err = getRecord(tx.Bucket(bIdempotency), string(tenantKey(tenant, key)), &rec)
		return err
	})
	if err != nil || !ok || rec.ExpiresAt <= now {
		return "", nil, false, err
	}
	return rec.MessageID, rec.RequestHash, true, nil
}

// Tenants returns up to limit tenants in id order, starting after the
// tenant id after (exclusive; empty starts at the first). A tenant is
// listed while it has an endpoint, a message, a pending delivery or a
// token; a deleted tenant, or one whose messages retention took, is not.
func (s *Store) Tenants(after string, limit int) ([]Tenant, error) {
	var out []Tenant
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bTenants).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var tc Tenant
			if err := decode(v, &tc); err != nil {
				return err
			}
			out = append(out, tc)
		}
		return nil
	})
	return out, err
}

// Tenant returns one tenant's counters, or ErrNotFound when it has nothing.
func (s *Store) Tenant(id string) (*Tenant, error) {
	if err := CheckTenant(id); err != nil {
		return nil, err
	}
	var tc Tenant
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getRecord(tx.Bucket(bTenants), id, &tc)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &tc, nil
}

// TenantToken returns the tenant of the token whose SHA-256 is hash, if it
// is stored and still live at now.
func (s *Store) TenantToken(hash []byte, now int64) (tenant string, ok bool, err error) {
	if len(hash) != TokenHashBytes {
		return "", false, nil
	}
	var rec tokenRecord
	err = s.view(func(tx *bolt.Tx) error {
		var err error
		ok, err = getRecord(tx.Bucket(bTokens), string(hash), &rec)
		return err
	})
	if err != nil || !ok || rec.ExpiresAt <= now {
		return "", false, err
	}
	return rec.Tenant, true, nil
}

// Check verifies the store's invariants against the records: every
// message's counters match its deliveries, and a pending delivery to an
// endpoint goes to an endpoint of its message's tenant; the due and
// per-endpoint indexes hold exactly the pending deliveries; the
// subscriptions index holds exactly the enabled endpoints' event types and
// URLs; the per-tenant indexes of endpoints, messages, idempotency keys and
// tokens, the expiry indexes and the tenant counters are what the records
// make them; no tenant holds more than MaxTenantTokens tokens; the schema
// version is this build's. Tests run it after every scenario.
func (s *Store) Check() error {
	return s.view(checkTx)
}

// counted is a tenant's counters as the records make them.
type counted map[string]*Tenant

func (c counted) of(tenant string) *Tenant {
	if c[tenant] == nil {
		c[tenant] = &Tenant{ID: tenant}
	}
	return c[tenant]
}

func checkTx(tx *bolt.Tx) error {
	if v, err := fileSchema(tx); err != nil || v != schemaVersion {
		return fmt.Errorf("store: schema version %d (%v), want %d", v, err, schemaVersion)
	}
	want := map[string]map[string]string{}
	for _, b := range [][]byte{bQueued, bSubscriptions, bTenantEndpoints, bTenantMessages,
		bIdemExpiry, bTenantTokens, bTokenExpiry} {
		want[string(b)] = map[string]string{}
	}
	counts := counted{}
	epTenant := map[string]string{}
	err := tx.Bucket(bEndpoints).ForEach(func(k, v []byte) error {
		var ep Endpoint
		if err := decode(v, &ep); err != nil {
			return err
		}
		if ep.ID != string(k) || nameProblem(ep.Tenant) != "" {
			return fmt.Errorf("store: endpoint %q has id %q and tenant %q", k, ep.ID, ep.Tenant)
		}
		epTenant[ep.ID] = ep.Tenant
		counts.of(ep.Tenant).Endpoints++
		want[string(bTenantEndpoints)][string(tenantKey(ep.Tenant, ep.ID))] = ""
		if ep.State == StateEnabled {
			types := ep.EventTypes
			if len(types) == 0 {
				types = []string{allTypes}
			}
			for _, typ := range types {
				want[string(bSubscriptions)][string(subKey(ep.Tenant, typ, ep.ID))] = ep.URL
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bMessages).ForEach(func(k, v []byte) error {
		var m Message
		if err := decode(v, &m); err != nil {
			return err
		}
		if m.ID != string(k) || nameProblem(m.Tenant) != "" {
			return fmt.Errorf("store: message %q has id %q and tenant %q", k, m.ID, m.Tenant)
		}
		tc := counts.of(m.Tenant)
		tc.Messages++
		want[string(bTenantMessages)][string(tenantKey(m.Tenant, m.ID))] = ""
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
			if d.Status != StatusPending {
				continue
			}
			tc.Pending++
			want[string(bQueued)][string(dueKey(d.Queue(), d.NextAttemptAt, d.ID))] = ""
			if !d.Override() {
				if et, ok := epTenant[d.EndpointID]; !ok || et != m.Tenant {
					return fmt.Errorf("store: pending delivery %s of tenant %s goes to endpoint %s of tenant %q",
						d.ID, m.Tenant, d.EndpointID, et)
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
	err = tx.Bucket(bIdempotency).ForEach(func(k, v []byte) error {
		if tenant, _, ok := splitTenant(k); !ok || nameProblem(tenant) != "" {
			return fmt.Errorf("store: idempotency key %q has no tenant", k)
		}
		var rec idempotencyRecord
		if err := decode(v, &rec); err != nil {
			return err
		}
		want[string(bIdemExpiry)][string(append(be64(rec.ExpiresAt), k...))] = ""
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bTokens).ForEach(func(k, v []byte) error {
		var rec tokenRecord
		if err := decode(v, &rec); err != nil {
			return err
		}
		if len(k) != TokenHashBytes || nameProblem(rec.Tenant) != "" {
			return fmt.Errorf("store: token %x of tenant %q", k, rec.Tenant)
		}
		tc := counts.of(rec.Tenant)
		if tc.Tokens++; tc.Tokens > MaxTenantTokens {
			return fmt.Errorf("store: tenant %s holds more than %d tokens", rec.Tenant, MaxTenantTokens)
		}
		want[string(bTenantTokens)][string(tenantKey(rec.Tenant, k))] = ""
		want[string(bTokenExpiry)][string(append(be64(rec.ExpiresAt), k...))] = ""
		return nil
	})
	if err != nil {
		return err
	}
	for name, entries := range want {
		if err := sameEntries(tx.Bucket([]byte(name)), entries, name); err != nil {
			return err
		}
	}
	err = tx.Bucket(bTenants).ForEach(func(k, v []byte) error {
		var tc Tenant
		if err := decode(v, &tc); err != nil {
			return err
		}
		c := counts[string(k)]
		if c == nil {
			c = &Tenant{ID: string(k)}
		}
		if tc != *c || tc.empty() {
			return fmt.Errorf("store: tenant %q counts %+v, the records say %+v", k, tc, *c)
		}
		delete(counts, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for id, c := range counts {
		if !c.empty() {
			return fmt.Errorf("store: tenant %s is not listed, the records say %+v", id, *c)
		}
	}
	return nil
}

// sameEntries checks that b holds exactly the entries of want.
func sameEntries(b *bolt.Bucket, want map[string]string, name string) error {
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		w, ok := want[string(k)]
		switch {
		case !ok:
			return fmt.Errorf("store: stray %s index entry %q", name, k)
		case w != string(v):
			return fmt.Errorf("store: %s index entry %q holds %q, want %q", name, k, v, w)
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
