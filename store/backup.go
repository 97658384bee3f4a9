package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNotStateFile is returned by RestoreFile for a file that is not a
// Herald state file.
var ErrNotStateFile = errors.New("store: not a Herald state file (made by a backup)")

// RestoreFile creates the state file at path from a backup (a file written
// by Snapshot.WriteTo) for a new cluster, which Raft then bootstraps
// afresh. Every record is kept as it is: endpoints with their secrets
// (sealed ones stay sealed), signing keys, messages with their pending
// deliveries and due times, idempotency keys. What belonged to the old
// cluster is dropped: the Raft index it had applied (the new cluster's log
// starts at 1) and its nodes' addresses. A backup of an earlier schema is
// migrated; one of a newer schema is refused (ErrNewerSchema), and so is
// one an earlier build wrote to after its migration (ErrOlderWriter). path
// must not exist yet.
func RestoreFile(path string, r io.Reader) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			return fmt.Errorf("store: restore: %s exists already", path)
		}
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	tmp := path + ".restore"
	if err := copyToFile(tmp, r); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := resetCluster(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	// Closed cleanly, as far as the next Open is concerned.
	return writeSync(path+".session", []byte(sessionClean))
}

// copyToFile writes r to a new file at path, synced.
func copyToFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// resetCluster checks that the file at path is a state file, brings it to
// this build's schema and drops what belonged to the cluster it came from.
func resetCluster(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotStateFile, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range coreBuckets {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: no %s bucket", ErrNotStateFile, b)
			}
		}
		if err := initSchema(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bMeta).Delete(kApplied); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bNodes); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bNodes)
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, ErrNotStateFile) && !errors.Is(err, ErrNewerSchema) && !errors.Is(err, ErrOlderWriter) {
		err = fmt.Errorf("store: restore: %w", err)
	}
	return err
}
