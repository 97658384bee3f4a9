package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Entry is one committed Raft log entry. Data is nil for entries that carry
// no commands (Raft configuration changes); they still advance the index.
type Entry struct {
	Index uint64
	Data  []byte
}

// Apply applies entries in order in one bbolt transaction and records the
// last index in it. Entries at or below the applied index are skipped (they
// are replays after a restart) and get nil results. It returns each entry's
// per-command results.
//
// Apply is total: no entry, however malformed, makes it fail, panic or
// depend on how entries are split between calls. An entry that does not
// decode gets one Result carrying the decoding error; one of more than
// MaxCommandsPerEntry commands gets a Result per command, each carrying the
// same *InvalidError, and applies none of them; an invalid command (see
// [Command.Validate]) is rejected in its Result and changes nothing. An
// error therefore means the file could not be written or holds a corrupt
// record; the caller must not go on applying.
func (s *Store) Apply(entries []Entry) ([][]Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	results := make([][]Result, len(entries))
	var changes Applied
	err := s.db.Update(func(tx *bolt.Tx) error {
		t := newTxn(tx)
		defer func() {
			changes.Scheduled, changes.KeysChanged, changes.Attempts = t.scheduled, t.keysChanged, t.attempts
			changes.Endpoints = t.endpointChanges
		}()
		applied := appliedIndex(tx)
		for i, e := range entries {
			if e.Index <= applied {
				continue
			}
			applied = e.Index
			if e.Data == nil {
				continue
			}
			cmds, err := DecodeBatch(e.Data)
			if err != nil {
				results[i] = []Result{{Err: err}}
				continue
			}
			rs := make([]Result, len(cmds))
			if len(cmds) > MaxCommandsPerEntry {
				err := invalid("batch", fmt.Sprintf("%d commands, at most %d", len(cmds), MaxCommandsPerEntry))
				for j := range rs {
					rs[j] = Result{Err: err, Index: e.Index}
				}
				results[i] = rs
				continue
			}
			for j := range cmds {
				r, err := t.apply(&cmds[j])
				if err != nil {
					return fmt.Errorf("entry %d command %d: %w", e.Index, j, err)
				}
				r.Index = e.Index
				rs[j] = r
			}
			results[i] = rs
		}
		if err := t.finish(); err != nil {
			return err
		}
		changes.Index = applied
		return tx.Bucket(bMeta).Put(kApplied, be64(int64(applied)))
	})
	if err != nil {
		return nil, fmt.Errorf("store: apply: %w", err)
	}
	if s.onApplied != nil && changes.Index > 0 {
		s.onApplied(changes)
	}
	return results, nil
}

// txn wraps a write transaction. Message records and tenant counters
// touched by several commands in one batch are cached and written once at
// the end (messages also when a scan of the bucket must see them).
type txn struct {
	tx                                              *bolt.Tx
	messages, envelopes, deliveries, due            *bolt.Bucket
	endpoints, keys, idempotency, idemExpiry, nodes *bolt.Bucket
	subs, tenantEPs, tenantMsgs, tenants            *bolt.Bucket
	tokens, tenantTokens, tokenExpiry               *bolt.Bucket
	dirty                                           map[string]*Message
	tenantCounts                                    map[string]*Tenant
	scheduled                                       []Due // pending deliveries given a new due time
	keysChanged                                     bool  // a signing key was written or deleted
	attempts                                        []AppliedAttempt
	endpointChanges                                 []EndpointChange
	// fanOuts caches the subscribers of a tenant's event type: a batch of
	// enqueues of one kind fans out against the same list. Cleared when
	// any subscription changes.
	fanOuts map[fanOutKey][]target
}

type fanOutKey struct{ tenant, typ string }

func newTxn(tx *bolt.Tx) *txn {
	return &txn{
		tx:           tx,
		messages:     tx.Bucket(bMessages),
		envelopes:    tx.Bucket(bEnvelopes),
		deliveries:   tx.Bucket(bDeliveries),
		due:          tx.Bucket(bQueued),
		endpoints:    tx.Bucket(bEndpoints),
		keys:         tx.Bucket(bKeys),
		idempotency:  tx.Bucket(bIdempotency),
		idemExpiry:   tx.Bucket(bIdemExpiry),
		nodes:        tx.Bucket(bNodes),
		subs:         tx.Bucket(bSubscriptions),
		tenantEPs:    tx.Bucket(bTenantEndpoints),
		tenantMsgs:   tx.Bucket(bTenantMessages),
		tenants:      tx.Bucket(bTenants),
		tokens:       tx.Bucket(bTokens),
		tenantTokens: tx.Bucket(bTenantTokens),
		tokenExpiry:  tx.Bucket(bTokenExpiry),
		dirty:        map[string]*Message{},
		tenantCounts: map[string]*Tenant{},
		fanOuts:      map[fanOutKey][]target{},
	}
}

