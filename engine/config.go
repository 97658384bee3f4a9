package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/engine/internal/delivery"
)

// Override signature modes.
const (
	SignatureEd25519 = "v1a" // Standard Webhooks v1a, Ed25519
	SignatureJWT     = "jwt" // a compact RS256 JWT
)

// Config configures an Engine. The zero value is a complete single-node
// deployment in ./herald-data.
type Config struct {
	// DataDir holds the state machine (state.db), the Raft log (raft.db)
	// and snapshots. Defaults to "./herald-data".
	DataDir string
	// NodeID is this node's Raft server ID. Defaults to "node1".
	NodeID string
	// RaftAddr is the Raft transport's listen and advertise address.
	// Defaults to "127.0.0.1:8090".
	RaftAddr string
	// APIAddr is this node's HTTP API address, published to the other
	// nodes for the cluster status. Optional.
	APIAddr string
	// PeerTLS, when set, puts the peer port (RaftAddr, which carries Raft
	// and the node-to-node API) under mutual TLS: every node presents a
	// certificate signed by the CA, and a process without one cannot
	// connect, join, read or append. Defaults to plain TCP, safe only on
	// loopback. See ReloadTLS.
	PeerTLS *cluster.TLSFiles
	// Peers are the initial voters, used only to bootstrap a data dir that
	// has no Raft state. Defaults to this node alone.
	Peers []cluster.Peer
	// AllowPrivateNetworks lets destinations resolve to loopback, private,
	// link-local and other non-public addresses. Defaults to false: such
	// URLs are refused when registered and when dialled.
	AllowPrivateNetworks bool
	// RetrySchedule is the delays between attempts: after the first
	// attempt, one retry per entry, then the delivery fails. Defaults to
	// DefaultRetrySchedule with ±20 % jitter; a schedule given here is
	// followed exactly.
	RetrySchedule []time.Duration
	// AttemptTimeout bounds one HTTP attempt, from dialling to reading the
	// response headers. Defaults to 15s.
	AttemptTimeout time.Duration
	// OverrideSignature is how deliveries to per-message URIs are signed:
	// SignatureEd25519 or SignatureJWT. Defaults to SignatureEd25519.
	OverrideSignature string
	// PublicURL is this deployment's public base URL, the JWT issuer.
	// Defaults to "http://" + APIAddr.
	PublicURL string
	// SealKey, if set, is a 32-byte AES-256 key that seals endpoint secrets
	// and private signing keys (AES-256-GCM) before they enter the Raft log,
	// so that the log, snapshots and state file hold them encrypted. Every
	// node of a cluster needs the same key. Defaults to none: secrets are
	// stored in the clear.
	SealKey []byte
	// Retention is how long finished messages and their attempt logs are
	// kept. Defaults to 7 days.
	Retention time.Duration
	// EndpointConcurrency bounds the attempts in flight to one destination.
	// Defaults to 32.
	EndpointConcurrency int
	// Logger receives operational logs. Defaults to discarding them.
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Transport carries attempts. Defaults to an SSRF-guarded transport
	// with keep-alive pools; tests substitute a fake.
	Transport http.RoundTripper
	// OnAttempt, if set, is called on the leader after each attempt's
	// outcome is committed. It must not block.
	OnAttempt func(AttemptEvent)
	// Raft tunes the cluster; its zero value uses cluster's defaults.
	Raft RaftConfig
}

// RaftConfig holds the Raft settings an operator may tune.
type RaftConfig struct {
	// HeartbeatTimeout and ElectionTimeout default to 300ms.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// SnapshotThreshold defaults to 8192 log entries, TrailingLogs (kept
	// after a snapshot for slow followers) to 10240, and SnapshotInterval
	// (how often the threshold is checked) to 30s.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration
	// Transport replaces the peer port, for in-process cluster tests;
	// PeerDial then dials the internal API of the node at a Raft address
	// (see cluster.Config.PeerDial).
	Transport raft.Transport
	PeerDial  func(ctx context.Context, addr string) (net.Conn, error)
}

// DefaultRetrySchedule spaces retries from seconds to hours; its delays add
// up to 24 hours, so the last attempt comes a day after the first. It is
// used, with ±20 % jitter, when Config.RetrySchedule is nil.
var DefaultRetrySchedule = slices.Clone(delivery.DefaultSchedule)

const (
	idempotencyTTL    = 24 * time.Hour
	keyRetirementTTL  = 24 * time.Hour
	secretRotationTTL = 24 * time.Hour
	sweepInterval     = time.Minute
	sweepLimit        = 1000
)

func (c Config) withDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = "herald-data"
	}
	if c.NodeID == "" {
		c.NodeID = "node1"
	}
	if c.RaftAddr == "" && c.Raft.Transport == nil {
		c.RaftAddr = "127.0.0.1:8090"
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 15 * time.Second
	}
	if c.OverrideSignature == "" {
		c.OverrideSignature = SignatureEd25519
	}
	if c.PublicURL == "" && c.APIAddr != "" {
		c.PublicURL = "http://" + c.APIAddr
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.EndpointConcurrency == 0 {
		c.EndpointConcurrency = 32
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	for _, d := range c.RetrySchedule {
		if d <= 0 {
			return fmt.Errorf("engine: retry schedule delays must be positive, got %v", d)
		}
	}
	switch {
	case c.AttemptTimeout < 0:
		return errors.New("engine: AttemptTimeout must be positive")
	case c.OverrideSignature != SignatureEd25519 && c.OverrideSignature != SignatureJWT:
		return fmt.Errorf("engine: OverrideSignature must be %q or %q, got %q", SignatureEd25519, SignatureJWT, c.OverrideSignature)
	case c.OverrideSignature == SignatureJWT && c.PublicURL == "":
		return errors.New("engine: PublicURL (the JWT issuer) is required with SignatureJWT")
	case c.Retention < 0:
		return errors.New("engine: Retention must be positive")
	case c.EndpointConcurrency < 0:
		return errors.New("engine: EndpointConcurrency must be positive")
	}
	return nil
}

func (c Config) statePath() string { return filepath.Join(c.DataDir, "state.db") }

// AttemptEvent describes one committed attempt, for Config.OnAttempt.
type AttemptEvent struct {
	MessageID  string
	DeliveryID string
	EndpointID string // empty for override URIs
	URL        string
	Attempt    int // 1-based, over the delivery's life
	StatusCode int
	Error      string
	Duration   time.Duration
	// Status is the delivery's status after the attempt: pending (a retry
	// is scheduled at NextAttemptAt), succeeded, failed or cancelled.
	Status        string
	NextAttemptAt time.Time
}

// onAttempt adapts OnAttempt to the deliverer's events.
func (c Config) onAttempt() func(delivery.Event) {
	if c.OnAttempt == nil {
		return nil
	}
	return func(ev delivery.Event) { c.OnAttempt(AttemptEvent(ev)) }
}
