//go:build race

package engine

// raceEnabled reports whether the tests run under the race detector, which
// slows Raft and bbolt several times: size-heavy tests use less data then.
const raceEnabled = true
