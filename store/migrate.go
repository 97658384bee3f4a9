package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The schema version, in the meta bucket, names the layout of the file's
// buckets and records. A file without one was written before tenants
// (version 0).
//
//	1  tenants: Endpoint.Tenant and Message.Tenant; idempotency keys per
//	   tenant (buckets tenant_idempotency and tenant_idem_expiry replace
//	   idempotency and idem_expiry); subscriptions, tenant_endpoints,
//	   tenant_messages, tenants, tokens, tenant_tokens, token_expiry.
//	2  the due index by destination: queued replaces due, and an override
//	   URI's queue is its origin.
//	3  messages, deliveries, tenants and endpoints in their compact
//	   encoding (see binaryRecord) instead of MessagePack; by_endpoint
//	   is gone (an endpoint's range of queued lists its pending
//	   deliveries).
const schemaVersion = 3

var kSchema = []byte("schema_version")

// ErrNewerSchema is returned for a state file (or a snapshot or backup)
// written by a newer herald, whose layout this build does not know.
var ErrNewerSchema = errors.New("store: written by a newer herald")

// ErrOlderWriter is returned for a state file that an earlier herald wrote
// to after this build had migrated it (a downgrade, or a node of the
// earlier build that installed a snapshot of an upgraded one): that build
// applied entries without keeping the indexes of this schema, so the file
// cannot be trusted.
var ErrOlderWriter = errors.New("store: written by an earlier herald after its upgrade")

// Buckets and keys of version 0 that later versions replaced.
var (
	bIdempotencyV0 = []byte("idempotency")   // key → idempotencyRecord
	bIdemExpiryV0  = []byte("idem_expiry")   // be64(expiry) ‖ key → ∅
	kAppliedV0     = []byte("applied_index") // in meta: the last applied Raft index
	bDueV1         = []byte("due")           // be64(next attempt) ‖ dlv id → queue
	// ep id ‖ 0 ‖ dlv id → ∅, pending only: an endpoint's part of the due
	// index (queued) names them too.
	bByEndpointV2 = []byte("by_endpoint")
)

// coreBuckets are in every state file, of any version.
var coreBuckets = [][]byte{bMeta, bMessages, bEnvelopes, bDeliveries, bEndpoints, bKeys, bNodes}

