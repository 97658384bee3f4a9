package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/engine/internal/delivery"
	"github.com/heraldhq/herald/store"
)

// Override signature modes.
const (
	SignatureEd25519 = "v1a" // Standard Webhooks v1a, Ed25519
	SignatureJWT     = "jwt" // a compact RS256 JWT
)

// Defaults of Config's fields.
const (
	DefaultDataDir             = "herald-data"
	DefaultNodeID              = "node1"
	DefaultRaftAddr            = "127.0.0.1:8090"
	DefaultAttemptTimeout      = 15 * time.Second
	DefaultRetention           = 7 * 24 * time.Hour
	DefaultEndpointConcurrency = 32
	DefaultMaxInflight         = 1024
	DefaultBreakerFailures     = 10
	DefaultBreakerPeriod       = time.Minute
	DefaultDisableAfter        = 5 * 24 * time.Hour
)

// TLSFiles names the PEM files of a node's peer TLS: its certificate, its
// key, and the CA that signs every node's certificate (see herald tls).
type TLSFiles struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// Peer is one of the initial voters of a cluster.
type Peer struct {
	ID       string
	RaftAddr string
}

// ParsePeers parses "id=host:port,id=host:port", as --peers takes them.
func ParsePeers(s string) ([]Peer, error) {
	ps, err := cluster.ParsePeers(s)
	if err != nil {
		return nil, fmt.Errorf("engine: %s", strings.TrimPrefix(err.Error(), "cluster: "))
	}
	out := make([]Peer, len(ps))
	for i, p := range ps {
		out[i] = Peer(p)
	}
	return out, nil
}

// Config configures an Engine. The zero value is a complete single-node
// deployment in ./herald-data.
type Config struct {
	// DataDir holds the state machine (state.db), the Raft log (raft.db)
	// and snapshots. Defaults to DefaultDataDir.
	DataDir string
	// NodeID is this node's Raft server ID: a letter or digit, then up to
	// 63 letters, digits, '.', '_' or '-'. Defaults to DefaultNodeID.
	NodeID string
	// RaftAddr is the peer port's listen and advertise address: it carries
	// Raft and the node-to-node API. Defaults to DefaultRaftAddr.
	RaftAddr string
	// NoNetwork runs a single node that opens no port at all: Raft runs on
	// an in-memory transport. For a program that embeds Herald on one
	// machine; RaftAddr, Peers and PeerTLS must be unset.
	NoNetwork bool
	// APIAddr is this node's HTTP API address, published to the other
	// nodes for the cluster status. Optional.
	APIAddr string
	// PeerTLS, when set, puts the peer port (RaftAddr, which carries Raft
	// and the node-to-node API) under mutual TLS: every node presents a
	// certificate signed by the CA, and a process without one cannot
	// connect, join, read or append. Defaults to plain TCP, safe only on
	// loopback. See ReloadTLS.
	PeerTLS *TLSFiles
	// Peers are the initial voters, used only to bootstrap a data dir that
	// has no Raft state. Defaults to this node alone.
	Peers []Peer
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
	// response headers. Defaults to DefaultAttemptTimeout.
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
	// kept. Defaults to DefaultRetention.
	Retention time.Duration
	// EndpointConcurrency bounds the attempts in flight to one destination.
	// Defaults to DefaultEndpointConcurrency.
	EndpointConcurrency int
	// MaxInflight bounds the attempts in flight on the node, shared
	// round-robin between destinations. Defaults to DefaultMaxInflight.
	MaxInflight int
	// An endpoint whose attempts have all failed, at least BreakerFailures
	// of them over at least BreakerPeriod, has its circuit breaker opened:
	// its deliveries wait while probes test it. Default
	// DefaultBreakerFailures and DefaultBreakerPeriod.
	BreakerFailures int
	BreakerPeriod   time.Duration
	// DisableAfter disables an endpoint whose attempts have all failed for
	// this long. Defaults to DefaultDisableAfter.
	DisableAfter time.Duration
	// Logger receives operational logs. Defaults to discarding them.
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Transport carries attempts. Defaults to an SSRF-guarded transport
	// with keep-alive pools; tests substitute a fake.
	Transport http.RoundTripper
	// OnAttempt, if set, is called on the leader, for each attempt's
	// outcome, once it is committed and applied there (an outcome the
	// previous leader committed is reported by the one applying it). It
	// runs on the apply path and must not block. Subscribe gives every
	// node's callers the same events.
	OnAttempt func(AttemptEvent)
	// Raft tunes the cluster; its zero value uses cluster's defaults.
	Raft RaftConfig

	// inmem, set by in-process tests only, replaces the peer port with
	// raft's in-memory transport and a dialler for the internal API.
	inmem *inmemNet
}

