package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	bolt "go.etcd.io/bbolt"
)

// The records as the build before tenants wrote them.
type messageV0 struct {
	ID             string   `json:"id"`
	Type           string   `json:"type"`
	CreatedAt      int64    `json:"created_at"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	Deliveries     []string `json:"deliveries"`
	Pending        int      `json:"pending"`
	Succeeded      int      `json:"succeeded"`
	Failed         int      `json:"failed"`
	Cancelled      int      `json:"cancelled"`
}

type endpointV0 struct {
	ID            string   `json:"id"`
	URL           string   `json:"url"`
	Name          string   `json:"name,omitempty"`
	EventTypes    []string `json:"event_types"`
	State         string   `json:"state"`
	RateLimitPerS int      `json:"rate_limit_per_s,omitempty"`
	Secrets       []Secret `json:"secrets"`
	CreatedAt     int64    `json:"created_at"`
	UpdatedAt     int64    `json:"updated_at"`
}

const upgradeDir = "../testdata/upgrade/v0"

// copyV0 copies the state file (and its session record, which says it
// was closed cleanly) of the data dir written before tenants.
func copyV0(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"state.db", "state.db.session"} {
		b, err := os.ReadFile(filepath.Join(upgradeDir, "data", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "state.db")
}

// v0Manifest is what testdata/upgrade/v0/manifest.json says of its data.
type v0Manifest map[string]struct {
	ID         string   `json:"id"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Type       string   `json:"type"`
}

func readManifest(t *testing.T) v0Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(upgradeDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw, "note")
	b, _ = json.Marshal(raw)
	var m v0Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestV0RecordsRoundTrip guards the tests below: the v0 record types here
