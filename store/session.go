package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// With NoSync, commits reach the page cache but are not flushed. That loses
// nothing when the process dies (the kernel still writes the pages out), but
// a machine crash can leave the file stale or torn. So the store records, in
// a session file beside it, whether it was closed cleanly and under which
// kernel boot it was last opened. A file that was open when the machine went
// down is not trusted: Open moves it aside and starts empty, and Rebuilt
// tells the caller to rebuild it, from a Raft snapshot and the log.

const (
	sessionClean = "clean"
	sessionOpen  = "open "
)

// readBootID returns the kernel's boot id, which changes at every boot.
func readBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// trustFile decides whether an existing store file written with NoSync can
// be trusted, and records that it is open now.
func (s *Store) trustFile(bootID func() (string, error)) (trusted bool, err error) {
	session := s.path + ".session"
	prev, err := os.ReadFile(session)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("store: %w", err)
	}
	boot, bootErr := bootID()
	switch {
	case bytes.Equal(prev, []byte(sessionClean)):
		trusted = true
	case bytes.HasPrefix(prev, []byte(sessionOpen)):
		// Open when the last process ended: trusted only if the machine
		// has not restarted since, so the page cache held every commit.
		trusted = bootErr == nil && string(prev[len(sessionOpen):]) == boot
	}
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		trusted = true // nothing to lose
	}
	return trusted, writeSync(session, []byte(sessionOpen+boot))
}

// markClean records a clean close, after the file has been synced.
func (s *Store) markClean() error {
	return writeSync(s.path+".session", []byte(sessionClean))
}

// writeSync replaces a small file durably: write a temporary, fsync it,
// rename it over the old one, fsync the directory.
func writeSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	return nil
}

// setAside moves an untrusted file out of the way, keeping the last one
// for inspection.
func (s *Store) setAside() error {
	if err := os.Rename(s.path, s.path+".untrusted"); err != nil {
		return fmt.Errorf("store: set aside %s: %w", s.path, err)
	}
	return syncDir(filepath.Dir(s.path))
}
