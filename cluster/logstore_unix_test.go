//go:build unix

package cluster

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogStore appends one 14 KB entry per commit (a typical group
// commit) to a log in its steady state after a snapshot: TrailingLogs
// entries kept, the SnapshotThreshold before them deleted and their pages
// free. cpu-ns/op counts the process's CPU, the fsyncs' included.
func BenchmarkLogStore(b *testing.B) {
	for _, c := range []struct {
		name string
		opts *bbolt.Options
	}{{"bbolt-defaults", nil}, {"herald", logBoltOptions()}} {
		b.Run(c.name, func(b *testing.B) {
			s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db"), BoltOptions: c.opts})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			data := make([]byte, 14<<10)
			idx := uint64(1)
			var batch []*raft.Log
			for ; idx <= 8192+10240; idx++ {
				batch = append(batch, &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data})
				if len(batch) == 256 {
					if err := s.StoreLogs(batch); err != nil {
						b.Fatal(err)
					}
					batch = nil
				}
			}
			if err := s.DeleteRange(1, 8192); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			c0 := processCPU()
			for i := 0; i < b.N; i++ {
				l := &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
				idx++
				if err := s.StoreLogs([]*raft.Log{l}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-c0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(s.Stats().FreePageN), "free-pages")
		})
	}
}