// fileSchema returns the file's schema version, 0 when it has none.
func fileSchema(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(kSchema)
	switch {
	case v == nil:
		return 0, nil
	case len(v) != 8:
		return 0, fmt.Errorf("store: schema version of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// initSchema makes a new file, or brings an earlier one up to this build's
// schema, in the caller's transaction: either all of it happens or none.
// A migration depends on nothing but the file's contents (no clock, no
// order of maps), so every replica that migrates a file holding the same
// entries ends with the same state, identical to one that applied those
// entries with this build, whenever each migrates.
func initSchema(tx *bolt.Tx) error {
	v, err := fileSchema(tx)
	if err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("%w (schema version %d; this build reads up to %d): upgrade herald to open it",
			ErrNewerSchema, v, schemaVersion)
	}
	if v > 0 && tx.Bucket(bMeta).Get(kAppliedV0) != nil {
		return fmt.Errorf("%w (it holds an applied index where only an earlier build writes one): its indexes "+
			"are stale; remove it and let the node catch up from the cluster, or restore a backup", ErrOlderWriter)
	}
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	if v == schemaVersion {
		return nil
	}
	for _, m := range migrations[v:] {
		if err := m(tx); err != nil {
			return fmt.Errorf("store: migrate from schema version %d: %w", v, err)
		}
		v++
	}
	return tx.Bucket(bMeta).Put(kSchema, be64(schemaVersion))
}

// migrations[v] brings a file from schema version v to v+1.
var migrations = []func(*bolt.Tx) error{migrateV0, migrateV1, migrateV2}

// prepareFile brings the bbolt file at path to this build's schema.
func prepareFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	err = db.Update(initSchema)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// migrateV0 puts everything of a file written before tenants in
// DefaultTenant, as Apply would have had the entries carried it: each
// endpoint and message gets its tenant and index entries, idempotency keys
// move to the tenant's range, and the tenant's counters are counted. It
// builds the indexes with Apply's own code. The applied index moves to
// its new key.
func migrateV0(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	if v := meta.Get(kAppliedV0); v != nil {
		if err := meta.Put(kApplied, bytes.Clone(v)); err != nil {
			return err
		}
		if err := meta.Delete(kAppliedV0); err != nil {
			return err
		}
	}
	t := newTxn(tx)
	err := rewrite(t.endpoints, func(ep *Endpoint) error {
		if ep.Tenant == "" {
			ep.Tenant = DefaultTenant
		}
		// Written by rewrite as stored; addEndpoint writes it too, the
		// same bytes.
		return t.addEndpoint(ep)
	})
	if err != nil {
		return err
	}
	err = rewrite(t.messages, func(m *Message) error {
		if m.Tenant == "" {
			m.Tenant = DefaultTenant
		}
		tc, err := t.tenant(m.Tenant)
		if err != nil {
			return err
		}
		tc.Messages++
		tc.Pending += m.Pending
		return t.tenantMsgs.Put(tenantKey(m.Tenant, m.ID), nil)
	})
	if err != nil {
		return err
	}
	err = moveBucket(tx, bIdempotencyV0, bIdempotency, func(k []byte) []byte {
		return tenantKey(DefaultTenant, k)
	})
	if err != nil {
		return err
	}
	err = moveBucket(tx, bIdemExpiryV0, bIdemExpiry, func(k []byte) []byte {
		if len(k) < 8 {
			return nil
		}
		return append(bytes.Clone(k[:8]), tenantKey(DefaultTenant, k[8:])...)
	})
	if err != nil {
		return err
	}
	return t.flushTenants()
}

// migrateV1 rebuilds the due index by destination from the deliveries
// the time-ordered index of version 1 names, then drops it.
func migrateV1(tx *bolt.Tx) error {
	old, deliveries, queued := tx.Bucket(bDueV1), tx.Bucket(bDeliveries), tx.Bucket(bQueued)
	if old == nil {
		return nil
	}
	err := old.ForEach(func(k, _ []byte) error {
		if len(k) < 8 {
			return fmt.Errorf("due index key of %d bytes", len(k))
		}
		var d Delivery
		ok, err := getRecord(deliveries, string(k[8:]), &d)
		if err != nil || !ok {
			return err // an index entry without its delivery is dropped
		}
		return queued.Put(dueKey(d.Queue(), d.NextAttemptAt, d.ID), nil)
	})
	if err != nil {
		return err
	}
	return tx.DeleteBucket(bDueV1)
}

// migrateV2 drops the per-endpoint index. The records schema 3 encodes
// compactly are rewritten after it, in chunks (see compactRecords).
func migrateV2(tx *bolt.Tx) error {
	if tx.Bucket(bByEndpointV2) == nil {
		return nil
	}
	return tx.DeleteBucket(bByEndpointV2)
}

// kCompact, in meta, records that every record of a kind with a compact
// encoding has it (see compactRecords).
var kCompact = []byte("records_compact")

// compactChunk is how many records one transaction of compactRecords
// rewrites.
const compactChunk = 10_000

// compactRecords rewrites the messages, deliveries, tenants and endpoints
// still in MessagePack (a file migrated from schema 2 holds them) in their
// compact encoding, compactChunk at a time: in transactions of their own,
// not in the migration's one, so that a backlog of millions needs no more
// memory than a chunk. The file says schema 3 throughout (an earlier build
// refuses it) and reads take either encoding, so a crash midway leaves
// the rest for the next open. Once done, it is not run again.
func compactRecords(db *bolt.DB) error {
	done := false
	if err := db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(bMeta).Get(kCompact) != nil
		return nil
	}); err != nil || done {
		return err
	}
	kinds := []struct {
		bucket []byte
		record func() binaryRecord
	}{
		{bMessages, func() binaryRecord { return new(Message) }},
		{bDeliveries, func() binaryRecord { return new(Delivery) }},
		{bTenants, func() binaryRecord { return new(Tenant) }},
		{bEndpoints, func() binaryRecord { return new(Endpoint) }},
	}
	for _, kind := range kinds {
		var after []byte
		for more := true; more; {
			err := db.Update(func(tx *bolt.Tx) error {
				var err error
				after, more, err = compactChunkOf(tx.Bucket(kind.bucket), after, kind.record)
				return err
			})
			if err != nil {
				return fmt.Errorf("store: rewrite %s compactly: %w", kind.bucket, err)
			}
		}
	}
	return db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kCompact, []byte{1}) })
}

