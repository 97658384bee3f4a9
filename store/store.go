package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names. Per-tenant keys begin with tenant ‖ 0 (see tenantKey).
var (
	bMeta        = []byte("meta")
	bMessages    = []byte("messages")   // msg id → Message
	bEnvelopes   = []byte("envelopes")  // msg id → envelope bytes
	bDeliveries  = []byte("deliveries") // dlv id → Delivery
	bQueued      = []byte("queued")     // queue ‖ 0 ‖ be64(next attempt) ‖ dlv id → ∅, pending only (see dueKey)
	bEndpoints   = []byte("endpoints")  // ep id → Endpoint
	bKeys        = []byte("signing_keys")
	bIdempotency = []byte("tenant_idempotency") // tenant ‖ 0 ‖ key → idempotencyRecord
	bIdemExpiry  = []byte("tenant_idem_expiry") // be64(expiry) ‖ tenant ‖ 0 ‖ key → ∅
	bNodes       = []byte("nodes")              // node id → Node
	// tenant ‖ 0 ‖ event type or allTypes ‖ 0 ‖ ep id → URL, enabled endpoints only
	bSubscriptions   = []byte("subscriptions")
	bTenantEndpoints = []byte("tenant_endpoints") // tenant ‖ 0 ‖ ep id → ∅
	bTenantMessages  = []byte("tenant_messages")  // tenant ‖ 0 ‖ msg id → ∅
	bTenants         = []byte("tenants")          // tenant → Tenant, while it has anything
	bTokens          = []byte("tokens")           // sha256(token) → tokenRecord
	bTenantTokens    = []byte("tenant_tokens")    // tenant ‖ 0 ‖ sha256 → ∅
	bTokenExpiry     = []byte("token_expiry")     // be64(expiry) ‖ sha256 → ∅

	allBuckets = [][]byte{bMeta, bMessages, bEnvelopes, bDeliveries, bQueued,
		bEndpoints, bKeys, bIdempotency, bIdemExpiry, bNodes, bSubscriptions, bTenantEndpoints,
		bTenantMessages, bTenants, bTokens, bTenantTokens, bTokenExpiry}

	// kApplied is where the last applied Raft index is: a key of its own
	// since schema version 1, so that a write by an earlier build (which
	// puts it at kAppliedV0) shows.
	kApplied = []byte("last_applied")
)

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("store: closed")

// ErrLocked means another process has the file open. Open's error wraps
// it, naming the file and, when known, the process.
var ErrLocked = errors.New("store: the file is locked by another process")

// lockTimeout is how long Open waits for another process to let go of the
// file, as one that is just stopping does.
const lockTimeout = time.Second

// lockedError is Open's error for a file another process holds.
type lockedError struct {
	path string
	pid  int // from the pid file; 0 if unknown
}

func (e *lockedError) Error() string {
	who := "another process (another herald?)"
	if e.pid > 0 {
		who = fmt.Sprintf("another herald (pid %d)?", e.pid)
	}
	return fmt.Sprintf("store: %s is locked by %s A data dir serves one process at a time: stop that one, or use another data dir",
		e.path, who)
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// pidPath is the file beside the store file that holds the id of the
// process that last opened it, for the error another process gets while
// it runs.
func (s *Store) pidPath() string { return s.path + ".pid" }

// locked returns the error for a file another process holds, naming that
// process if the pid file says which.
func (s *Store) locked() error {
	err := &lockedError{path: s.path}
	if b, rerr := os.ReadFile(s.pidPath()); rerr == nil {
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
			err.pid = pid
		}
	}
	return err
}

// checkUnlocked returns ErrLocked (wrapped) if another process has the
// existing file open. It runs before Open touches anything beside the
// file: the session record of a file in use must not be rewritten, nor
// the file set aside under the process using it. It waits lockTimeout at
// most; any other problem is left for the real open to report.
func (s *Store) checkUnlocked() error {
	if _, err := os.Stat(s.path); err != nil {
		return nil
	}
	// A read-only open takes bbolt's shared lock, which a writer's
	// exclusive lock excludes, and writes nothing.
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return s.locked()
	}
	if err == nil {
		db.Close()
	}
	return nil
}

// Store is the bbolt-backed state machine. Apply must be called from one
// goroutine at a time (the Raft FSM); reads may run concurrently.
type Store struct {
	path string
	// mu guards db: Restore swaps the file under a write lock while reads
	// and Apply hold it for reading.
	mu        sync.RWMutex
	db        *bolt.DB
	noSync    bool
	rebuilt   bool
	onApplied func(Applied)
}

// Options tune how the file is opened.
type Options struct {
	// NoSync skips fsync on commit, for a store whose changes are also in
	// a durable log (Herald's Raft log). A process crash loses nothing; a
	// file that was open when the machine itself went down is set aside
	// at the next Open, which starts empty and reports Rebuilt, so that
	// the caller replays it from its log. Close syncs the file.
	NoSync bool
	// BootID identifies the running kernel boot, to tell a process crash
	// from a machine crash. Defaults to Linux's
	// /proc/sys/kernel/random/boot_id; tests inject one.
	BootID func() (string, error)
	// OnApplied, if set, is called after each Apply with what it changed
	// (the leader's scheduler learns of new work this way, every node's
	// caches of keys learn of rotations, and followers of their writes'
	// arrival). It runs on the apply path and must not block.
	OnApplied func(Applied)
}

