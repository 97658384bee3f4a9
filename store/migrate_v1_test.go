package store

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestMigrateFromTimeOrderedDueIndex: a file of schema 1 (a due index in
// time order, override deliveries queued by their full URL) opens with the
// due index by destination, every pending delivery in it once, and the old
// index gone.
func TestMigrateFromTimeOrderedDueIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openPath(t, path)
	g := newIDs(7)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	for i := range 20 {
		m := g.next(t, "msg", t0+ms(int64(i)))
		if i%2 == 0 {
			runOK(t, s, fanOut(m, "x", t0+ms(int64(i))))
		} else {
			runOK(t, s, override(m, "x", t0+ms(int64(i)), "https://o.example/a", "http://p.example:8080/b?c=d"))
		}
	}
	want := allDue(t, s)
	before := mustDump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Rewrite it as schema 1 wrote it: be64(at) ‖ id → the full URL.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		old, err := tx.CreateBucket(bDueV1)
		if err != nil {
			return err
		}
		for _, d := range want {
			var dl Delivery
			if _, err := getRecord(tx.Bucket(bDeliveries), d.DeliveryID, &dl); err != nil {
				return err
			}
			queue := dl.EndpointID
			if dl.Override() {
				queue = dl.URL
			}
			if err := old.Put(append(be64(d.At), d.DeliveryID...), []byte(queue)); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket(bQueued); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchema, be64(1))
	})
	if err == nil {
		err = db.Close()
	}
	if err != nil {
		t.Fatal(err)
	}

	s = openPath(t, path)
	mustCheck(t, s)
	if got := allDue(t, s); !slices.Equal(got, want) {
		t.Fatalf("due index after the migration:\n%v\nwant\n%v", got, want)
	}
	after := mustDump(t, s)
	if _, ok := after[string(bDueV1)]; ok {
		t.Error("the time-ordered due index is still there")
	}
	if !maps.EqualFunc(before, after, maps.Equal) {
		t.Error("the migrated file differs from one written by this build")
	}
	queues := map[string]bool{}
	for _, d := range want {
		queues[d.Queue] = true
	}
	if !maps.Equal(queues, map[string]bool{epID("a"): true, "https://o.example:443": true, "http://p.example:8080": true}) {
		t.Errorf("queues %v", queues)
	}
}
