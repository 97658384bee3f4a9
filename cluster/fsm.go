package cluster

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/store"
)

// fsm applies committed log entries to the store.
type fsm struct {
	st *store.Store
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies the logs in one bbolt transaction. Each command log's
// response is its []store.Result.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]store.Entry, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type == raft.LogCommand {
			entries[i].Data = l.Data
		}
	}
	results, err := f.st.Apply(entries)
	if err != nil {
		// The file could not be written. Going on would acknowledge writes
		// this node does not hold and make its state diverge; stopping lets
		// a restart replay the log from the last applied index.
		panic(fmt.Sprintf("cluster: cannot apply committed entries: %v", err))
	}
	out := make([]any, len(logs))
	for i, r := range results {
		out[i] = r
	}
	return out
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.st.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{sn: sn}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.st.Restore(rc); err != nil {
		return err
	}
	// An Apply of no entries changes nothing but reports the index the
	// store now holds to its OnApplied hook: whoever waits for an index
	// (a follower's reads, for their read index) sees the jump at once,
	// not at the next entry, which an idle cluster may not send for long.
	_, err := f.st.Apply(nil)
	return err
}

// fsmSnapshot streams a consistent copy of the bbolt file.
type fsmSnapshot struct {
	sn *store.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("cluster: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.sn.Release() }