// apply applies one command. A returned error aborts the whole batch (the
// file is unusable); rejections go in Result.Err.
func (t *txn) apply(c *Command) (Result, error) {
	// Validated before anything is read or written: bounded keys and
	// values mean no bbolt write can fail on input, and a rejection,
	// unlike an error, lets every replica move past the entry alike.
	if err := c.Validate(); err != nil {
		return Result{Err: err}, nil
	}
	c.normalize()
	switch {
	case c.Enqueue != nil:
		return t.enqueue(c.Enqueue)
	case c.Outcome != nil:
		return Result{}, t.outcome(c.Outcome)
	case c.CreateEndpoint != nil:
		return t.createEndpoint(c.CreateEndpoint)
	case c.UpdateEndpoint != nil:
		return t.updateEndpoint(c.UpdateEndpoint)
	case c.DeleteEndpoint != nil:
		return t.deleteEndpoint(c.DeleteEndpoint)
	case c.RotateSecret != nil:
		return t.rotateSecret(c.RotateSecret)
	case c.Requeue != nil:
		return t.requeue(c.Requeue)
	case c.AddSigningKey != nil:
		return Result{}, t.addSigningKey(c.AddSigningKey)
	case c.Sweep != nil:
		return t.sweep(c.Sweep)
	case c.PutNode != nil:
		return Result{}, putRecord(t.nodes, c.PutNode.ID, c.PutNode)
	case c.DeleteTenant != nil:
		return t.deleteTenant(c.DeleteTenant)
	case c.CreateTenantToken != nil:
		return t.createToken(c.CreateTenantToken)
	case c.EndPending != nil:
		return t.endPendingOf(c.EndPending)
	case c.EnqueueBatch != nil:
		return t.enqueueBatch(c.EnqueueBatch)
	default: // Validate leaves exactly one field set: RevokeTenantTokens
		return t.revokeTokens(c.RevokeTenantTokens)
	}
}

// enqueueBatch applies each message as a command of its own: validated,
// normalized and enqueued, or rejected in its own Result.
func (t *txn) enqueueBatch(b *EnqueueBatch) (Result, error) {
	rs := make([]Result, len(b.Messages))
	for i := range b.Messages {
		r, err := t.apply(&Command{Enqueue: &b.Messages[i]})
		if err != nil {
			return Result{}, err
		}
		rs[i] = r
	}
	return Result{Batch: rs}, nil
}

func (t *txn) message(id string) (*Message, error) {
	if m, ok := t.dirty[id]; ok {
		return m, nil
	}
	m := new(Message)
	ok, err := getRecord(t.messages, id, m)
	if err != nil || !ok {
		return nil, err
	}
	t.dirty[id] = m
	return m, nil
}

// peekMessage is message without caching the record: for scans that read
// many messages and change few.
func (t *txn) peekMessage(id string) (*Message, error) {
	if m, ok := t.dirty[id]; ok {
		return m, nil
	}
	m := new(Message)
	ok, err := getRecord(t.messages, id, m)
	if err != nil || !ok {
		return nil, err
	}
	return m, nil
}

// flush writes the cached messages, for a scan of the bucket.
func (t *txn) flush() error {
	for id, m := range t.dirty {
		if err := putRecord(t.messages, id, m); err != nil {
			return err
		}
	}
	return nil
}

// finish writes everything cached, at the end of the transaction.
func (t *txn) finish() error {
	if err := t.flush(); err != nil {
		return err
	}
	return t.flushTenants()
}

func (t *txn) delivery(id string) (*Delivery, error) {
	d := new(Delivery)
	ok, err := getRecord(t.deliveries, id, d)
	if err != nil || !ok {
		return nil, err
	}
	return d, nil
}

func (t *txn) endpoint(id string) (*Endpoint, error) {
	ep := new(Endpoint)
	ok, err := getRecord(t.endpoints, id, ep)
	if err != nil || !ok {
		return nil, err
	}
	return ep, nil
}

// putDelivery writes d, keeping the due index in step with its status.
// prev is the record as it was (nil when new).
func (t *txn) putDelivery(prev, d *Delivery) error {
	if prev != nil && prev.Status == StatusPending {
		if err := t.due.Delete(dueKey(prev.Queue(), prev.NextAttemptAt, prev.ID)); err != nil {
			return err
		}
	}
	if d.Status == StatusPending {
		if err := t.due.Put(dueKey(d.Queue(), d.NextAttemptAt, d.ID), nil); err != nil {
			return err
		}
		t.scheduled = append(t.scheduled, Due{DeliveryID: d.ID, At: d.NextAttemptAt, Queue: d.Queue()})
	} else {
		d.NextAttemptAt = 0
	}
	return putRecord(t.deliveries, d.ID, d)
}

