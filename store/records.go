package store

import (
	"fmt"
	"strings"
	"time"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Endpoint states.
const (
	StateEnabled  = "enabled"
	StateDisabled = "disabled"
	// StateDisabledFailing is set when a receiver answers 410 Gone, or
	// when every attempt to the endpoint has failed for too long.
	StateDisabledFailing = "disabled_due_to_failed_deliveries"
)

// Why an endpoint was disabled (Endpoint.DisabledReason), besides
// failingReason's.
const (
	ReasonGone     = "the endpoint answered 410 Gone"
	ReasonOperator = "disabled by an operator"
)

// FailedByDisable is the error of a delivery failed because its endpoint
// was disabled for failing, followed by the endpoint's DisabledReason.
const FailedByDisable = "endpoint disabled: "

// MaxAttemptHistory bounds the attempt log kept per delivery; older entries
// are dropped first. The default schedule makes at most 12 attempts per round.
const MaxAttemptHistory = 50

// Times in records are Unix nanoseconds (0 means unset): cheap to compare,
// to encode, and identical on every replica.

// Message is an accepted message. Its envelope bytes live apart from this
// record (see [Store.Envelope]) so counter updates never rewrite the body.
type Message struct {
	ID             string   `json:"id"`
	Tenant         string   `json:"tenant"`
	Type           string   `json:"type"`
	CreatedAt      int64    `json:"created_at"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	Deliveries     []string `json:"deliveries"`
	Pending        int      `json:"pending"`
	Succeeded      int      `json:"succeeded"`
	Failed         int      `json:"failed"`
	Cancelled      int      `json:"cancelled"`
}

// Status is the message's aggregate status: pending while any delivery is,
// else succeeded when all succeeded (or there were none), else failed.
func (m *Message) Status() string {
	switch {
	case m.Pending > 0:
		return StatusPending
	case m.Succeeded == len(m.Deliveries):
		return StatusSucceeded
	default:
		return StatusFailed
	}
}

// count adjusts the per-status counter for status by n.
func (m *Message) count(status string, n int) {
	switch status {
	case StatusPending:
		m.Pending += n
	case StatusSucceeded:
		m.Succeeded += n
	case StatusFailed:
		m.Failed += n
	case StatusCancelled:
		m.Cancelled += n
	}
}

// Delivery is one message's journey to one destination.
type Delivery struct {
	ID         string `json:"id"`
	MessageID  string `json:"message_id"`
	EndpointID string `json:"endpoint_id,omitempty"` // empty for override URIs
	URL        string `json:"url"`
	Status     string `json:"status"`
	// AttemptCount counts every attempt ever made; outcomes name the attempt
	// they report, which makes applying one twice harmless.
	AttemptCount int `json:"attempt_count"`
	// RoundAttempts counts attempts since the delivery was (re)queued; it
	// indexes the retry schedule.
	RoundAttempts  int       `json:"round_attempts"`
	FirstAttemptAt int64     `json:"first_attempt_at,omitempty"` // of this round
	NextAttemptAt  int64     `json:"next_attempt_at,omitempty"`
	LastStatusCode int       `json:"last_status_code,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	Attempts       []Attempt `json:"attempts,omitempty"`
}

// Override reports whether the delivery goes to a per-message override URI
// (signed with the cluster key) rather than a registered endpoint.
func (d *Delivery) Override() bool { return d.EndpointID == "" }

// Attempt is one HTTP exchange with a receiver.
type Attempt struct {
	At         int64  `json:"at"`
	StatusCode int    `json:"status_code,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// Endpoint is a webhook destination of one tenant.
type Endpoint struct {
	ID            string   `json:"id"`
	Tenant        string   `json:"tenant"`
	URL           string   `json:"url"`
	Name          string   `json:"name,omitempty"`
	EventTypes    []string `json:"event_types"`
	State         string   `json:"state"`
	RateLimitPerS int      `json:"rate_limit_per_s,omitempty"`
	Secrets       []Secret `json:"secrets"` // newest first
	CreatedAt     int64    `json:"created_at"`
	UpdatedAt     int64    `json:"updated_at"`
	// DisabledReason and DisabledAt say why and when the endpoint was
	// last disabled (by an operator, a 410 or failing too long).
	DisabledReason string `json:"disabled_reason,omitempty"`
	DisabledAt     int64  `json:"disabled_at,omitempty"`
	// Health is kept by applying the outcomes of attempts to the endpoint.
	Health EndpointHealth `json:"health,omitzero"`
}

// EndpointHealth is an endpoint's recent record of attempts, replicated so
// that a new leader knows which endpoints are failing and whose breaker is
// open.
type EndpointHealth struct {
	// FailingSince is when the current streak of failed attempts began;
	// 0 when the latest attempt succeeded (or there was none).
	FailingSince int64 `json:"failing_since,omitempty"`
	// Failures counts the failed attempts in a row.
	Failures int `json:"failures,omitempty"`
	// BreakerOpenedAt is when the circuit breaker opened; 0 while it is
	// closed. The first 2xx closes it.
	BreakerOpenedAt int64 `json:"breaker_opened_at,omitempty"`
}

// BreakerOpen reports whether the endpoint's circuit breaker is open.
func (h EndpointHealth) BreakerOpen() bool { return h.BreakerOpenedAt != 0 }

// failed records a failed attempt at at.
func (h *EndpointHealth) failed(at int64) {
	h.Failures++
	if h.FailingSince == 0 {
		h.FailingSince = at
	}
}

// failingReason says why an endpoint failing until at is disabled. It is
// derived from the record alone, so every replica writes the same text.
func (h EndpointHealth) failingReason(at int64) string {
	return fmt.Sprintf("every attempt failed for %s: %d in a row since %s",
		spanText(time.Duration(at-h.FailingSince)), h.Failures, utcText(h.FailingSince))
}

// breakerReason says why an endpoint's breaker opened at at.
func (h EndpointHealth) breakerReason() string {
	attempts := "attempts"
	if h.Failures == 1 {
		attempts = "attempt"
	}
	return fmt.Sprintf("%d %s in a row failed since %s", h.Failures, attempts, utcText(h.FailingSince))
}

// spanText writes a duration in days, hours and minutes: "5d0h0m".
func spanText(d time.Duration) string {
	d = max(d, 0).Truncate(time.Minute)
	day := 24 * time.Hour
	return fmt.Sprintf("%dd%dh%dm", d/day, d%day/time.Hour, d%time.Hour/time.Minute)
}

// utcText writes a record's time as RFC 3339 UTC.
func utcText(nanos int64) string { return time.Unix(0, nanos).UTC().Format(time.RFC3339) }

// Secret is one of an endpoint's HMAC secrets.
type Secret struct {
	Key       string `json:"key"`                  // whsec_…, or sealed (see Sealer)
	ExpiresAt int64  `json:"expires_at,omitempty"` // 0: live until rotated
}

// LiveSecrets returns the secrets still valid at now, newest first.
func (e *Endpoint) LiveSecrets(now int64) []string {
	var keys []string
	for _, s := range e.Secrets {
		if s.ExpiresAt == 0 || s.ExpiresAt > now {
			keys = append(keys, s.Key)
		}
	}
	return keys
}

// Subscribed reports whether the endpoint wants messages of type t. An empty
// filter subscribes to every type.
func (e *Endpoint) Subscribed(t string) bool {
	if len(e.EventTypes) == 0 {
		return true
	}
	for _, et := range e.EventTypes {
		if et == t {
			return true
		}
	}
	return false
}

// SigningKey is a cluster key that signs override deliveries.
type SigningKey struct {
	ID  string `json:"id"`  // the JWKS kid
	Alg string `json:"alg"` // AlgEd25519 or AlgRS256
	// Private is the Ed25519 seed or the PKCS #1 RSA key, or either
	// sealed (see Sealer).
	Private   []byte `json:"private"`
	CreatedAt int64  `json:"created_at"`
	RetiredAt int64  `json:"retired_at,omitempty"`
}

// Node is a cluster member's addresses, replicated so that any node can
// forward a request to the leader's API.
type Node struct {
	ID       string `json:"id"`
	APIAddr  string `json:"api_addr"`
	RaftAddr string `json:"raft_addr"`
}

// Tenant is a tenant's counters, kept by Apply. A tenant is listed while it
// has any endpoint, message, pending delivery or token; one with nothing
// left is not.
type Tenant struct {
	ID string `json:"id"`
	// Endpoints counts its endpoints, enabled or not.
	Endpoints int `json:"endpoints"`
	// Pending counts the pending deliveries of its messages.
	Pending int `json:"pending"`
	// Messages counts its messages still retained.
	Messages int `json:"messages"`
	// Tokens counts its stored tokens: the live ones, and expired ones
	// until a sweep (or the tenant's next token) deletes them.
	Tokens int `json:"tokens"`
}

// empty reports whether the tenant has nothing left.
func (t *Tenant) empty() bool {
	return t.Endpoints == 0 && t.Pending == 0 && t.Messages == 0 && t.Tokens == 0
}

// tokenRecord is a tenant token, stored under its SHA-256.
type tokenRecord struct {
	Tenant    string `json:"tenant"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt int64  `json:"expires_at"`
}

// idempotencyRecord maps an Idempotency-Key to the message it created.
type idempotencyRecord struct {
	MessageID string `json:"message_id"`
	ExpiresAt int64  `json:"expires_at"`
	// RequestHash is the Enqueue's RequestHash, if it had one: a later
	// enqueue with the key and another hash is refused (ErrKeyReused).
	RequestHash []byte `json:"request_hash,omitempty"`
}

// DeliveryID derives the id of a message's n-th delivery, so every replica
// names fan-out deliveries identically and they sort with their message.
func DeliveryID(messageID string, n int) string {
	const digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" // Crockford base32
	var suffix [4]byte
	for i := 3; i >= 0; i-- {
		suffix[i] = digits[n%32]
		n /= 32
	}
	return "dlv_" + strings.TrimPrefix(messageID, "msg_") + string(suffix[:])
}
