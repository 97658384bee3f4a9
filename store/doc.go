// Package store is Herald's state machine storage: a bbolt file holding
// messages (with the exact envelope bytes fixed at enqueue), deliveries and
// their attempt history, a due-time index, endpoints with their secrets,
// signing keys, idempotency keys, cluster node addresses, and the index of
// the last applied Raft entry.
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
// Endpoint secrets and private signing keys may be sealed ([Sealer]) by the
// engine before they enter a command; the store only recognises and bounds
// them.
//
// The store knows nothing of Raft; package cluster feeds it committed
// entries, and package engine reads it.
package store