// encode the previous release's records byte for byte, so that files
// downgraded with them are files that release could have written.
func TestV0RecordsRoundTrip(t *testing.T) {
	db, err := bolt.Open(copyV0(t), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		for name, rec := range map[string]func() any{"messages": func() any { return new(messageV0) }, "endpoints": func() any { return new(endpointV0) }} {
			err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
				r := rec()
				if err := decode(v, r); err != nil {
					return err
				}
				again, err := encode(r)
				if err != nil {
					return err
				}
				if !bytes.Equal(again, v) {
					return fmt.Errorf("%s %s re-encodes as %x, was %x", name, k, again, v)
				}
				n++
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("%d records checked: %v", n, err)
	}
}

// TestUpgradeFromV0 opens the state file of a data dir written by the
// release before tenants: everything is in the default tenant, indexed
// and counted, and the store goes on as if it had always had tenants.
func TestUpgradeFromV0(t *testing.T) {
	man := readManifest(t)
	path := copyV0(t)
	s, err := Open(path, Options{NoSync: true, BootID: func() (string, error) { return "boot", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Rebuilt() {
		t.Fatal("the cleanly closed file was not trusted")
	}
	mustCheck(t, s)
	if idx, _ := s.AppliedIndex(); idx != 15 {
		t.Fatalf("applied index %d, want 15", idx)
	}
	d := mustDump(t, s)
	if v := d["meta"][string(kSchema)]; v != string(be64(schemaVersion)) {
		t.Fatalf("schema version %x", v)
	}

	eps, err := s.Endpoints(DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	var epIDs []string
	for _, ep := range eps {
		epIDs = append(epIDs, ep.ID)
		if ep.Tenant != DefaultTenant || ep.State != StateEnabled {
			t.Errorf("endpoint %+v", ep)
		}
	}
	if want := []string{man["ep-ok"].ID, man["ep-down"].ID}; !slices.Equal(epIDs, want) {
		t.Fatalf("default endpoints %v, want %v", epIDs, want)
	}
	// The manifest has the status at acceptance; its note, what became
	// of them: ep-ok took msg-2 and the override took msg-3, ep-down
	// refused msg-1.
	for name, status := range map[string]string{"msg-1": StatusPending, "msg-2": StatusSucceeded, "msg-3": StatusSucceeded} {
		m, _ := getMessage(t, s, man[name].ID)
		if m.Tenant != DefaultTenant || m.Type != man[name].Type || m.Status() != status {
			t.Errorf("%s: %+v, want type %s, status %s", name, m, man[name].Type, status)
		}
	}
	listed, _, err := s.ListMessages(DefaultTenant, ListFilter{}, 10, "")
	if err != nil || len(listed) != 3 || listed[0].ID != man["msg-3"].ID || listed[2].ID != man["msg-1"].ID {
		t.Fatalf("ListMessages: %+v, %v", listed, err)
	}

	// The idempotency key is the default tenant's, and only its.
	m1, ds := getMessage(t, s, man["msg-1"].ID)
	if id, _, ok, err := s.IdempotentMessage(DefaultTenant, "job-1", m1.CreatedAt+1); err != nil || !ok || id != m1.ID {
		t.Fatalf("IdempotentMessage(default, job-1) = %q, %v, %v; want %s", id, ok, err, m1.ID)
	}
	if _, _, ok, _ := s.IdempotentMessage("other", "job-1", m1.CreatedAt+1); ok {
		t.Fatal("job-1 is a key of another tenant too")
	}
	if _, ok := d["idempotency"]; ok {
		t.Fatal("the old idempotency bucket is listed")
	}

	// The pending delivery keeps its due time: an hour after its attempt.
	var pending *Delivery
	for i := range ds {
		if ds[i].Status == StatusPending {
			pending = &ds[i]
		}
	}
	if pending == nil || pending.EndpointID != man["ep-down"].ID || pending.NextAttemptAt != pending.FirstAttemptAt+int64(time.Hour) {
		t.Fatalf("msg-1's deliveries %+v", ds)
	}
	if due := allDue(t, s); !slices.Equal(due, []Due{{DeliveryID: pending.ID, At: pending.NextAttemptAt, Queue: man["ep-down"].ID}}) {
		t.Fatalf("due index %+v", due)
	}
	if tc, err := s.Tenant(DefaultTenant); err != nil || *tc != (Tenant{ID: DefaultTenant, Endpoints: 2, Pending: 1, Messages: 3}) {
		t.Fatalf("default tenant %+v, %v", tc, err)
	}
	if ts, err := s.Tenants("", 10); err != nil || len(ts) != 1 {
		t.Fatalf("tenants %+v, %v", ts, err)
	}

	// New messages fan out in the default tenant to both endpoints (one
	// takes every type, one job.done), and in another to nobody.
	var want []string
	for _, name := range []string{"ep-ok", "ep-down"} {
		if len(man[name].EventTypes) == 0 || slices.Contains(man[name].EventTypes, "job.done") {
			want = append(want, man[name].ID)
		}
	}
	g := newIDs(100)
	at := listed[0].CreatedAt + ms(1000)
	inDefault, inOther := g.next(t, "msg", at), g.next(t, "msg", at)
	other := fanOut(inOther, "job.done", at)
	other.Enqueue.Tenant = "other"
	runOK(t, s, fanOut(inDefault, "job.done", at), other)
	_, ds = getMessage(t, s, inDefault)
	var got []string
	for _, dl := range ds {
		got = append(got, dl.EndpointID)
	}
	if !slices.Equal(got, want) || len(want) != 2 {
		t.Fatalf("job.done in default went to %v, want %v", got, want)
	}
	if m, ds, err := s.Message("other", inOther); err != nil || len(ds) != 0 || m.Status() != StatusSucceeded {
		t.Fatalf("job.done in another tenant: %+v, %+v, %v", m, ds, err)
	}
}

// raftLog reads the Raft log of the data dir written before tenants, as
// the entries its FSM was given (raft-boltdb encodes raft.Log with
// MessagePack; only commands carry data to the store).
func raftLog(t *testing.T) []Entry {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(upgradeDir, "data", "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "raft.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var entries []Entry
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("logs")).ForEach(func(k, v []byte) error {
			var l struct {
				Index uint64
				Type  uint8
				Data  []byte
			}
			if err := codec.NewDecoderBytes(v, &codec.MsgpackHandle{}).Decode(&l); err != nil {
				return err
			}
			if l.Index != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("log %x holds index %d", k, l.Index)
			}
			e := Entry{Index: l.Index}
			if l.Type == 0 { // raft.LogCommand
				e.Data = l.Data
			}
			entries = append(entries, e)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestUpgradeMatchesReplay: the migrated file is the state this build
// makes from the same log, which old entries (without tenants) replay
// into: a replica that migrated and one that replayed agree.
func TestUpgradeMatchesReplay(t *testing.T) {
	entries := raftLog(t)
	if len(entries) != 15 {
		t.Fatalf("%d log entries, want 15", len(entries))
	}
	replayed := openTest(t)
	for _, rs := range applyInChunks(t, replayed, entries, 0) {
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("replaying the old log: %v", r.Err)
			}
		}
	}
	migrated := openPath(t, copyV0(t))
	mustCheck(t, replayed)
	forgetHealth(t, replayed)
	sameDump(t, replayed, migrated, "migrated file and replayed log")
	err := migrated.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bByEndpointV2) != nil {
			return errors.New("the migrated file keeps the by_endpoint index")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// downgradeToV0 turns a file that holds only the default tenant into the
// file the build before tenants would have written for the same entries.
func downgradeToV0(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bMeta).Delete(kSchema); err != nil {
			return err
		}
		type kv struct{ k, v []byte }
		var puts []kv
		err := tx.Bucket(bMessages).ForEach(func(k, v []byte) error {
			var m Message
			if err := decode(v, &m); err != nil || m.Tenant != DefaultTenant {
				return fmt.Errorf("message %s of tenant %q: %v", k, m.Tenant, err)
			}
			raw, err := encode(&messageV0{m.ID, m.Type, m.CreatedAt, m.IdempotencyKey, m.Deliveries, m.Pending, m.Succeeded, m.Failed, m.Cancelled})
			puts = append(puts, kv{bytes.Clone(k), raw})
			return err
		})
		if err != nil {
			return err
		}
		for _, p := range puts {
			if err := tx.Bucket(bMessages).Put(p.k, p.v); err != nil {
				return err
			}
		}
		puts = puts[:0]
		err = tx.Bucket(bEndpoints).ForEach(func(k, v []byte) error {
			var ep Endpoint
			if err := decode(v, &ep); err != nil || ep.Tenant != DefaultTenant {
				return fmt.Errorf("endpoint %s of tenant %q: %v", k, ep.Tenant, err)
			}
			raw, err := encode(&endpointV0{ep.ID, ep.URL, ep.Name, ep.EventTypes, ep.State, ep.RateLimitPerS, ep.Secrets, ep.CreatedAt, ep.UpdatedAt})
			puts = append(puts, kv{bytes.Clone(k), raw})
			return err
		})
		if err != nil {
			return err
		}
		for _, p := range puts {
			if err := tx.Bucket(bEndpoints).Put(p.k, p.v); err != nil {
				return err
			}
		}
		for _, mv := range []struct {
			from, to []byte
			prefix   int
		}{{bIdempotency, bIdempotencyV0, 0}, {bIdemExpiry, bIdemExpiryV0, 8}} {
			dst, err := tx.CreateBucket(mv.to)
			if err != nil {
				return err
			}
			err = tx.Bucket(mv.from).ForEach(func(k, v []byte) error {
				tenant, rest, ok := splitTenant(k[mv.prefix:])
				if !ok || tenant != DefaultTenant {
					return fmt.Errorf("key %q of another tenant", k)
				}
				return dst.Put(append(bytes.Clone(k[:mv.prefix]), rest...), bytes.Clone(v))
			})
			if err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bIdempotency, bIdemExpiry, bSubscriptions, bTenantEndpoints, bTenantMessages,
			bTenants, bTokens, bTenantTokens, bTokenExpiry} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("downgrade: %v", err)
	}
}

// TestMigrationMatchesApply: a replica that wrote a log's first n entries
// with the build before tenants, then migrated and applied the rest, ends
// with the state of one that applied the whole log with this build,
// whatever n.
func TestMigrationMatchesApply(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		g := newLogGenV0(t, seed)
		entries := g.generate(160)
		for _, n := range []int{0, 1, len(entries) / 3, len(entries) / 2, len(entries) - 1, len(entries)} {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			applyInChunks(t, s, entries[:n], 5)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			downgradeToV0(t, path)
			s = openPath(t, path)
			mustCheck(t, s)
			applyInChunks(t, s, entries, 7) // the first n are replays, skipped
			mustCheck(t, s)
			forgetHealth(t, g.store)
			forgetHealth(t, s)
			sameDump(t, g.store, s, fmt.Sprintf("seed %d, migrated after %d of %d entries", seed, n, len(entries)))
		}
	}
}

// forgetHealth clears what the build before tenants did not record of
// endpoints (their health, why and when they were disabled), which this
// build derives from outcomes as it applies them: a replica that applied
// old entries with that build lacks them, until an attempt succeeds or the
// endpoint is enabled again.
func forgetHealth(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bEndpoints)
		var eps []Endpoint
		err := b.ForEach(func(k, v []byte) error {
			var ep Endpoint
			err := decode(v, &ep)
			eps = append(eps, ep)
			return err
		})
		for i := 0; err == nil && i < len(eps); i++ {
			ep := &eps[i]
			ep.Health, ep.DisabledReason, ep.DisabledAt = EndpointHealth{}, "", 0
			err = putRecord(b, ep.ID, ep)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setSchema writes a schema version into a closed state file.
func setSchema(t *testing.T, path string, v uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, be64(int64(v))) }); err != nil {
		t.Fatal(err)
	}
}

// TestNewerSchemaRefused: a file, snapshot or backup of a newer build does
// not open, and a snapshot of one does not replace the current file.
func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	s, err := Open(newer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	s.Close()
	setSchema(t, newer, schemaVersion+1)

	_, err = Open(newer, Options{})
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "newer herald") || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("Open of a newer file: %v", err)
	}
	raw, err := os.ReadFile(newer)
	if err != nil {
		t.Fatal(err)
	}
	cur := openTest(t)
	runOK(t, cur, createEndpoint(epID("b"), "https://b.example", t0))
	if err := cur.Restore(bytes.NewReader(raw)); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Restore of a newer snapshot: %v", err)
	}
	getEndpoint(t, cur, epID("b")) // still the current file, open
	runOK(t, cur, createEndpoint(epID("c"), "https://c.example", t0))
	if err := RestoreFile(filepath.Join(dir, "restored", "state.db"), bytes.NewReader(raw)); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("RestoreFile of a newer backup: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "restored", "state.db")); err == nil {
		t.Fatal("RestoreFile left a newer file in place")
	}
}

