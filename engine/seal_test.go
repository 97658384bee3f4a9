package engine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// With a seal key, endpoint secrets and private signing keys are sealed
// before they enter a command: their bytes appear in no file of any node's
// data dir (state file, Raft log, snapshots), while deliveries are signed
// with them as usual. Every file of the data dirs is private.
func TestSealedSecretsAppearInNoFile(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SealKey = key
		cfg.Raft.SnapshotThreshold = 4 // snapshots early, so they are checked too
		cfg.Raft.SnapshotInterval = 50 * time.Millisecond
		cfg.Raft.TrailingLogs = 2
	})
	lead := c.leader()
	follower := (lead + 1) % 3
	rc := newReceiver(t, nil)
	ep := mustCreateEndpoint(t, c.engines[follower], EndpointInput{URL: rc.URL})
	rotated, err := c.engines[follower].RotateSecret(ctxb, "", ep.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.engines[follower].RotateSigningKey(ctxb); err != nil {
		t.Fatal(err)
	}
	msg := mustEnqueue(t, c.engines[follower], MessageInput{Type: "job.done"})
	waitStatus(t, c.engines[lead], msg.ID, "succeeded")
	r := waitRequests(t, rc, 1)[0]
	for _, secret := range []string{ep.Secret, rotated} {
		v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{secret}})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(r.Header, r.Body); err != nil {
			t.Errorf("the delivery does not verify with secret %.10s…: %v", secret, err)
		}
	}
	got, err := c.engines[follower].Endpoint(ctxb, "", ep.ID)
	if err != nil || got.Secret != rotated[:len(signer.SecretPrefix)+4]+"…" {
		t.Fatalf("endpoint view secret %q (%v), want the rotated one truncated", got.Secret, err)
	}

	// What must not appear: both secrets as text and as key bytes, and the
	// seed of every signing key.
	var needles [][]byte
	for _, s := range []string{ep.Secret, rotated} {
		raw, err := signer.ParseHMACSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, []byte(s), []byte(s[len(signer.SecretPrefix):]), raw)
	}
	keys, err := c.engines[lead].store.SigningKeys()
	if err != nil || len(keys) != 2 {
		t.Fatalf("signing keys: %d, %v", len(keys), err)
	}
	for _, k := range keys {
		if !store.IsSealed(k.Private) {
			t.Fatalf("signing key %s is stored in the clear", k.ID)
		}
		seed, err := c.engines[lead].keys.open(k.Private, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		needles = append(needles, seed)
	}
	c.converge()
	waitFor(t, 10*time.Second, "a snapshot on every node", func() bool {
		for _, cfg := range c.cfgs {
			if m, _ := filepath.Glob(filepath.Join(cfg.DataDir, "snapshots", "*", "state.bin")); len(m) == 0 {
				return false
			}
		}
		return true
	})
	for i := range c.engines {
		c.stop(i) // flush and close every file
	}
	files := 0
	for _, cfg := range c.cfgs {
		err := filepath.Walk(cfg.DataDir, func(path string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			// Private too: the data dir holds secrets even without sealing.
			if want := fs.FileMode(0o600); info.IsDir() && info.Mode().Perm() != 0o700 || !info.IsDir() && info.Mode().Perm() != want {
				t.Errorf("%s has mode %v; want 0700 directories and 0600 files", path, info.Mode().Perm())
			}
			if info.IsDir() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, n := range needles {
				if bytes.Contains(data, n) {
					t.Errorf("%s holds a secret in the clear (%d bytes of it)", path, len(n))
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	t.Logf("searched %d files of 3 data dirs for %d secrets", files, len(needles))
}