// transition moves d to status and updates its message's counters.
func (t *txn) transition(d *Delivery, status string) error {
	if d.Status == status {
		return nil
	}
	m, err := t.message(d.MessageID)
	if err != nil {
		return err
	}
	if m != nil {
		m.count(d.Status, -1)
		m.count(status, +1)
		if d.Status == StatusPending || status == StatusPending {
			tc, err := t.tenant(m.Tenant)
			if err != nil {
				return err
			}
			if status == StatusPending {
				tc.Pending++
			} else {
				tc.Pending--
			}
		}
	}
	d.Status = status
	return nil
}

// maxDeliveries is how many deliveries DeliveryID can name for a message.
const maxDeliveries = 32 * 32 * 32 * 32

func (t *txn) enqueue(c *Enqueue) (Result, error) {
	if m, err := t.message(c.ID); err != nil || m != nil {
		if err == nil && m.Tenant != c.Tenant {
			return Result{Err: ErrExists}, nil // ids are unique across tenants
		}
		return Result{MessageID: c.ID, Duplicate: true}, err
	}
	var prevKey *idempotencyRecord
	var idemKey []byte // tenant ‖ 0 ‖ key: keys are the tenant's
	if c.IdempotencyKey != "" {
		idemKey = tenantKey(c.Tenant, c.IdempotencyKey)
		var rec idempotencyRecord
		ok, err := getRecord(t.idempotency, string(idemKey), &rec)
		if err != nil {
			return Result{}, err
		}
		if ok && rec.ExpiresAt > c.CreatedAt {
			if len(rec.RequestHash) > 0 && len(c.RequestHash) > 0 && !bytes.Equal(rec.RequestHash, c.RequestHash) {
				return Result{MessageID: rec.MessageID, Duplicate: true, Err: ErrKeyReused}, nil
			}
			return Result{MessageID: rec.MessageID, Duplicate: true}, nil
		}
		if ok {
			prevKey = &rec
		}
	}
	targets, err := t.fanOut(c)
	if err != nil {
		return Result{}, err
	}
	if len(targets) > maxDeliveries {
		// Only a million enabled endpoints could do this; past it,
		// delivery ids would repeat.
		return Result{Err: fmt.Errorf("store: message would have %d deliveries, at most %d", len(targets), maxDeliveries)}, nil
	}

	if c.IdempotencyKey != "" {
		if prevKey != nil {
			if err := t.idemExpiry.Delete(append(be64(prevKey.ExpiresAt), idemKey...)); err != nil {
				return Result{}, err
			}
		}
		rec := idempotencyRecord{MessageID: c.ID, ExpiresAt: c.IdempotencyExpiresAt, RequestHash: c.RequestHash}
		if err := putRecord(t.idempotency, string(idemKey), &rec); err != nil {
			return Result{}, err
		}
		if err := t.idemExpiry.Put(append(be64(rec.ExpiresAt), idemKey...), nil); err != nil {
			return Result{}, err
		}
	}
	tc, err := t.tenant(c.Tenant)
	if err != nil {
		return Result{}, err
	}
	tc.Messages++
	tc.Pending += len(targets)
	if err := t.tenantMsgs.Put(tenantKey(c.Tenant, c.ID), nil); err != nil {
		return Result{}, err
	}
	m := &Message{ID: c.ID, Tenant: c.Tenant, Type: c.Type, CreatedAt: c.CreatedAt, IdempotencyKey: c.IdempotencyKey,
		Deliveries: make([]string, 0, len(targets))}
	t.dirty[c.ID] = m
	for i, tg := range targets {
		d := &Delivery{ID: DeliveryID(c.ID, i), MessageID: c.ID, EndpointID: tg.endpointID, URL: tg.url,
			Status: StatusPending, NextAttemptAt: c.CreatedAt}
		m.Deliveries = append(m.Deliveries, d.ID)
		m.Pending++
		if err := t.putDelivery(nil, d); err != nil {
			return Result{}, err
		}
	}
	if err := t.envelopes.Put([]byte(c.ID), c.Envelope); err != nil {
		return Result{}, err
	}
	return Result{MessageID: c.ID, Count: len(targets)}, nil
}

type target struct{ endpointID, url string }

func (t *txn) fanOut(c *Enqueue) ([]target, error) {
	var targets []target
	if len(c.URIs) > 0 {
		for _, u := range c.URIs {
			targets = append(targets, target{url: u})
		}
		return targets, nil
	}
	if len(c.EndpointIDs) > 0 {
		for _, id := range c.EndpointIDs {
			ep, err := t.endpoint(id)
			if err != nil {
				return nil, err
			}
			if ep != nil && ep.Tenant == c.Tenant {
				targets = append(targets, target{endpointID: ep.ID, url: ep.URL})
			}
		}
		return targets, nil
	}
	return t.subscribers(c.Tenant, c.Type), nil
}

