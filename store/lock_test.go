package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenLockedFile checks that a file another process (here: another
// Open) holds is refused promptly, naming the file and the holder's pid,
// and that the refused Open touches nothing: even where the boot id is
// unknown (so an open session record would not be trusted), the holder's
// file is not set aside under it.
func TestOpenLockedFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noSync  bool
		bootErr bool
		dropPID bool
	}{
		{name: "NoSync", noSync: true},
		{name: "NoSync, unknown boot id", noSync: true, bootErr: true},
		{name: "synced"},
		{name: "no pid file", noSync: true, dropPID: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			opts := Options{NoSync: tc.noSync, BootID: func() (string, error) {
				if tc.bootErr {
					return "", errors.New("no boot id here")
				}
				return "boot-1", nil
			}}
			s, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			runOK(t, s, createEndpoint(epID("1"), "https://a.example", ms(1)))
			if tc.dropPID {
				os.Remove(path + ".pid")
			}

			start := time.Now()
			s2, err := Open(path, opts)
			if err == nil {
				s2.Close()
				t.Fatal("a second Open of a file in use succeeded")
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the second Open took %v", took)
			}
			if !errors.Is(err, ErrLocked) {
				t.Errorf("error %v is not ErrLocked", err)
			}
			want := fmt.Sprintf("store: %s is locked by another herald (pid %d)? ", path, os.Getpid())
			if tc.dropPID {
				want = fmt.Sprintf("store: %s is locked by another process (another herald?) ", path)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, want) || strings.Contains(msg, "\n") || strings.Contains(msg, "timeout") {
				t.Errorf("error = %q, want one line beginning %q", msg, want)
			}
			if _, err := os.Stat(path + ".untrusted"); err == nil {
				t.Fatal("the refused Open set the file in use aside")
			}
			if _, err := s.Endpoint(DefaultTenant, epID("1")); err != nil {
				t.Fatalf("the first store lost its data: %v", err)
			}
			// Once the holder closes, the file opens, with its data.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s3, err := Open(path, opts)
			if err != nil {
				t.Fatalf("Open after the holder closed: %v", err)
			}
			defer s3.Close()
			if _, err := s3.Endpoint(DefaultTenant, epID("1")); err != nil && !tc.bootErr {
				t.Fatalf("reopened store lost its data: %v", err)
			}
		})
	}
}