// Applied describes one Apply call's effect, for Options.OnApplied.
type Applied struct {
	// Index is the last Raft index applied.
	Index uint64
	// Scheduled is the deliveries left pending with a new next-attempt time.
	Scheduled []Due
	// KeysChanged reports that a signing key was added, retired or removed.
	KeysChanged bool
	// Attempts is the attempts whose outcomes were applied, in order.
	Attempts []AppliedAttempt
	// Endpoints is the changes of endpoints' breakers and states, in
	// order.
	Endpoints []EndpointChange
}

// Kinds of EndpointChange.
const (
	ChangeBreakerOpened = "breaker_opened"
	// ChangeBreakerClosed: an attempt succeeded, or an operator enabled
	// the endpoint, while its breaker was open.
	ChangeBreakerClosed = "breaker_closed"
	ChangeDisabled      = "disabled" // by a 410, by failing too long or by an operator
)

// EndpointChange is a change of an endpoint's breaker or state as the
// store applied it.
type EndpointChange struct {
	Kind       string
	Tenant     string
	EndpointID string
	At         int64
	// State is the endpoint's state after the change.
	State string
	// Reason says why, in words: the endpoint's DisabledReason for
	// ChangeDisabled.
	Reason string
}

// AppliedAttempt is one attempt's outcome as the store applied it.
type AppliedAttempt struct {
	Tenant     string
	MessageID  string
	DeliveryID string
	EndpointID string // empty for override URIs
	URL        string
	Attempt    int
	At         int64
	DurationMS int64
	StatusCode int
	Error      string
	// Status is the delivery's status after the attempt; NextAttemptAt is
	// set while it is pending.
	Status        string
	NextAttemptAt int64
}

// Open opens or creates the store file at path. A file written by an
// earlier build is migrated to this build's schema as it opens (see
// initSchema); one written by a newer build is refused with ErrNewerSchema,
// and one an earlier build wrote to after its migration with
// ErrOlderWriter.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{path: path, noSync: opts.NoSync, onApplied: opts.OnApplied}
	if opts.NoSync {
		if err := s.checkUnlocked(); err != nil {
			return nil, err
		}
		if opts.BootID == nil {
			opts.BootID = readBootID
		}
		trusted, err := s.trustFile(opts.BootID)
		if err != nil {
			return nil, err
		}
		if !trusted {
			if err := s.setAside(); err != nil {
				return nil, err
			}
			s.rebuilt = true
		}
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	// Best effort: only the error of a second process reads it.
	os.WriteFile(s.pidPath(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return s, nil
}

// Rebuilt reports that Open found a file it could not trust and started
// empty: the caller must restore the state (a snapshot, then the log after
// it) instead of resuming from the file's applied index.
func (s *Store) Rebuilt() bool { return s.rebuilt }

func (s *Store) open() error {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: lockTimeout, NoSync: s.noSync})
	if errors.Is(err, bolt.ErrTimeout) {
		return s.locked()
	}
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.path, err)
	}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return fmt.Errorf("store: init %s: %w", s.path, err)
	}
	if err := compactRecords(db); err != nil {
		db.Close()
		return fmt.Errorf("store: init %s: %w", s.path, err)
	}
	s.db = db
	return nil
}

// Close closes the file. Further calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Sync()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	s.db = nil
	if err == nil && s.noSync {
		err = s.markClean()
	}
	return err
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// AppliedIndex is the index of the last Raft entry applied to the file.
func (s *Store) AppliedIndex() (uint64, error) {
	var idx uint64
	err := s.view(func(tx *bolt.Tx) error {
		idx = appliedIndex(tx)
		return nil
	})
	return idx, err
}

func appliedIndex(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bMeta).Get(kApplied); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Snapshot is a consistent, point-in-time view of the whole file. Release it
// promptly: an open snapshot keeps bbolt from reusing pages.
type Snapshot struct {
	tx     *bolt.Tx
	unlock func()
}

// Snapshot opens a snapshot of the current state.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	return &Snapshot{tx: tx, unlock: s.mu.RUnlock}, nil
}

// WriteTo writes the snapshot as a complete bbolt file.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Size is how many bytes WriteTo writes.
func (sn *Snapshot) Size() int64 { return sn.tx.Size() }

// Release ends the snapshot. It is safe to call more than once.
func (sn *Snapshot) Release() {
	if sn.tx != nil {
		sn.tx.Rollback()
		sn.tx = nil
		sn.unlock()
	}
}

// Restore replaces the whole state with a file written by Snapshot.WriteTo.
// The new file is written beside the old one and renamed over it, so a crash
// leaves one or the other, never a mix. A file of an earlier schema is
// migrated first; one Open would refuse is refused, and the store goes on
// with its current file.
func (s *Store) Restore(r io.Reader) error {
	tmp := s.path + ".restore"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Migrated (or refused, when newer) before it replaces the
		// current file, which stays in use if this fails.
		err = prepareFile(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: restore: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		os.Remove(tmp)
		return ErrClosed
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	return s.open()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Stats reports the file's size and bbolt's counters.
type Stats struct {
	FileBytes int64
	DB        bolt.Stats
}

// Stats returns current statistics.
func (s *Store) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var st Stats
	if s.db == nil {
		return st
	}
	st.DB = s.db.Stats()
	if fi, err := os.Stat(s.path); err == nil {
		st.FileBytes = fi.Size()
	}
	return st
}

func be64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

func getRecord(b *bolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	return true, decode(raw, v)
}

func putRecord(b *bolt.Bucket, key string, v any) error {
	raw, err := encode(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}
