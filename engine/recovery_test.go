package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMachineCrashRebuildsStateFromRaft simulates a machine crash: the
// state file (written without fsync) is marked as open under another boot,
// so the next Open must not trust it. The state must come back whole from
// the Raft log, with and without a snapshot having truncated the log.
func TestMachineCrashRebuildsStateFromRaft(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", snapshot), func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{DataDir: dir, RaftAddr: "127.0.0.1:0", AllowPrivateNetworks: true, Logger: testLogger(t)}
			if snapshot {
				cfg.Raft.SnapshotThreshold = 8
				cfg.Raft.TrailingLogs = 2
				cfg.Raft.SnapshotInterval = 20 * time.Millisecond
			}
			e, err := Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "leadership", func() bool { return e.IsLeader() && e.delivering.Load() })
			var ids []string
			enqueue := func(n int) {
				for i := range n {
					m, _, err := e.Enqueue(context.Background(), MessageInput{Type: "job.done", Data: json.RawMessage(`{}`),
						IdempotencyKey: fmt.Sprintf("k%d-%d", len(ids), i)})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, m.ID)
				}
			}
			enqueue(40)
			if snapshot {
				waitFor(t, 10*time.Second, "a snapshot", func() bool {
					entries, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
					return len(entries) > 0
				})
				enqueue(5) // entries after the snapshot, only in the log
			}
			want, err := e.store.Dump()
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			// The machine went down while the file was open.
			if err := os.WriteFile(cfg.statePath()+".session", []byte("open another-boot"), 0o600); err != nil {
				t.Fatal(err)
			}

			e = startEngine(t, cfg)
			if !e.store.Rebuilt() {
				t.Fatal("the state file was trusted after a machine crash")
			}
			for _, id := range ids {
				if _, err := e.Message(context.Background(), "", id); err != nil {
					t.Fatalf("message %s lost in the rebuild: %v", id, err)
				}
			}
			if err := e.store.Check(); err != nil {
				t.Fatal(err)
			}
			got, err := e.store.Dump()
			if err != nil {
				t.Fatal(err)
			}
			for _, bucket := range []string{"messages", "envelopes", "deliveries", "endpoints", "idempotency", "signing_keys"} {
				if len(got[bucket]) != len(want[bucket]) {
					t.Errorf("bucket %s: %d records after the rebuild, %d before", bucket, len(got[bucket]), len(want[bucket]))
				}
			}
		})
	}
}