// compactChunkOf rewrites up to compactChunk records of b after the key
// after that are not compact yet. It returns the last key it looked at,
// and whether any are left to look at.
func compactChunkOf(b *bolt.Bucket, after []byte, record func() binaryRecord) (last []byte, more bool, err error) {
	var keys [][]byte
	var recs []binaryRecord
	c := b.Cursor()
	k, v := c.First()
	if after != nil {
		k, v = seekPast(c, after)
	}
	for ; k != nil && len(keys) < compactChunk; k, v = c.Next() {
		last = bytes.Clone(k)
		if len(v) > 0 && v[0] == binaryTag {
			continue
		}
		rec := record()
		if err := decode(v, rec); err != nil {
			return nil, false, fmt.Errorf("record %q: %w", k, err)
		}
		keys = append(keys, last)
		recs = append(recs, rec)
	}
	for i, rec := range recs {
		if err := b.Put(keys[i], encodeBinary(rec)); err != nil {
			return nil, false, err
		}
	}
	return last, k != nil, nil
}

// migrateChunk is how many records a migration reads before it writes:
// a cursor must not be used across writes to its bucket.
const migrateChunk = 1024

// rewrite decodes every record of b, lets fn change it, and writes it
// back, a chunk at a time.
func rewrite[T any](b *bolt.Bucket, fn func(*T) error) error {
	var after []byte
	for {
		var keys [][]byte
		var recs []*T
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = seekPast(c, after)
		}
		for ; k != nil && len(keys) < migrateChunk; k, v = c.Next() {
			rec := new(T)
			if err := decode(v, rec); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			keys = append(keys, bytes.Clone(k))
			recs = append(recs, rec)
		}
		if len(keys) == 0 {
			return nil
		}
		for i, rec := range recs {
			if err := fn(rec); err != nil {
				return err
			}
			if err := putRecord(b, string(keys[i]), rec); err != nil {
				return err
			}
		}
		after = keys[len(keys)-1]
	}
}

// moveBucket copies every entry of the bucket from into the bucket to,
// under the key rekey makes (none when it returns nil), a chunk at a time,
// then deletes from. It does nothing when from does not exist.
func moveBucket(tx *bolt.Tx, from, to []byte, rekey func([]byte) []byte) error {
	src, dst := tx.Bucket(from), tx.Bucket(to)
	if src == nil {
		return nil
	}
	var after []byte
	for {
		var keys, vals [][]byte
		c := src.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = seekPast(c, after)
		}
		for ; k != nil && len(keys) < migrateChunk; k, v = c.Next() {
			keys = append(keys, bytes.Clone(k))
			vals = append(vals, bytes.Clone(v))
		}
		if len(keys) == 0 {
			break
		}
		for i := range keys {
			if nk := rekey(keys[i]); nk != nil {
				if err := dst.Put(nk, vals[i]); err != nil {
					return err
				}
			}
		}
		after = keys[len(keys)-1]
	}
	return tx.DeleteBucket(from)
}
