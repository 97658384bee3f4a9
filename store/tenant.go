package store

import (
	"bytes"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// DefaultTenant is the tenant of everything made before tenants, and of a
// command that predates them and names none. The API's routes without a
// tenant act on it.
const DefaultTenant = "default"

// allTypes is the event type under which the subscriptions index holds an
// endpoint with an empty filter. It is no valid event type, so it never
// names one.
const allTypes = "*"

// Index keys of per-tenant buckets begin with the tenant and a 0 byte,
// which no tenant id holds, so a tenant's keys are one range.

// tenantPrefix returns tenant ‖ 0, the start of the tenant's keys.
func tenantPrefix(tenant string) []byte {
	k := make([]byte, 0, len(tenant)+1+32)
	return append(append(k, tenant...), 0)
}

// tenantKey returns tenant ‖ 0 ‖ rest.
func tenantKey[T string | []byte](tenant string, rest T) []byte {
	k := make([]byte, 0, len(tenant)+1+len(rest))
	return append(append(append(k, tenant...), 0), rest...)
}

// subPrefix returns tenant ‖ 0 ‖ typ ‖ 0, the start of the subscriptions
// of the tenant's endpoints to typ (or allTypes).
func subPrefix(tenant, typ string) []byte {
	k := make([]byte, 0, len(tenant)+len(typ)+2+32)
	return append(append(append(append(k, tenant...), 0), typ...), 0)
}

// subKey returns an endpoint's subscriptions index key for typ.
func subKey(tenant, typ, epID string) []byte { return append(subPrefix(tenant, typ), epID...) }

// splitTenant splits an index key into its tenant and the rest.
func splitTenant(k []byte) (tenant string, rest []byte, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(k[:i]), k[i+1:], true
}

// tenant returns the tenant's counters, read once per transaction and
// written by flushTenants: one small read and write per tenant a batch
// touches, however many of its messages and deliveries change.
func (t *txn) tenant(id string) (*Tenant, error) {
	if tc, ok := t.tenantCounts[id]; ok {
		return tc, nil
	}
	tc := &Tenant{ID: id}
	if _, err := getRecord(t.tenants, id, tc); err != nil {
		return nil, err
	}
	t.tenantCounts[id] = tc
	return tc, nil
}

// flushTenants writes the counters touched; a tenant with nothing left
// leaves the list.
func (t *txn) flushTenants() error {
	for id, tc := range t.tenantCounts {
		var err error
		if tc.empty() {
			err = t.tenants.Delete([]byte(id))
		} else {
			err = putRecord(t.tenants, id, tc)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// firstKeys returns the rest of up to n keys of b that begin with prefix,
// copied, so that the caller may change b.
func firstKeys(b *bolt.Bucket, prefix []byte, n int) [][]byte {
	var out [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < n; k, _ = c.Next() {
		out = append(out, bytes.Clone(k[len(prefix):]))
	}
	return out
}

// deleteTenant does up to c.Limit records of a tenant's deletion, in the
// order DeleteTenant gives. It stops only once it has done Limit, so a
// Count below Limit means nothing of the tenant is left.
func (t *txn) deleteTenant(c *DeleteTenant) (Result, error) {
	prefix := tenantPrefix(c.Tenant)
	n := 0
	// Endpoints first, so nothing more is sent to the tenant's receivers.
	for n < c.Limit {
		ids := firstKeys(t.tenantEPs, prefix, 1)
		if len(ids) == 0 {
			break
		}
		ep, err := t.endpoint(string(ids[0]))
		if err != nil {
			return Result{}, err
		}
		if ep == nil {
			return Result{}, fmt.Errorf("store: tenant %s lists endpoint %s, which does not exist", c.Tenant, ids[0])
		}
		ended, err := t.endPending(ep.ID, StatusCancelled, "tenant deleted", c.Limit-n)
		if err != nil {
			return Result{}, err
		}
		if n += ended; n >= c.Limit {
			break // the next command deletes it, when none is left pending
		}
		if err := t.removeEndpoint(ep); err != nil {
			return Result{}, err
		}
		n++
	}
	for n < c.Limit {
		hashes := firstKeys(t.tenantTokens, prefix, c.Limit-n)
		if len(hashes) == 0 {
			break
		}
		for _, h := range hashes {
			if err := t.deleteToken(h); err != nil {
				return Result{}, err
			}
			n++
		}
	}
	// Messages, with what is still pending (to override URIs: the
	// endpoints' are cancelled above).
	for n < c.Limit {
		ids := firstKeys(t.tenantMsgs, prefix, min(c.Limit-n, 256))
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			m, err := t.message(string(id))
			if err != nil {
				return Result{}, err
			}
			if m == nil {
				return Result{}, fmt.Errorf("store: tenant %s lists message %s, which does not exist", c.Tenant, id)
			}
			if err := t.dropMessage(m); err != nil {
				return Result{}, err
			}
			n++
		}
	}
	// Idempotency keys, including those whose message retention took.
	for n < c.Limit {
		keys := firstKeys(t.idempotency, prefix, c.Limit-n)
		if len(keys) == 0 {
			break
		}
		for _, key := range keys {
			if err := t.dropIdempotencyKey(tenantKey(c.Tenant, key)); err != nil {
				return Result{}, err
			}
			n++
		}
	}
	return Result{Count: n}, nil
}

// dropIdempotencyKey deletes a key (tenant ‖ 0 ‖ key) and its expiry
// index entry.
func (t *txn) dropIdempotencyKey(k []byte) error {
	var rec idempotencyRecord
	ok, err := getRecord(t.idempotency, string(k), &rec)
	if err != nil || !ok {
		return err
	}
	if err := t.idemExpiry.Delete(append(be64(rec.ExpiresAt), k...)); err != nil {
		return err
	}
	return t.idempotency.Delete(k)
}

func (t *txn) createToken(c *CreateTenantToken) (Result, error) {
	var rec tokenRecord
	ok, err := getRecord(t.tokens, string(c.Hash), &rec)
	if err != nil {
		return Result{}, err
	}
	if ok {
		if rec.Tenant != c.Tenant {
			return Result{Err: ErrExists}, nil
		}
		return Result{}, nil // already applied (a retried command)
	}
	// A tenant holds at most MaxTenantTokens tokens of any kind once this
	// one is stored (its expired ones go now), so this scan is bounded.
	var expired [][]byte
	live := 0
	prefix := tenantPrefix(c.Tenant)
	cur := t.tenantTokens.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		h := k[len(prefix):]
		var other tokenRecord
		ok, err := getRecord(t.tokens, string(h), &other)
		if err != nil {
			return Result{}, err
		}
		switch {
		case !ok:
			return Result{}, fmt.Errorf("store: tenant %s lists a token that does not exist", c.Tenant)
		case other.ExpiresAt <= c.CreatedAt:
			expired = append(expired, bytes.Clone(h))
		default:
			live++
		}
	}
	if live >= MaxTenantTokens {
		return Result{Err: invalid("create_tenant_token.tenant",
			fmt.Sprintf("holds %d live tokens, the most a tenant may: revoke them or let some expire", MaxTenantTokens))}, nil
	}
	for _, h := range expired {
		if err := t.deleteToken(h); err != nil {
			return Result{}, err
		}
	}
	rec = tokenRecord{Tenant: c.Tenant, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt}
	if err := putRecord(t.tokens, string(c.Hash), &rec); err != nil {
		return Result{}, err
	}
	if err := t.tenantTokens.Put(tenantKey(c.Tenant, c.Hash), nil); err != nil {
		return Result{}, err
	}
	if err := t.tokenExpiry.Put(append(be64(c.ExpiresAt), c.Hash...), nil); err != nil {
		return Result{}, err
	}
	tc, err := t.tenant(c.Tenant)
	if err != nil {
		return Result{}, err
	}
	tc.Tokens++
	return Result{}, nil
}

func (t *txn) revokeTokens(c *RevokeTenantTokens) (Result, error) {
	// At most MaxTenantTokens (see createToken).
	hashes := firstKeys(t.tenantTokens, tenantPrefix(c.Tenant), math.MaxInt)
	for _, h := range hashes {
		if err := t.deleteToken(h); err != nil {
			return Result{}, err
		}
	}
	return Result{Count: len(hashes)}, nil
}

// deleteToken deletes a token with its index entries and count.
func (t *txn) deleteToken(hash []byte) error {
	var rec tokenRecord
	ok, err := getRecord(t.tokens, string(hash), &rec)
	if err != nil || !ok {
		return err
	}
	if err := t.tenantTokens.Delete(tenantKey(rec.Tenant, hash)); err != nil {
		return err
	}
	if err := t.tokenExpiry.Delete(append(be64(rec.ExpiresAt), hash...)); err != nil {
		return err
	}
	tc, err := t.tenant(rec.Tenant)
	if err != nil {
		return err
	}
	tc.Tokens--
	return t.tokens.Delete(hash)
}