// inmemNet is a node's place on an in-memory network.
type inmemNet struct {
	transport raft.Transport
	dial      func(ctx context.Context, addr string) (net.Conn, error)
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

// noNetworkAddr is the Raft address of a NoNetwork node: host:port in
// form, but never dialled.
const noNetworkAddr = "in-memory:0"

func (c Config) withDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.NodeID == "" {
		c.NodeID = DefaultNodeID
	}
	if c.NoNetwork && c.inmem == nil {
		_, tr := raft.NewInmemTransport(noNetworkAddr)
		c.inmem = &inmemNet{transport: tr}
	}
	if c.RaftAddr == "" && c.inmem == nil {
		c.RaftAddr = DefaultRaftAddr
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.OverrideSignature == "" {
		c.OverrideSignature = SignatureEd25519
	}
	if c.PublicURL == "" && c.APIAddr != "" {
		c.PublicURL = "http://" + c.APIAddr
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.EndpointConcurrency == 0 {
		c.EndpointConcurrency = DefaultEndpointConcurrency
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = DefaultBreakerFailures
	}
	if c.BreakerPeriod == 0 {
		c.BreakerPeriod = DefaultBreakerPeriod
	}
	if c.DisableAfter == 0 {
		c.DisableAfter = DefaultDisableAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first problem of the configuration, after defaults,
// as a *ConfigError; Open runs it too.
func (c Config) Validate() error { return c.withDefaults().validate() }

// ConfigError names a Config field and what is wrong with it.
type ConfigError struct {
	Field string // the Config field, e.g. "AttemptTimeout"
	Msg   string
}

func (e *ConfigError) Error() string { return "engine: " + e.Field + " " + e.Msg }

func (c Config) validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	for _, d := range c.RetrySchedule {
		if d <= 0 {
			return bad("RetrySchedule", "delays must be positive, got %v", d)
		}
	}
	if err := store.CheckNodeID(c.NodeID); err != nil {
		return bad("NodeID", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	switch {
	case c.NoNetwork && (c.RaftAddr != "" || len(c.Peers) > 0 || c.PeerTLS != nil):
		return bad("NoNetwork", "runs a single node without network: RaftAddr, Peers and PeerTLS must be unset")
	case c.AttemptTimeout < 0:
		return bad("AttemptTimeout", "must be positive")
	case c.OverrideSignature != SignatureEd25519 && c.OverrideSignature != SignatureJWT:
		return bad("OverrideSignature", "must be %q or %q, got %q", SignatureEd25519, SignatureJWT, c.OverrideSignature)
	case c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://"):
		return bad("PublicURL", "must be an http:// or https:// URL, got %q", c.PublicURL)
	case c.OverrideSignature == SignatureJWT && c.PublicURL == "":
		return bad("PublicURL", "(the JWT issuer) is required with SignatureJWT")
	case c.Retention < 0:
		return bad("Retention", "must be positive")
	case c.EndpointConcurrency < 0:
		return bad("EndpointConcurrency", "must be positive")
	case c.MaxInflight < 0:
		return bad("MaxInflight", "must be positive")
	case c.BreakerFailures < 0:
		return bad("BreakerFailures", "must be positive")
	case c.BreakerPeriod < 0:
		return bad("BreakerPeriod", "must be positive")
	case c.DisableAfter < 0:
		return bad("DisableAfter", "must be positive")
	}
	return nil
}

func (c Config) statePath() string { return filepath.Join(c.DataDir, "state.db") }

// AttemptEvent is one attempt's outcome, as committed: for Config.OnAttempt
// and Subscribe.
type AttemptEvent struct {
	Tenant     string
	MessageID  string
	DeliveryID string
	EndpointID string // empty for override URIs
	URL        string
	Attempt    int // 1-based, over the delivery's life
	At         time.Time
	StatusCode int
	Error      string
	Duration   time.Duration
	// Status is the delivery's status after the attempt: pending (a retry
	// is scheduled at NextAttemptAt), succeeded, failed or cancelled.
	Status        Status
	NextAttemptAt time.Time
}
