// Package bench measures Herald end to end: it starts real `herald serve`
// processes (one node or a three-node cluster) and a local receiver, drives
// load through the HTTP API, and reports throughput and latency against a
// raw HTTP baseline measured in the same run. `herald bench` is its command
// line; the process-level crash and failover tests use the same harness.
package bench
