// Package store is Herald's state machine storage: a bbolt file holding
// messages (with the exact envelope bytes fixed at enqueue), deliveries and
// their attempt history, a due-time index, endpoints with their secrets,
// signing keys, idempotency keys, tenants and their tokens, cluster node
// addresses, and the index of the last applied Raft entry.
//
// Every change is a [Command]. Commands are applied in batches by
// [Store.Apply], in one bbolt transaction together with the Raft index they
// came from, so a restart replays the log exactly from where the file left
// off. Apply is deterministic: it never reads the clock, randomness or the
// network; every time and id is stamped into the command by the leader.
// Commands are idempotent, because a command retried after a lost leadership
// may already have been committed. Apply is also total: every command is
// checked against the limits in [Command.Validate] before it touches the
// file, and a bad one is rejected in its [Result], the same way on every
// replica, instead of failing the write (which would halt every replica at
// that entry for good). The engine checks client input with the same
// exported limits and Check functions.
//
// Endpoints, messages, idempotency keys and tokens belong to a tenant
// ([DefaultTenant] for everything made before tenants). Commands and the
// reads an API serves name their tenant, and a record of another tenant is
// not found; a message fans out only to its tenant's endpoints, through an
// index of subscriptions, so its cost does not grow with other tenants.
// Per-tenant counters ([Store.Tenants]) are kept as records change.
//
// The file records its schema version; Open migrates a file written by an
// earlier build and refuses one written by a newer build
// ([ErrNewerSchema]).
//
// Endpoint secrets and private signing keys may be sealed ([Sealer]) by the
// engine before they enter a command; the store only recognises and bounds
// them. Tenant tokens are stored only as their SHA-256.
//
// The store knows nothing of Raft; package cluster feeds it committed
// entries, and package engine reads it.
package store
