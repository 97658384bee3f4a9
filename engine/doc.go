// Package engine is Herald's webhook delivery engine, for use inside another
// Go program or behind `herald serve`.
//
// Open an [Engine] on a data directory (a one-node cluster, with
// [Config].NoNetwork one that opens no port) or with peers (a Raft
// cluster); register endpoints; [Engine.Enqueue] messages, with idempotency
// keys; wait for their outcome ([Engine.WaitDelivered], [Engine.Subscribe])
// or read their status; and [Engine.Stop] it ([Engine.Close] is Stop with a
// few seconds' bound). A provider with many customers gives each a tenant:
// every call names one ("" is [DefaultTenant]), and a message fans out only
// to its own tenant's endpoints. Every state
// change is committed to a Raft majority before a call returns, so a message
// that Enqueue accepted is delivered, or ends failed after the retry window,
// whatever node crashes or loses leadership meanwhile.
//
// Only the leader delivers. On gaining leadership it waits for the log to be
// applied, rebuilds a timing wheel from the store's due-time index, and
// dispatches due deliveries to per-destination queues with their own
// concurrency, so one slow receiver never delays another. Each attempt is
// signed afresh with Standard Webhooks headers; its outcome is
// group-committed back through Raft, and the next attempt scheduled.
//
// Any node accepts every call: a follower forwards writes, as the typed
// requests they are, to the leader, which validates them as its own, and
// reads are linearizable on every node (a node that cannot vouch for its
// store answers [ErrNotLeader]). [Config].PeerTLS puts the traffic between
// nodes under mutual TLS; [Config].SealKey seals secrets before they reach
// the log. [Engine.Backup] and [RestoreDataDir] move the whole state to a
// new cluster.
package engine