// subscribers returns the enabled endpoints of the tenant subscribed to
// typ, in endpoint id order, from the two key ranges of the subscriptions
// index that name them: the type's and the all-types entry's. Nothing of
// another tenant is read.
func (t *txn) subscribers(tenant, typ string) []target {
	key := fanOutKey{tenant, typ}
	if targets, ok := t.fanOuts[key]; ok {
		return targets
	}
	typed, all := subPrefix(tenant, typ), subPrefix(tenant, allTypes)
	ct, ca := t.subs.Cursor(), t.subs.Cursor()
	kt, vt := seekPrefix(ct, typed)
	ka, va := seekPrefix(ca, all)
	targets := []target{}
	// Each range is in endpoint id order and an endpoint is in one only:
	// merged, every replica numbers the deliveries alike.
	for kt != nil || ka != nil {
		if ka == nil || (kt != nil && bytes.Compare(kt[len(typed):], ka[len(all):]) < 0) {
			targets = append(targets, target{endpointID: string(kt[len(typed):]), url: string(vt)})
			kt, vt = nextPrefix(ct, typed)
		} else {
			targets = append(targets, target{endpointID: string(ka[len(all):]), url: string(va)})
			ka, va = nextPrefix(ca, all)
		}
	}
	t.fanOuts[key] = targets
	return targets
}

// seekPast moves c to the first key after key: a cursor that pages on
// from the last key it returned.
func seekPast(c *bolt.Cursor, key []byte) ([]byte, []byte) {
	k, v := c.Seek(key)
	if k != nil && bytes.Equal(k, key) {
		return c.Next()
	}
	return k, v
}

