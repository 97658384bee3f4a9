package store

import (
	"errors"
	"fmt"
)

// entryVersion is the first byte of every encoded batch. Bump it, and keep
// decoding the old form, when a command's meaning changes.
const entryVersion byte = 1

// Command is one state change. Exactly one field is set, and every field
// keeps to the limits Validate checks; Apply rejects any other command.
type Command struct {
	Enqueue        *Enqueue        `json:"enqueue,omitempty"`
	Outcome        *Outcome        `json:"outcome,omitempty"`
	CreateEndpoint *CreateEndpoint `json:"create_endpoint,omitempty"`
	UpdateEndpoint *UpdateEndpoint `json:"update_endpoint,omitempty"`
	DeleteEndpoint *DeleteEndpoint `json:"delete_endpoint,omitempty"`
	RotateSecret   *RotateSecret   `json:"rotate_secret,omitempty"`
	Requeue        *Requeue        `json:"requeue,omitempty"`
	AddSigningKey  *AddSigningKey  `json:"add_signing_key,omitempty"`
	Sweep          *Sweep          `json:"sweep,omitempty"`
	PutNode        *Node           `json:"put_node,omitempty"`
}

// Enqueue accepts a message. Its deliveries are chosen at apply time, so
// every replica fans out against the same endpoint set: to the URIs when
// given, else to EndpointIDs when given (a ping), else to every enabled
// endpoint subscribed to the type.
type Enqueue struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	CreatedAt int64  `json:"created_at"`
	// Envelope is the exact body every attempt will send.
	Envelope       []byte `json:"envelope"` // base64 in JSON: cheaper than re-validating JSON, and byte-exact
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// IdempotencyExpiresAt is when the key may be reused.
	IdempotencyExpiresAt int64    `json:"idempotency_expires_at,omitempty"`
	URIs                 []string `json:"uris,omitempty"`
	EndpointIDs          []string `json:"endpoint_ids,omitempty"`
}

// Outcome results of an attempt.
const (
	ResultSucceeded = "succeeded" // 2xx: the delivery is done
	ResultRetry     = "retry"     // try again at NextAttemptAt
	ResultFailed    = "failed"    // the schedule is exhausted
	ResultGone      = "gone"      // 410: disable the endpoint, fail its deliveries
	ResultCancelled = "cancelled" // the endpoint no longer takes deliveries
)

// Outcome records one attempt. Attempt is the 1-based number of the attempt
// among all of the delivery's attempts; an outcome whose number is not the
// next one is a duplicate and is ignored.
type Outcome struct {
	DeliveryID    string `json:"delivery_id"`
	Attempt       int    `json:"attempt"`
	At            int64  `json:"at"`
	DurationMS    int64  `json:"duration_ms"`
	StatusCode    int    `json:"status_code,omitempty"`
	Error         string `json:"error,omitempty"`
	Result        string `json:"result"`
	NextAttemptAt int64  `json:"next_attempt_at,omitempty"`
}

// CreateEndpoint registers an endpoint.
type CreateEndpoint struct {
	Endpoint Endpoint `json:"endpoint"`
}

// UpdateEndpoint changes the fields that are set. Disabling an endpoint
// cancels its pending deliveries.
type UpdateEndpoint struct {
	ID            string    `json:"id"`
	At            int64     `json:"at"`
	URL           *string   `json:"url,omitempty"`
	Name          *string   `json:"name,omitempty"`
	EventTypes    *[]string `json:"event_types,omitempty"`
	State         *string   `json:"state,omitempty"`
	RateLimitPerS *int      `json:"rate_limit_per_s,omitempty"`
}

// DeleteEndpoint removes an endpoint and cancels its pending deliveries.
type DeleteEndpoint struct {
	ID string `json:"id"`
	At int64  `json:"at"`
}

// RotateSecret makes Secret the endpoint's newest secret; the live older
// ones expire at RevokeAt.
type RotateSecret struct {
	EndpointID string `json:"endpoint_id"`
	Secret     string `json:"secret"`
	At         int64  `json:"at"`
	RevokeAt   int64  `json:"revoke_at"`
}

// Requeue re-queues failed deliveries for a fresh round of attempts due at
// At: those of MessageID when set, else those of every message created in
// [Since, Until).
type Requeue struct {
	MessageID string `json:"message_id,omitempty"`
	Since     int64  `json:"since,omitempty"`
	Until     int64  `json:"until,omitempty"`
	At        int64  `json:"at"`
}

// AddSigningKey makes Key the cluster's signer for its algorithm and retires
// the previous one at Key.CreatedAt.
type AddSigningKey struct {
	Key SigningKey `json:"key"`
}

// Sweep removes what has outlived its retention at At: idempotency keys past
// their expiry, finished messages created before RetainSince, keys retired
// before KeysRetiredBefore. It deletes at most Limit records of each kind so
// the write transaction stays short; the leader sweeps again until done.
type Sweep struct {
	At                int64 `json:"at"`
	RetainSince       int64 `json:"retain_since"`
	KeysRetiredBefore int64 `json:"keys_retired_before"`
	Limit             int   `json:"limit"`
}

// Result is what applying a command returns.
type Result struct {
	// MessageID is the message an Enqueue created or, for a repeated
	// idempotency key or id, the one it found.
	MessageID string
	// Duplicate reports that an Enqueue created nothing.
	Duplicate bool
	// Count is how many deliveries a Requeue re-queued or records a Sweep
	// removed.
	Count int
	// Err is a deterministic rejection: an *InvalidError for a command
	// that breaks a rule of its fields, ErrNotFound, ErrExists (or, for a
	// fan-out past what delivery ids can name, another error) for one that
	// does not fit the state, or the error of an entry that does not
	// decode. A rejected command changed nothing.
	Err error
	// Index is the Raft index of the entry that carried the command.
	Index uint64
}

// Errors a command can be rejected with.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
)

// EncodeBatch encodes commands as one log entry. The returned slice is fresh
// and never reused, as Raft requires of the bytes it is given. It refuses
// more than MaxCommandsPerEntry commands, which Apply would reject.
func EncodeBatch(cmds []Command) ([]byte, error) {
	if len(cmds) > MaxCommandsPerEntry {
		return nil, fmt.Errorf("store: batch of %d commands, at most %d", len(cmds), MaxCommandsPerEntry)
	}
	body, err := encode(cmds)
	if err != nil {
		return nil, err
	}
	return append([]byte{entryVersion}, body...), nil
}

// DecodeBatch decodes an entry made by EncodeBatch.
func DecodeBatch(entry []byte) ([]Command, error) {
	if len(entry) == 0 {
		return nil, errors.New("store: empty entry")
	}
	if entry[0] != entryVersion {
		return nil, fmt.Errorf("store: unknown entry version %d", entry[0])
	}
	var cmds []Command
	if err := decode(entry[1:], &cmds); err != nil {
		return nil, err
	}
	return cmds, nil
}
