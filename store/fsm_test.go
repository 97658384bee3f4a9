package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogCoversEveryCommand guards the determinism tests below: the log
// they replay must hold every kind of command and outcome.
func TestLogCoversEveryCommand(t *testing.T) {
	g := newLogGen(t, 1)
	g.generate(300)
	for _, kind := range []string{
		"enqueue", "create_endpoint", "update_endpoint", "delete_endpoint", "rotate_secret",
		"requeue:message", "requeue:window", "add_signing_key", "sweep", "put_node",
		"outcome:" + ResultSucceeded, "outcome:" + ResultRetry, "outcome:" + ResultFailed,
		"outcome:" + ResultGone, "outcome:" + ResultCancelled,
		"delete_tenant", "create_tenant_token", "revoke_tenant_tokens",
	} {
		if g.kinds[kind] == 0 {
			t.Errorf("the generated log has no %s command", kind)
		}
	}
	t.Logf("%d entries; commands by kind: %v", len(g.entries), g.kinds)

	// And the state it leads to has deliveries in every status and an
	// endpoint disabled by a 410.
	statuses := map[string]int{}
	tenantOf := func(id string) string { return cmp.Or(g.tenantOf[id], DefaultTenant) }
	for _, id := range g.messages {
		m, ds, err := g.store.Message(tenantOf(id), id)
		if errors.Is(err, ErrNotFound) {
			continue // swept, or a duplicate idempotency key
		}
		if err != nil {
			t.Fatal(err)
		}
		statuses["message:"+m.Status()]++
		for _, d := range ds {
			statuses[d.Status]++
		}
	}
	tenants, err := g.store.Tenants("", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tenants {
		statuses["tenant:"+tc.ID]++
		eps, err := g.store.Endpoints(tc.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range eps {
			statuses["endpoint:"+ep.State]++
		}
	}
	for _, want := range []string{StatusPending, StatusSucceeded, StatusFailed, StatusCancelled,
		"message:" + StatusPending, "message:" + StatusSucceeded, "message:" + StatusFailed,
		"endpoint:" + StateEnabled, "tenant:" + DefaultTenant, "tenant:acme"} {
		if statuses[want] == 0 {
			t.Errorf("final state has no %s: %v", want, statuses)
		}
	}
	if g.kinds["outcome:"+ResultGone] == 0 {
		t.Errorf("no 410 outcome in the log")
	}
}

// TestApplyDeterministic replays one realistic log into fresh stores,
// split into Apply calls of different sizes (as raft.BatchingFSM may do on
// different replicas), and requires identical files.
func TestApplyDeterministic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			applyDeterministic(t, seed)
		})
	}
}

func applyDeterministic(t *testing.T, seed uint64) {
	// The reference applied one entry per Apply call.
	g := newLogGen(t, seed)
	entries := g.generate(160)
	want := mustDump(t, g.store)
	for _, size := range []int{2, 7, 64, 0} {
		s := openTest(t)
		applyInChunks(t, s, entries, size)
		mustCheck(t, s)
		checkOwnership(t, s)
		if d := diffDumps(want, mustDump(t, s)); d != "" {
			t.Fatalf("seed %d, %d entries per Apply: state differs from one entry per Apply:\n%s", seed, size, d)
		}
		if idx, _ := s.AppliedIndex(); idx != uint64(len(entries)) {
			t.Fatalf("AppliedIndex = %d, want %d", idx, len(entries))
		}
	}
	// Random split points.
	rng := rand.New(rand.NewPCG(seed, 7))
	s := openTest(t)
	for start := 0; start < len(entries); {
		end := min(len(entries), start+1+rng.IntN(20))
		if _, err := s.Apply(entries[start:end]); err != nil {
			t.Fatal(err)
		}
		start = end
	}
	mustCheck(t, s)
	if d := diffDumps(want, mustDump(t, s)); d != "" {
		t.Fatalf("seed %d, random split: state differs:\n%s", seed, d)
	}
}

// TestApplyResultsIndependentOfSplit: what Apply answers for each command
// (which the leader hands back to the API caller) must not depend on the
// batching either.
func TestApplyResultsIndependentOfSplit(t *testing.T) {
	g := newLogGen(t, 4)
	entries := g.generate(200)
	a, b := openTest(t), openTest(t)
	ra := applyInChunks(t, a, entries, 1)
	rb := applyInChunks(t, b, entries, 0)
	for i := range entries {
		if len(ra[i]) != len(rb[i]) {
			t.Fatalf("entry %d: %d vs %d results", entries[i].Index, len(ra[i]), len(rb[i]))
		}
		for j := range ra[i] {
			x, y := ra[i][j], rb[i][j]
			if x.MessageID != y.MessageID || x.Duplicate != y.Duplicate || x.Count != y.Count || (x.Err == nil) != (y.Err == nil) {
				t.Fatalf("entry %d command %d: result %+v applied alone, %+v applied in one batch", entries[i].Index, j, x, y)
			}
		}
	}
}

