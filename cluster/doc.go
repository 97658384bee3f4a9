// Package cluster replicates Herald's state machine with hashicorp/raft.
//
// A [Node] owns the Raft log (raft-boltdb), file snapshots and the peer
// port, one listener (under mutual TLS when [Config].TLS is set) that
// carries both Raft and the node-to-node HTTP API ([Node.PeerClient]), and
// applies committed entries to a [store.Store] through a
// batching FSM: many committed entries, one bbolt transaction. Writers call
// [Node.Apply]; concurrent commands are group-committed into shared log
// entries. A single node is simply a one-voter cluster, so there is one code
// path whatever the cluster size.
//
// Leadership changes are relayed through [Node.Leadership] without ever
// blocking Raft and without losing a transition: a generation number changes
// on every one.
package cluster
