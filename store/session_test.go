package store

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNoSyncSessionTrust checks when a NoSync file is trusted at the next
// Open: after a clean close, or after a crash of the process alone; not
// after a crash of the machine (another boot id), nor without a session
// record. An untrusted file is set aside and the store starts empty.
func TestNoSyncSessionTrust(t *testing.T) {
	const boot1, boot2 = "boot-1", "boot-2"
	for _, tc := range []struct {
		name        string
		close       bool   // Close before reopening (else: crash)
		reopenBoot  string // boot id at the reopen
		dropSession bool
		wantRebuilt bool
	}{
		{name: "clean close, same boot", close: true, reopenBoot: boot1},
		{name: "clean close, after reboot", close: true, reopenBoot: boot2},
		{name: "process crash", reopenBoot: boot1},
		{name: "machine crash", reopenBoot: boot2, wantRebuilt: true},
		{name: "no session record", reopenBoot: boot1, dropSession: true, wantRebuilt: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			opts := func(boot string) Options {
				return Options{NoSync: true, BootID: func() (string, error) { return boot, nil }}
			}
			s, err := Open(path, opts(boot1))
			if err != nil {
				t.Fatal(err)
			}
			if s.Rebuilt() {
				t.Fatal("a new file reported rebuilt")
			}
			runOK(t, s, createEndpoint(epID("1"), "https://a.example", ms(1)))
			if tc.close {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				// A crash: the bbolt file stays as the page cache has it.
				// Release bbolt's lock without the clean-close record.
				s.mu.Lock()
				s.db.Close()
				s.db = nil
				s.mu.Unlock()
			}
			if tc.dropSession {
				os.Remove(path + ".session")
			}
			s2, err := Open(path, opts(tc.reopenBoot))
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if s2.Rebuilt() != tc.wantRebuilt {
				t.Fatalf("Rebuilt = %v, want %v", s2.Rebuilt(), tc.wantRebuilt)
			}
			_, err = s2.Endpoint(DefaultTenant, epID("1"))
			if tc.wantRebuilt {
				if err != ErrNotFound {
					t.Fatalf("rebuilt store still holds data (err %v)", err)
				}
				if _, err := os.Stat(path + ".untrusted"); err != nil {
					t.Fatalf("untrusted file not kept aside: %v", err)
				}
			} else if err != nil {
				t.Fatalf("trusted store lost data: %v", err)
			}
		})
	}
}