// TestReplayAfterRestart: Raft replays the log from its last snapshot when
// a node restarts, so entries the file already holds arrive again; they
// must be skipped and the end state must be as if each was applied once.
func TestReplayAfterRestart(t *testing.T) {
	g := newLogGen(t, 5)
	entries := g.generate(200)
	total := len(entries)
	for _, n := range []int{1, total / 3, total / 2, total - 1, total} {
		path := filepath.Join(t.TempDir(), "state.db")
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		applyInChunks(t, s, entries[:n], 5)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = openPath(t, path)
		if idx, err := s.AppliedIndex(); err != nil || idx != uint64(n) {
			t.Fatalf("after reopen AppliedIndex = %d, %v; want %d", idx, err, n)
		}
		before := mustDump(t, s)
		// Replay from the start in chunks that straddle n.
		res := applyInChunks(t, s, entries, 9)
		for i, r := range res[:n] {
			if r != nil {
				t.Fatalf("replayed entry %d (applied before restart) returned results %+v", entries[i].Index, r)
			}
		}
		for i, e := range entries[n:] {
			if e.Data != nil && res[n+i] == nil {
				t.Fatalf("new entry %d returned no results", e.Index)
			}
		}
		if idx, _ := s.AppliedIndex(); idx != uint64(total) {
			t.Fatalf("AppliedIndex = %d, want %d", idx, total)
		}
		mustCheck(t, s)
		sameDump(t, g.store, s, "replay after restart")
		if n == total {
			if d := diffDumps(before, mustDump(t, s)); d != "" {
				t.Fatalf("replaying only old entries changed the state:\n%s", d)
			}
		}
		// A second full replay changes nothing.
		applyInChunks(t, s, entries, 0)
		sameDump(t, g.store, s, "second replay")
	}
}