// TestRestoreV0: a snapshot or a backup made before tenants is migrated
// as it is restored.
func TestRestoreV0(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(upgradeDir, "data", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	want := openPath(t, copyV0(t))
	s := openTest(t)
	runOK(t, s, createEndpoint(epID("stale"), "https://stale.example", t0))
	if err := s.Restore(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, s)
	sameDump(t, want, s, "restored old snapshot")

	path := filepath.Join(t.TempDir(), "state.db")
	if err := RestoreFile(path, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	r := openPath(t, path)
	mustCheck(t, r)
	if idx, _ := r.AppliedIndex(); idx != 0 {
		t.Fatalf("restored backup's applied index %d", idx)
	}
	man := readManifest(t)
	m, _ := getMessage(t, r, man["msg-1"].ID)
	if id, _, ok, _ := r.IdempotentMessage(DefaultTenant, "job-1", m.CreatedAt); !ok || id != m.ID {
		t.Fatalf("idempotency key after restoring an old backup: %q, %v", id, ok)
	}
}

// TestOlderWriterRefused: a migrated file that a build before tenants then
// wrote to (it puts its applied index at the old key) is refused, not
// trusted with indexes that build did not keep.
func TestOlderWriterRefused(t *testing.T) {
	path := copyV0(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if idx, _ := s.AppliedIndex(); idx != 15 {
		t.Fatalf("applied index %d after migration", idx)
	}
	if d := mustDump(t, s)["meta"]; d[string(kAppliedV0)] != "" {
		t.Fatalf("the old applied index key is still there: %q", d)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kAppliedV0, be64(16)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrOlderWriter) {
		t.Fatalf("Open of a file an older build wrote to: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cur := openTest(t)
	if err := cur.Restore(bytes.NewReader(raw)); !errors.Is(err, ErrOlderWriter) {
		t.Fatalf("Restore: %v", err)
	}
	if err := RestoreFile(filepath.Join(t.TempDir(), "state.db"), bytes.NewReader(raw)); !errors.Is(err, ErrOlderWriter) {
		t.Fatalf("RestoreFile: %v", err)
	}
}

// compactKinds are the buckets whose records schema 3 encodes compactly.
var compactKinds = [][]byte{bMessages, bDeliveries, bTenants, bEndpoints}

// packedRecords counts the records of those buckets still in MessagePack,
// and reports whether the file says they are all compact.
func packedRecords(t *testing.T, path string) (packed int, marked bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		marked = tx.Bucket(bMeta).Get(kCompact) != nil
		for _, name := range compactKinds {
			b := tx.Bucket(name)
			if b == nil {
				continue // a file older than the bucket
			}
			if err := b.ForEach(func(_, v []byte) error {
				if len(v) == 0 || v[0] != binaryTag {
					packed++
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return packed, marked
}

// A file migrated from MessagePack records has them all rewritten
// compactly by the time Open returns, in transactions after the
// migration's; one left half done (a crash) is finished at the next Open.
func TestRecordsRewrittenCompactly(t *testing.T) {
	path := copyV0(t)
	if n, _ := packedRecords(t, path); n == 0 {
		t.Fatal("the fixture holds no MessagePack records")
	}
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	want := mustDump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, marked := packedRecords(t, path); n != 0 || !marked {
		t.Fatalf("after Open: %d records in MessagePack, marked done: %v", n, marked)
	}

	// A crash midway: some records back in MessagePack, not marked done.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, rec := range []binaryRecord{new(Message), new(Delivery)} {
			b := tx.Bucket(bMessages)
			if _, ok := rec.(*Delivery); ok {
				b = tx.Bucket(bDeliveries)
			}
			k, v := b.Cursor().First()
			if err := decodeBinary(v, rec); err != nil {
				return err
			}
			var packed []byte // as schema 2 wrote it
			if err := codec.NewEncoderBytes(&packed, mh).Encode(rec); err != nil {
				return err
			}
			if err := b.Put(bytes.Clone(k), packed); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Delete(kCompact)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, marked := packedRecords(t, path); n != 2 || marked {
		t.Fatalf("set-up: %d records in MessagePack (want 2), marked done: %v", n, marked)
	}
	s = openPath(t, path)
	if d := diffDumps(want, mustDump(t, s)); d != "" {
		t.Fatalf("after finishing the rewrite: %s", d)
	}
	s.Close()
	if n, marked := packedRecords(t, path); n != 0 || !marked {
		t.Fatalf("after the second Open: %d records in MessagePack, marked done: %v", n, marked)
	}
}
