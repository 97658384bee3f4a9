package cluster

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/heraldhq/herald/store"
	"go.etcd.io/bbolt"
)

// boltMeta reads the newer of a bbolt file's two meta pages: its
// transaction id and the page of its free-page list (^0: none written).
func boltMeta(t *testing.T, path string) (txid, freelist uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A page header (16 bytes), then magic, version, page size, flags,
	// the root bucket (16 bytes), freelist, pgid, txid.
	read := func(off int64) (pageSize uint32, txid, freelist uint64) {
		buf := make([]byte, 72)
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if magic := binary.LittleEndian.Uint32(buf[16:]); magic != 0xED0CDAED {
			t.Fatalf("%s: no bbolt meta page at %d (magic %#x)", path, off, magic)
		}
		return binary.LittleEndian.Uint32(buf[24:]), binary.LittleEndian.Uint64(buf[64:]), binary.LittleEndian.Uint64(buf[48:])
	}
	pageSize, tx0, fl0 := read(0)
	_, tx1, fl1 := read(int64(pageSize))
	if tx1 > tx0 {
		return tx1, fl1
	}
	return tx0, fl0
}

// openLoneNode opens a node that bootstraps alone in dir, on raft's
// in-memory transport, and waits for it to lead.
func openLoneNode(t *testing.T, dir string, configure ...func(*Config)) (*Node, *store.Store) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("n1")
	cfg := Config{NodeID: "n1", Dir: dir, Store: st, Transport: trans,
		Peers: []Peer{{ID: "n1", RaftAddr: string(trans.LocalAddr())}}}
	for _, f := range configure {
		f(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	waitFor(t, "n1 to lead", func() bool { leader, _, _ := n.Leadership(); return leader })
	// A new leader appends an entry of its own just after taking office;
	// the barrier waits for it, so tests that count entries start after.
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	return n, st
}

// The Raft log is opened without writing its free-page list on every
// commit; a file that has one (written before) opens and keeps its
// entries, and the node resumes on it.
func TestRaftLogSkipsTheFreelist(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "raft.db")

	// A log written with bbolt's defaults, as earlier versions did.
	old, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if _, fl := boltMeta(t, path); fl == ^uint64(0) {
		t.Fatal("bbolt's defaults wrote no freelist: the test cannot tell the options apart")
	}

	for round := 1; round <= 2; round++ {
		n, st := openLoneNode(t, dir)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for i := 0; i < 3; i++ { // each commits a log entry
			if err := n.Barrier(ctx); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		applied := n.raft.AppliedIndex()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if _, fl := boltMeta(t, path); fl != ^uint64(0) {
			t.Fatalf("round %d: raft.db's last commit wrote a freelist (page %d)", round, fl)
		}
		// Every entry is in the file, readable with bbolt's defaults too.
		logs, err := raftboltdb.New(raftboltdb.Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		last, err := logs.LastIndex()
		if err != nil || last < applied {
			t.Fatalf("round %d: last index %d (%v), want at least %d", round, last, err, applied)
		}
		var l raft.Log
		if err := logs.GetLog(last, &l); err != nil {
			t.Fatalf("round %d: entry %d: %v", round, last, err)
		}
		logs.Close()
	}
}

func TestLogBoltOptions(t *testing.T) {
	o := logBoltOptions()
	if o.NoSync || o.NoGrowSync {
		t.Error("the Raft log must be fsynced")
	}
	if !o.NoFreelistSync || o.FreelistType != bbolt.FreelistMapType {
		t.Errorf("NoFreelistSync %v, FreelistType %q: want true, %q", o.NoFreelistSync, o.FreelistType, bbolt.FreelistMapType)
	}
}