func TestApplyNilAndBadEntries(t *testing.T) {
	s := openTest(t)
	res, err := s.Apply([]Entry{{Index: 1}, {Index: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != nil || res[1] != nil {
		t.Fatalf("entries without data returned results: %+v", res)
	}
	if idx, _ := s.AppliedIndex(); idx != 2 {
		t.Fatalf("AppliedIndex = %d, want 2", idx)
	}

	// Undecodable entries are rejected deterministically and still
	// advance the index, so every replica moves past them alike.
	res, err = s.Apply([]Entry{
		{Index: 3, Data: []byte{99, '[', ']'}},
		{Index: 4, Data: []byte{entryVersion, '{'}},
		entry(t, 5, createEndpoint(epID("a"), "https://a.example", t0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if len(res[i]) != 1 || res[i][0].Err == nil {
			t.Fatalf("bad entry %d: results %+v, want one error", i+3, res[i])
		}
	}
	if len(res[2]) != 1 || res[2][0].Err != nil {
		t.Fatalf("good entry after bad ones: %+v", res[2])
	}
	if idx, _ := s.AppliedIndex(); idx != 5 {
		t.Fatalf("AppliedIndex = %d, want 5", idx)
	}
	getEndpoint(t, s, epID("a"))

	// An empty batch and an empty command.
	if r := run(t, s); len(r) != 0 {
		t.Fatalf("empty batch: %+v", r)
	}
	if r := run(t, s, Command{}); r[0].Err == nil {
		t.Fatal("a command with no field set was accepted")
	}
	mustCheck(t, s)
}

// TestApplyRollsBackOnWriteError: when a command cannot be applied (here
// a record that does not decode) the whole Apply call changes nothing, the
// applied index included, so the caller can stop and a restart replays it.
func TestApplyRollsBackOnWriteError(t *testing.T) {
	s := openTest(t)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	bad := failingEntry(t, s, 3)
	before := mustDump(t, s)
	_, err := s.Apply([]Entry{
		entry(t, 2, createEndpoint(epID("b"), "https://b.example", t0)),
		bad,
	})
	if err == nil {
		t.Fatal("Apply over an undecodable record succeeded")
	}
	if d := diffDumps(before, mustDump(t, s)); d != "" {
		t.Fatalf("a failed Apply changed the state:\n%s", d)
	}
	if idx, _ := s.AppliedIndex(); idx != 1 {
		t.Fatalf("AppliedIndex = %d after a failed Apply, want 1", idx)
	}
}

func TestSnapshotRestore(t *testing.T) {
	g := newLogGen(t, 6)
	entries := g.generate(200)
	n := len(entries) * 2 / 3

	src := openTest(t)
	applyInChunks(t, src, entries[:n], 8)
	sn, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	sn.Release()
	sn.Release() // idempotent

	// Restore over a store that holds unrelated state.
	dstPath := filepath.Join(t.TempDir(), "state.db")
	dst := openPath(t, dstPath)
	runOK(t, dst, createEndpoint(epID("stale"), "https://stale.example", t0),
		fanOut(newIDs(99).next(t, "msg", t0), "batch.failed", t0))
	if err := dst.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, dst)
	sameDump(t, src, dst, "restored snapshot")
	if idx, _ := dst.AppliedIndex(); idx != uint64(n) {
		t.Fatalf("restored AppliedIndex = %d, want %d", idx, n)
	}

	// The restored store goes on applying (with the replayed overlap
	// skipped) and ends where the reference did.
	applyInChunks(t, dst, entries[n-10:], 6)
	mustCheck(t, dst)
	sameDump(t, g.store, dst, "restored store after applying the rest")

	// The restored file is the store's file: it survives a reopen.
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := openPath(t, dstPath)
	sameDump(t, g.store, reopened, "restored store after reopen")
}

// TestSnapshotIsPointInTime: a snapshot does not see writes applied after
// it was taken. As under Raft, Apply runs on another goroutine while the
// snapshot is written out: an open snapshot is a long read transaction,
// and an Apply that must grow bbolt's mmap waits until it is released, so
// the snapshot must never be held by the goroutine that applies.
func TestSnapshotIsPointInTime(t *testing.T) {
	s := openTest(t)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	want := mustDump(t, s)
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	go func() {
		// Enough data to make bbolt grow the file while the snapshot is open.
		cmds := []Command{createEndpoint(epID("b"), "https://b.example", t0)}
		g := newIDs(3)
		for i := range 200 {
			c := fanOut(g.next(t, "msg", t0+ms(int64(i))), "x", t0)
			c.Enqueue.Envelope = json.RawMessage(`"` + strings.Repeat("a", 1000) + `"`)
			cmds = append(cmds, c)
		}
		data, err := EncodeBatch(cmds)
		if err == nil {
			_, err = s.Apply([]Entry{{Index: 2, Data: data}})
		}
		applied <- err
	}()

	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	sn.Release()
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	other := openTest(t)
	if err := other.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if d := diffDumps(want, mustDump(t, other)); d != "" {
		t.Fatalf("snapshot saw a later write:\n%s", d)
	}
	mustCheck(t, s)
	getEndpoint(t, s, epID("b"))
}

func TestRestoreGarbageLeavesStoreUsable(t *testing.T) {
	s := openTest(t)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	if err := s.Restore(failingReader{}); err == nil {
		t.Fatal("Restore from a failing reader succeeded")
	}
	// A failed copy leaves the old file in place and open.
	getEndpoint(t, s, epID("a"))
	runOK(t, s, createEndpoint(epID("b"), "https://b.example", t0))
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestClosedStore(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "nested", "dir", "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Apply"] = s.Apply([]Entry{{Index: 2}})
	_, checks["AppliedIndex"] = s.AppliedIndex()
	_, checks["Snapshot"] = s.Snapshot()
	checks["Restore"] = s.Restore(bytes.NewReader(nil))
	_, _, checks["Message"] = s.Message(DefaultTenant, "msg_x")
	_, _, checks["ListMessages"] = s.ListMessages(DefaultTenant, ListFilter{}, 10, "")
	_, checks["QueueHeads"] = s.QueueHeads("", 10)
	_, checks["QueueDue"] = s.QueueDue("q", 0, 10, func([]byte) bool { return false })
	_, checks["Endpoint"] = s.Endpoint(DefaultTenant, epID("a"))
	_, checks["Envelope"] = s.Envelope("msg_x")
	_, checks["ForAttempt"] = s.ForAttempt("dlv_x")
	checks["Check"] = s.Check()
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed store: %v, want ErrClosed", name, err)
		}
	}
	if st := s.Stats(); st.FileBytes != 0 {
		t.Errorf("Stats on a closed store: %+v", st)
	}
}