// seekPrefix positions c at the first key with prefix, or returns nil.
func seekPrefix(c *bolt.Cursor, prefix []byte) ([]byte, []byte) {
	k, v := c.Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// nextPrefix moves c to the next key with prefix, or returns nil.
func nextPrefix(c *bolt.Cursor, prefix []byte) ([]byte, []byte) {
	k, v := c.Next()
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// saveEndpoint writes ep and keeps its subscriptions in step. prev is the
// record as it was (nil when new).
func (t *txn) saveEndpoint(prev, ep *Endpoint) error {
	if !sameSubscriptions(prev, ep) {
		if prev != nil {
			if err := t.subscribe(prev, false); err != nil {
				return err
			}
		}
		if err := t.subscribe(ep, true); err != nil {
			return err
		}
	}
	return putRecord(t.endpoints, ep.ID, ep)
}

// sameSubscriptions reports whether prev and ep have the same entries in
// the subscriptions index: most updates (a name, a secret) change none.
func sameSubscriptions(prev, ep *Endpoint) bool {
	if prev == nil || (prev.State == StateEnabled) != (ep.State == StateEnabled) {
		return false
	}
	return ep.State != StateEnabled ||
		prev.Tenant == ep.Tenant && prev.URL == ep.URL && slices.Equal(prev.EventTypes, ep.EventTypes)
}

// subscribe adds (on) or removes the endpoint's subscription entries. Only
// enabled endpoints have any.
func (t *txn) subscribe(ep *Endpoint, on bool) error {
	if ep.State != StateEnabled {
		return nil
	}
	clear(t.fanOuts)
	types := ep.EventTypes
	if len(types) == 0 {
		types = []string{allTypes}
	}
	for _, typ := range types {
		k := subKey(ep.Tenant, typ, ep.ID)
		var err error
		if on {
			err = t.subs.Put(k, []byte(ep.URL))
		} else {
			err = t.subs.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addEndpoint stores a new endpoint with its index entries and count.
func (t *txn) addEndpoint(ep *Endpoint) error {
	if err := t.saveEndpoint(nil, ep); err != nil {
		return err
	}
	if err := t.tenantEPs.Put(tenantKey(ep.Tenant, ep.ID), nil); err != nil {
		return err
	}
	tc, err := t.tenant(ep.Tenant)
	if err != nil {
		return err
	}
	tc.Endpoints++
	return nil
}

// removeEndpoint deletes an endpoint, with its index entries and count.
// Its pending deliveries must be ended first.
func (t *txn) removeEndpoint(ep *Endpoint) error {
	if err := t.subscribe(ep, false); err != nil {
		return err
	}
	if err := t.tenantEPs.Delete(tenantKey(ep.Tenant, ep.ID)); err != nil {
		return err
	}
	tc, err := t.tenant(ep.Tenant)
	if err != nil {
		return err
	}
	tc.Endpoints--
	return t.endpoints.Delete([]byte(ep.ID))
}

func (t *txn) outcome(c *Outcome) error {
	d, err := t.delivery(c.DeliveryID)
	if err != nil || d == nil {
		return err
	}
	if d.Status != StatusPending || d.AttemptCount != c.Attempt-1 {
		return nil // a duplicate, or the delivery moved on
	}
	prev := *d
	var ep *Endpoint // read once, for the URL and the health
	if !d.Override() {
		if ep, err = t.endpoint(d.EndpointID); err != nil {
			return err
		}
		if ep != nil {
			// The attempt went to the endpoint's URL of the moment (see
			// Store.ForAttempt): a URL change does not rewrite every
			// pending delivery.
			d.URL = ep.URL
		}
	}
	d.AttemptCount++
	if d.RoundAttempts == 0 {
		d.FirstAttemptAt = c.At
	}
	d.RoundAttempts++
	d.LastStatusCode = c.StatusCode
	d.LastError = c.Error
	d.Attempts = append(d.Attempts, Attempt{At: c.At, StatusCode: c.StatusCode, Error: c.Error, DurationMS: c.DurationMS})
	if n := len(d.Attempts); n > MaxAttemptHistory {
		d.Attempts = append(d.Attempts[:0:0], d.Attempts[n-MaxAttemptHistory:]...)
	}
	switch c.Result {
	case ResultSucceeded:
		err = t.transition(d, StatusSucceeded)
	case ResultRetry:
		d.NextAttemptAt = c.NextAttemptAt
	case ResultCancelled:
		err = t.transition(d, StatusCancelled)
	case ResultFailed, ResultGone: // Validate admits no other result
		err = t.transition(d, StatusFailed)
	}
	if err != nil {
		return err
	}
	if err := t.putDelivery(&prev, d); err != nil {
		return err
	}
	m, err := t.message(d.MessageID) // cached: the transition loaded it but for retries
	if err != nil {
		return err
	}
	if m != nil {
		t.attempts = append(t.attempts, AppliedAttempt{Tenant: m.Tenant, MessageID: d.MessageID, DeliveryID: d.ID,
			EndpointID: d.EndpointID, URL: d.URL, Attempt: c.Attempt, At: c.At, DurationMS: c.DurationMS,
			StatusCode: c.StatusCode, Error: c.Error, Status: d.Status, NextAttemptAt: d.NextAttemptAt})
	}
	if ep == nil || !c.failed() && c.Result != ResultSucceeded {
		return nil
	}
	return t.endpointHealth(ep, c)
}

// endpointHealth applies an attempt's outcome to its endpoint's Health: a
// success closes the breaker and ends the streak of failures; a failure
// extends it, and may open the breaker or disable the endpoint (a 410
// always does). Only a change is written, so healthy traffic costs no
// endpoint write.
func (t *txn) endpointHealth(ep *Endpoint, c *Outcome) error {
	if ep.State != StateEnabled {
		return nil
	}
	prev := *ep
	if c.Result == ResultSucceeded {
		if ep.Health == (EndpointHealth{}) {
			return nil
		}
		if ep.Health.BreakerOpen() {
			t.endpointChanged(ep, ChangeBreakerClosed, c.At, "an attempt succeeded")
		}
		ep.Health = EndpointHealth{}
		return putRecord(t.endpoints, ep.ID, ep) // Health is in no index
	}
	ep.Health.failed(c.At)
	if c.OpenBreaker && !ep.Health.BreakerOpen() {
		ep.Health.BreakerOpenedAt = c.At
		t.endpointChanged(ep, ChangeBreakerOpened, c.At, ep.Health.breakerReason())
	}
	switch {
	case c.Result == ResultGone:
		return t.disableEndpoint(&prev, ep, StateDisabledFailing, ReasonGone, c.At)
	case c.Disable:
		return t.disableEndpoint(&prev, ep, StateDisabledFailing, ep.Health.failingReason(c.At), c.At)
	}
	return putRecord(t.endpoints, ep.ID, ep)
}

// endpointChanged reports a change of the endpoint to the apply hook.
func (t *txn) endpointChanged(ep *Endpoint, kind string, at int64, reason string) {
	t.endpointChanges = append(t.endpointChanges, EndpointChange{Kind: kind, Tenant: ep.Tenant, EndpointID: ep.ID, At: at,
		State: ep.State, Reason: reason})
}

// disableEndpoint sets the endpoint's state, saying why, and ends its
// pending deliveries: failed when it is disabled as failing, cancelled when
// an operator disabled it. prev is the record as stored.
func (t *txn) disableEndpoint(prev, ep *Endpoint, state, reason string, at int64) error {
	ep.State = state
	ep.UpdatedAt = at
	ep.DisabledReason, ep.DisabledAt = reason, at
	if err := t.saveEndpoint(prev, ep); err != nil {
		return err
	}
	t.endpointChanged(ep, ChangeDisabled, at, reason)
	status, dlvErr := StatusCancelled, "endpoint disabled"
	if state == StateDisabledFailing {
		status, dlvErr = StatusFailed, FailedByDisable+reason
	}
	_, err := t.endPending(ep.ID, status, dlvErr, MaxEndOnDisable)
	return err
}

// endPending moves up to limit (all when negative) pending deliveries of
// the endpoint to status, and returns how many it moved.
func (t *txn) endPending(epID, status, reason string, limit int) (int, error) {
	ids := t.pendingOf(epID, limit)
	for _, id := range ids {
		d, err := t.delivery(id)
		if err != nil {
			return 0, err
		}
		if d == nil || d.Status != StatusPending {
			continue
		}
		prev := *d
		d.LastError = reason
		if err := t.transition(d, status); err != nil {
			return 0, err
		}
		if err := t.putDelivery(&prev, d); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func (t *txn) createEndpoint(c *CreateEndpoint) (Result, error) {
	if t.endpoints.Get([]byte(c.Endpoint.ID)) != nil {
		return Result{Err: ErrExists}, nil // ids are unique across tenants
	}
	return Result{}, t.addEndpoint(&c.Endpoint)
}

// tenantEndpoint reads the tenant's endpoint: nil when there is none of
// that id, or it is another tenant's.
func (t *txn) tenantEndpoint(tenant, id string) (*Endpoint, error) {
	ep, err := t.endpoint(id)
	if err != nil || ep == nil || ep.Tenant != tenant {
		return nil, err
	}
	return ep, nil
}

func (t *txn) updateEndpoint(c *UpdateEndpoint) (Result, error) {
	ep, err := t.tenantEndpoint(c.Tenant, c.ID)
	if err != nil || ep == nil {
		return Result{Err: ErrNotFound}, err
	}
	prev := *ep
	if c.URL != nil {
		ep.URL = *c.URL
	}
	if c.Name != nil {
		ep.Name = *c.Name
	}
	if c.EventTypes != nil {
		ep.EventTypes = *c.EventTypes
	}
	if c.RateLimitPerS != nil {
		ep.RateLimitPerS = *c.RateLimitPerS
	}
	ep.UpdatedAt = c.At
	if c.State != nil && *c.State != ep.State {
		if *c.State != StateEnabled {
			return Result{}, t.disableEndpoint(&prev, ep, *c.State, ReasonOperator, c.At)
		}
		t.enable(ep, c.At)
	}
	return Result{}, t.saveEndpoint(&prev, ep)
}

// enable enables ep afresh: no reason to be disabled, no record of
// failures, its breaker closed.
func (t *txn) enable(ep *Endpoint, at int64) {
	ep.State = StateEnabled
	ep.DisabledReason, ep.DisabledAt = "", 0
	if ep.Health.BreakerOpen() {
		t.endpointChanged(ep, ChangeBreakerClosed, at, "the endpoint was enabled")
	}
	ep.Health = EndpointHealth{}
}

// pendingOf returns the ids of up to limit (all when negative) of the
// endpoint's pending deliveries, soonest due first: its queue's range of
// the due index.
func (t *txn) pendingOf(epID string, limit int) []string {
	prefix := queuePrefix(epID)
	var ids []string
	c := t.due.Cursor()
	for k, _ := seekPrefix(c, prefix); k != nil && len(ids) != limit; k, _ = nextPrefix(c, prefix) {
		if _, id, ok := dueTail(k[len(prefix):]); ok {
			ids = append(ids, string(id))
		}
	}
	return ids
}

// endPendingOf ends a batch of a disabled endpoint's pending deliveries.
func (t *txn) endPendingOf(c *EndPending) (Result, error) {
	ep, err := t.tenantEndpoint(c.Tenant, c.EndpointID)
	if err != nil || ep == nil {
		return Result{Err: ErrNotFound}, err
	}
	if ep.State == StateEnabled && !c.Deleting {
		return Result{}, nil // enabled again since: its deliveries stay
	}
	n, err := t.endPending(ep.ID, c.Status, c.Reason, c.Limit)
	return Result{Count: n}, err
}

func (t *txn) deleteEndpoint(c *DeleteEndpoint) (Result, error) {
	ep, err := t.tenantEndpoint(c.Tenant, c.ID)
	if err != nil || ep == nil {
		return Result{Err: ErrNotFound}, err
	}
	if _, err := t.endPending(c.ID, StatusCancelled, "endpoint deleted", -1); err != nil {
		return Result{}, err
	}
	return Result{}, t.removeEndpoint(ep)
}

func (t *txn) rotateSecret(c *RotateSecret) (Result, error) {
	ep, err := t.tenantEndpoint(c.Tenant, c.EndpointID)
	if err != nil || ep == nil {
		return Result{Err: ErrNotFound}, err
	}
	prev := *ep
	for _, s := range ep.Secrets {
		if s.Key == c.Secret {
			return Result{}, nil // already applied (a retried command)
		}
	}
	secrets := []Secret{{Key: c.Secret}}
	for _, s := range ep.Secrets {
		if len(secrets) == MaxSecrets {
			break // newest first: the oldest go, so rotations cannot grow the record
		}
		if s.ExpiresAt == 0 || s.ExpiresAt > c.RevokeAt {
			s.ExpiresAt = c.RevokeAt
		}
		if s.ExpiresAt > c.At {
			secrets = append(secrets, s)
		}
	}
	ep.Secrets = secrets
	ep.UpdatedAt = c.At
	return Result{}, t.saveEndpoint(&prev, ep)
}

func (t *txn) requeue(c *Requeue) (Result, error) {
	if c.MessageID != "" {
		if m, err := t.peekMessage(c.MessageID); err != nil || m == nil || m.Tenant != c.Tenant {
			return Result{Err: ErrNotFound}, err
		}
		n, err := t.requeueMessage(c.MessageID, c)
		return Result{Count: n}, err
	}
	ids, next, err := t.failedInWindow(c)
	if err != nil {
		return Result{}, err
	}
	res := Result{Next: next}
	for _, id := range ids {
		n, err := t.requeueMessage(id, c)
		if err != nil {
			return Result{}, err
		}
		res.Count += n
	}
	return res, nil
}

// failedInWindow returns the tenant's messages created in the Requeue's
// window that have failed or cancelled deliveries. It examines at most
// c.Limit messages (all when 0), from c.After or the window's start; next
// is the last one examined when it stopped at the limit before the
// window's end.
//
// The tenant's message ids begin with their creation time, so the window
// is a key range of its index (widened by maxClockSkew): neither other
// tenants' messages nor its own outside the window are read. Ids stamped
// by different nodes' clocks may be slightly out of order, so the record's
// own time decides. Records come from the batch's cache first, so the
// result does not depend on how entries were batched.
func (t *txn) failedInWindow(c *Requeue) (ids []string, next string, err error) {
	prefix := tenantPrefix(c.Tenant)
	cur := t.tenantMsgs.Cursor()
	var k []byte
	if c.After != "" {
		start := tenantKey(c.Tenant, c.After)
		k, _ = seekPast(cur, start)
	} else {
		k, _ = cur.Seek(tenantKey(c.Tenant, timeKey("msg", c.Since-int64(maxClockSkew))))
	}
	examined, last := 0, ""
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		id := string(k[len(prefix):])
		if c.Until != 0 && messageTime(id) > addSat(c.Until, int64(maxClockSkew)) {
			break
		}
		if examined == c.Limit && c.Limit > 0 {
			return ids, last, nil
		}
		examined, last = examined+1, id
		m, err := t.peekMessage(id)
		if err != nil {
			return nil, "", err
		}
		if m != nil && m.CreatedAt >= c.Since && (c.Until == 0 || m.CreatedAt < c.Until) && m.Failed+m.Cancelled > 0 {
			ids = append(ids, m.ID)
		}
	}
	return ids, "", nil
}

// requeueMessage re-queues a message's failed deliveries to enabled
// endpoints (or override URIs) for a round due at at, and returns how many.
func (t *txn) requeueMessage(id string, c *Requeue) (int, error) {
	m, err := t.message(id)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dlvID := range m.Deliveries {
		d, err := t.delivery(dlvID)
		if err != nil {
			return 0, err
		}
		if d == nil || !c.takes(d) {
			continue
		}
		if !d.Override() {
			// An endpoint id deleted and made again in another
			// tenant is not this message's endpoint.
			ep, err := t.tenantEndpoint(m.Tenant, d.EndpointID)
			if err != nil {
				return 0, err
			}
			if ep == nil || ep.State != StateEnabled {
				continue
			}
		}
		prev := *d
		if err := t.transition(d, StatusPending); err != nil {
			return 0, err
		}
		d.RoundAttempts, d.FirstAttemptAt, d.NextAttemptAt = 0, 0, c.At
		if err := t.putDelivery(&prev, d); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

func (t *txn) addSigningKey(c *AddSigningKey) error {
	if t.keys.Get([]byte(c.Key.ID)) != nil {
		return nil // already applied
	}
	t.keysChanged = true
	cur := t.keys.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		var key SigningKey
		if err := decode(v, &key); err != nil {
			return err
		}
		if key.Alg == c.Key.Alg && key.RetiredAt == 0 {
			key.RetiredAt = c.Key.CreatedAt
			if err := putRecord(t.keys, key.ID, &key); err != nil {
				return err
			}
		}
	}
	return putRecord(t.keys, c.Key.ID, &c.Key)
}

func (t *txn) sweep(c *Sweep) (Result, error) {
	n := 0
	// Expired idempotency keys, oldest first.
	var expired [][]byte
	cur := t.idemExpiry.Cursor()
	for k, _ := cur.First(); k != nil && len(expired) < c.Limit; k, _ = cur.Next() {
		if int64(binary.BigEndian.Uint64(k[:8])) > c.At {
			break
		}
		expired = append(expired, bytes.Clone(k))
	}
	for _, k := range expired {
		key := k[8:]
		var rec idempotencyRecord
		ok, err := getRecord(t.idempotency, string(key), &rec)
		if err != nil {
			return Result{}, err
		}
		if ok && rec.ExpiresAt <= c.At {
			if err := t.idempotency.Delete(key); err != nil {
				return Result{}, err
			}
		}
		if err := t.idemExpiry.Delete(k); err != nil {
			return Result{}, err
		}
		n++
	}

	// Finished messages created before the retention cutoff. Flush first:
	// the scan must see counters changed earlier in this batch (a message
	// requeued by an earlier command is pending again, and one enqueued in
	// it is not in the bucket yet).
	if err := t.flush(); err != nil {
		return Result{}, err
	}
	var old []string
	mc := t.messages.Cursor()
	for k, v := mc.First(); k != nil && len(old) < c.Limit; k, v = mc.Next() {
		var m Message
		if err := decode(v, &m); err != nil {
			return Result{}, err
		}
		if m.CreatedAt >= c.RetainSince {
			if messageTime(m.ID) > addSat(c.RetainSince, int64(maxClockSkew)) {
				break // every later id is newer still
			}
			continue
		}
		if m.Pending == 0 {
			old = append(old, m.ID)
		}
	}
	for _, id := range old {
		m, err := t.message(id)
		if err != nil {
			return Result{}, err
		}
		if err := t.dropMessage(m); err != nil {
			return Result{}, err
		}
		n++
	}

	// Signing keys retired long enough ago to have left the JWKS.
	var retired []string
	kc := t.keys.Cursor()
	for k, v := kc.First(); k != nil && len(retired) < c.Limit; k, v = kc.Next() {
		var key SigningKey
		if err := decode(v, &key); err != nil {
			return Result{}, err
		}
		if key.RetiredAt != 0 && key.RetiredAt < c.KeysRetiredBefore {
			retired = append(retired, key.ID)
		}
	}
	for _, id := range retired {
		t.keysChanged = true
		if err := t.keys.Delete([]byte(id)); err != nil {
			return Result{}, err
		}
		n++
	}

	// Tenant tokens past their expiry, oldest first.
	var hashes [][]byte
	tc := t.tokenExpiry.Cursor()
	for k, _ := tc.First(); k != nil && len(hashes) < c.Limit; k, _ = tc.Next() {
		if int64(binary.BigEndian.Uint64(k[:8])) > c.At {
			break
		}
		hashes = append(hashes, bytes.Clone(k[8:]))
	}
	for _, h := range hashes {
		if err := t.deleteToken(h); err != nil {
			return Result{}, err
		}
		n++
	}
	return Result{Count: n}, nil
}

// dropMessage deletes a message with its deliveries, envelope, index
// entry and count. Deliveries still pending leave the due index and the
// tenant's count.
func (t *txn) dropMessage(m *Message) error {
	tc, err := t.tenant(m.Tenant)
	if err != nil {
		return err
	}
	if m.Pending > 0 {
		for _, id := range m.Deliveries {
			d, err := t.delivery(id)
			if err != nil {
				return err
			}
			if d == nil || d.Status != StatusPending {
				continue
			}
			if err := t.due.Delete(dueKey(d.Queue(), d.NextAttemptAt, d.ID)); err != nil {
				return err
			}
			tc.Pending--
		}
	}
	for _, id := range m.Deliveries {
		if err := t.deliveries.Delete([]byte(id)); err != nil {
			return err
		}
	}
	delete(t.dirty, m.ID)
	tc.Messages--
	if err := t.tenantMsgs.Delete(tenantKey(m.Tenant, m.ID)); err != nil {
		return err
	}
	if err := t.messages.Delete([]byte(m.ID)); err != nil {
		return err
	}
	return t.envelopes.Delete([]byte(m.ID))
}

// addSat returns a+b for b >= 0, saturating at the largest time: commands
// may carry times up to math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
