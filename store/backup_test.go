package store

import (
	"bytes"
	"crypto/rand"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A backup restored with RestoreFile holds every record of the original,
// without the old cluster's applied index and node addresses, and opens as
// a clean file that a new cluster applies from index 1.
func TestRestoreFile(t *testing.T) {
	dir := t.TempDir()
	src, err := Open(filepath.Join(dir, "src", "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Now()
	epID, _ := NewID("ep", now, rand.Reader)
	msgID, _ := NewID("msg", now, rand.Reader)
	secret := "whsec_" + strings.Repeat("QUJD", 8)
	cmds := []Command{
		{CreateEndpoint: &CreateEndpoint{Endpoint: Endpoint{ID: epID, URL: "https://example.com/hook", State: StateEnabled,
			Secrets: []Secret{{Key: secret}}, CreatedAt: now.UnixNano(), UpdatedAt: now.UnixNano()}}},
		{Enqueue: &Enqueue{ID: msgID, Type: "job.done", CreatedAt: now.UnixNano(), Envelope: []byte(`{}`),
			IdempotencyKey: "k1", IdempotencyExpiresAt: now.Add(time.Hour).UnixNano()}},
		{PutNode: &Node{ID: "n1", APIAddr: "127.0.0.1:8080", RaftAddr: "127.0.0.1:8090"}},
	}
	data, err := EncodeBatch(cmds)
	if err != nil {
		t.Fatal(err)
	}
	res, err := src.Apply([]Entry{{Index: 41, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res[0] {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	var backup bytes.Buffer
	sn, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	sn.Release()
	want, err := src.Dump()
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "restored", "state.db")
	if err := RestoreFile(path, bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Rebuilt() {
		t.Fatal("the restored file was not trusted as clean")
	}
	if idx, err := st.AppliedIndex(); err != nil || idx != 0 {
		t.Fatalf("restored applied index %d (%v), want 0: the new cluster's log starts at 1", idx, err)
	}
	got, err := st.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if len(got["nodes"]) != 0 {
		t.Errorf("the old cluster's nodes were kept: %v", got["nodes"])
	}
	delete(want["meta"], string(kApplied))
	delete(want, "nodes")
	delete(got, "nodes")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored records differ from the backup's")
	}
	if id, _, ok, err := st.IdempotentMessage(DefaultTenant, "k1", now.UnixNano()); err != nil || !ok || id != msgID {
		t.Errorf("idempotency key after restore: %q %v %v", id, ok, err)
	}

	if err := RestoreFile(path, bytes.NewReader(backup.Bytes())); err == nil {
		t.Error("RestoreFile over an existing file succeeded")
	}
	for name, junk := range map[string][]byte{"empty": nil, "garbage": bytes.Repeat([]byte("x"), 8192)} {
		err := RestoreFile(filepath.Join(dir, name, "state.db"), bytes.NewReader(junk))
		if !errors.Is(err, ErrNotStateFile) {
			t.Errorf("RestoreFile(%s) = %v, want ErrNotStateFile", name, err)
		}
	}
}
