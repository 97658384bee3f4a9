package store

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
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

	DeleteTenant       *DeleteTenant       `json:"delete_tenant,omitempty"`
	CreateTenantToken  *CreateTenantToken  `json:"create_tenant_token,omitempty"`
	RevokeTenantTokens *RevokeTenantTokens `json:"revoke_tenant_tokens,omitempty"`
	EndPending         *EndPending         `json:"end_pending,omitempty"`
	EnqueueBatch       *EnqueueBatch       `json:"enqueue_batch,omitempty"`
}

// Tenants in commands. Every command that names an endpoint or a message
// names its tenant too, and Apply treats a record of another tenant as
// unknown (ErrNotFound), whatever the id. Entries written before tenants
// carry none: Apply reads an empty tenant in Enqueue, CreateEndpoint's
// Endpoint, UpdateEndpoint, DeleteEndpoint, RotateSecret and Requeue as
// DefaultTenant (see Command.normalize, the one place that does). The
// tenant commands (DeleteTenant, CreateTenantToken, RevokeTenantTokens)
// are newer than that and must name one.

// Enqueue accepts a message into a tenant. Its deliveries are chosen at
// apply time, so every replica fans out against the same endpoint set: to
// the URIs when given, else to EndpointIDs when given (a ping; ids of
// unknown endpoints, or of another tenant's, are skipped), else to every
// enabled endpoint of the tenant subscribed to the type. Its idempotency
// key is the tenant's: the same key in two tenants is two keys.
type Enqueue struct {
	Tenant    string `json:"tenant,omitempty"`
	ID        string `json:"id"`
	Type      string `json:"type"`
	CreatedAt int64  `json:"created_at"`
	// Envelope is the exact body every attempt will send.
	Envelope       []byte `json:"envelope"` // base64 in JSON: cheaper than re-validating JSON, and byte-exact
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// IdempotencyExpiresAt is when the key may be reused.
	IdempotencyExpiresAt int64 `json:"idempotency_expires_at,omitempty"`
	// RequestHash, if set, is a SHA-256 of what the client asked for
	// (type, data, webhook_config): the same key with another request
	// within its life is refused with ErrKeyReused.
	RequestHash []byte   `json:"request_hash,omitempty"`
	URIs        []string `json:"uris,omitempty"`
	EndpointIDs []string `json:"endpoint_ids,omitempty"`
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
	// OpenBreaker opens the endpoint's circuit breaker (with a failed
	// attempt) and Disable disables it as failing for too long; the leader
	// decides both from the endpoint's Health and its thresholds.
	OpenBreaker bool `json:"open_breaker,omitempty"`
	Disable     bool `json:"disable,omitempty"`
}

// CreateEndpoint registers an endpoint in Endpoint.Tenant. Endpoint ids are
// unique across tenants: an id in use in any tenant is ErrExists.
type CreateEndpoint struct {
	Endpoint Endpoint `json:"endpoint"`
}

// UpdateEndpoint changes the fields that are set. Disabling an endpoint
// cancels its pending deliveries, at most MaxEndOnDisable of them (see
// EndPending for the rest). Its pending deliveries follow a new URL without
// being rewritten: an attempt goes to the endpoint's URL of the moment (see
// Store.ForAttempt).
type UpdateEndpoint struct {
	Tenant        string    `json:"tenant,omitempty"`
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
	Tenant string `json:"tenant,omitempty"`
	ID     string `json:"id"`
	At     int64  `json:"at"`
}

// RotateSecret makes Secret the endpoint's newest secret; the live older
// ones expire at RevokeAt.
type RotateSecret struct {
	Tenant     string `json:"tenant,omitempty"`
	EndpointID string `json:"endpoint_id"`
	Secret     string `json:"secret"`
	At         int64  `json:"at"`
	RevokeAt   int64  `json:"revoke_at"`
}

// Requeue re-queues failed deliveries of the tenant's messages for a fresh
// round of attempts due at At: those of MessageID when set, else those of
// every message of the tenant created in [Since, Until). With EndpointID,
// only the deliveries to that endpoint, cancelled ones too (as when an
// endpoint is enabled again after it was disabled).
//
// A window is walked in the tenant's message index, in id order, from its
// start or from just after the message id After. With Limit set, one
// command examines at most Limit messages: when it stops there, before the
// window's end, Result.Next names the last one examined, and the same
// command with After set to it goes on. Limit 0 (entries written before it)
// walks the whole window at once.
type Requeue struct {
	Tenant     string `json:"tenant,omitempty"`
	MessageID  string `json:"message_id,omitempty"`
	Since      int64  `json:"since,omitempty"`
	Until      int64  `json:"until,omitempty"`
	At         int64  `json:"at"`
	EndpointID string `json:"endpoint_id,omitempty"`
	After      string `json:"after,omitempty"`
	Limit      int    `json:"limit,omitempty"`
}

// takes reports whether the Requeue re-queues d.
func (r *Requeue) takes(d *Delivery) bool {
	if r.EndpointID == "" {
		return d.Status == StatusFailed
	}
	return d.EndpointID == r.EndpointID && (d.Status == StatusFailed || d.Status == StatusCancelled)
}

// AddSigningKey makes Key the cluster's signer for its algorithm and retires
// the previous one at Key.CreatedAt.
type AddSigningKey struct {
	Key SigningKey `json:"key"`
}

// Sweep removes what has outlived its retention at At: idempotency keys and
// tenant tokens past their expiry, finished messages created before
// RetainSince, keys retired before KeysRetiredBefore. It deletes at most
// Limit records of each kind so the write transaction stays short; the
// leader sweeps again until done.
type Sweep struct {
	At                int64 `json:"at"`
	RetainSince       int64 `json:"retain_since"`
	KeysRetiredBefore int64 `json:"keys_retired_before"`
	Limit             int   `json:"limit"`
}

// DeleteTenant deletes a tenant's data, at most Limit records per command
// so that the write transaction stays short; Result.Count says how many it
// handled, and the leader repeats the command until Count < Limit, which
// means the tenant is gone. In order, it cancels the pending deliveries
// to the tenant's endpoints (status cancelled, "tenant deleted") and
// deletes the endpoints with their subscriptions, deletes the tenant's
// tokens, then deletes its messages with their deliveries (pending ones,
// to override URIs, are dropped from the due index) and envelopes, and
// last its idempotency keys. Each cancelled delivery and each deleted
// endpoint, token, message or key counts one.
//
// Messages go too, unlike an endpoint's deletion, which leaves them to
// retention: tenant ids are chosen by callers and may be used again, and a
// new tenant of the same id must not see, retry or be answered with the
// old one's messages and idempotency keys. Anything created in the tenant
// after the deletion is a new tenant's.
type DeleteTenant struct {
	Tenant string `json:"tenant"`
	At     int64  `json:"at"`
	Limit  int    `json:"limit"`
}

// CreateTenantToken stores a tenant token, known only by its SHA-256 Hash
// (the engine makes the token and hands out the only copy), live from
// CreatedAt until ExpiresAt. A tenant holds at most MaxTenantTokens live
// tokens: one more is refused with an *InvalidError (field
// "create_tenant_token.tenant") and changes nothing; revoke the tenant's
// tokens or let some expire. Tokens of the tenant that have expired are
// deleted when a new one is stored. Storing a hash again for its tenant is
// a retried command and changes nothing; for another tenant, ErrExists.
type CreateTenantToken struct {
	Tenant    string `json:"tenant"`
	Hash      []byte `json:"hash"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt int64  `json:"expires_at"`
}

// RevokeTenantTokens deletes every token of the tenant (at most
// MaxTenantTokens live ones, so the work is bounded). Result.Count says how
// many.
type RevokeTenantTokens struct {
	Tenant string `json:"tenant"`
}

// EndPending ends up to Limit pending deliveries of a disabled endpoint of
// the tenant, with Status (cancelled or failed) and Reason as their last
// error; Result.Count says how many. Disabling an endpoint ends at most
// MaxEndOnDisable of them in its own command, and the leader ends the rest
// with EndPending commands until Count < Limit. An endpoint enabled again
// meanwhile keeps its pending deliveries (Count 0), unless Deleting: the
// leader ends an endpoint's deliveries this way before it deletes it. An
// unknown endpoint is ErrNotFound.
type EndPending struct {
	Tenant     string `json:"tenant"`
	EndpointID string `json:"endpoint_id"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Limit      int    `json:"limit"`
	Deleting   bool   `json:"deleting,omitempty"`
}

// EnqueueBatch accepts up to MaxBatchMessages messages in one command, so
// in one log entry. Each is applied as its own Enqueue would be, in order,
// and accepted or rejected on its own: its Result is in Result.Batch.
type EnqueueBatch struct {
	Messages []Enqueue `json:"messages"`
}

// Result is what applying a command returns.
type Result struct {
	// MessageID is the message an Enqueue created or, for a repeated
	// idempotency key or id, the one it found.
	MessageID string
	// Duplicate reports that an Enqueue created nothing.
	Duplicate bool
	// Count is how many deliveries an Enqueue created, a Requeue
	// re-queued or an EndPending ended, records a Sweep or a DeleteTenant
	// handled, or tokens RevokeTenantTokens deleted.
	Count int
	// Next is where a Requeue of a window stopped at its Limit: the last
	// message id it examined. Empty when the window is done.
	Next string
	// Err is a deterministic rejection: an *InvalidError for a command
	// that breaks a rule of its fields (or creates a token past a
	// tenant's MaxTenantTokens), ErrNotFound (also for a record of
	// another tenant), ErrExists (or, for a fan-out past what delivery
	// ids can name, another error) for one that does not fit the state,
	// or the error of an entry that does not decode. A rejected command
	// changed nothing.
	Err error
	// Index is the Raft index of the entry that carried the command.
	Index uint64
	// Batch holds an EnqueueBatch's results, one per message in order.
	Batch []Result
}

// Errors a command can be rejected with.
var (
	// ErrKeyReused rejects an Enqueue whose idempotency key was used, and
	// is still live, for another request. Result.MessageID names the
	// first message.
	ErrKeyReused = errors.New("store: idempotency key used for another request")
	ErrNotFound  = errors.New("store: not found")
	ErrExists    = errors.New("store: already exists")
)

// EncodeBatch encodes commands as one log entry. The returned slice is fresh
// and never reused, as Raft requires of the bytes it is given. It refuses
// more than MaxCommandsPerEntry commands, which Apply would reject.
func EncodeBatch(cmds []Command) ([]byte, error) {
	if len(cmds) > MaxCommandsPerEntry {
		return nil, fmt.Errorf("store: batch of %d commands, at most %d", len(cmds), MaxCommandsPerEntry)
	}
	// Sized up front: an entry of enqueues is mostly their envelopes, and
	// growing the buffer by doubling copied them several times over. The
	// encoder writes from the start of the buffer, so the version byte goes
	// in front afterwards, in the byte reserved for it: no second copy.
	entry := make([]byte, 0, 1+entrySize(cmds))
	if err := codec.NewEncoderBytes(&entry, mh).Encode(cmds); err != nil {
		return nil, fmt.Errorf("store: encode %T: %w", cmds, err)
	}
	entry = append(entry, 0)
	copy(entry[1:], entry)
	entry[0] = entryVersion
	return entry, nil
}

// entrySize estimates the encoded size of cmds: their envelopes, and a
// few hundred bytes for each command's other fields.
func entrySize(cmds []Command) int {
	n := 0
	for i := range cmds {
		n += 256
		if e := cmds[i].Enqueue; e != nil {
			n += len(e.Envelope)
		}
		if b := cmds[i].EnqueueBatch; b != nil {
			for j := range b.Messages {
				n += 256 + len(b.Messages[j].Envelope)
			}
		}
	}
	return n
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

// normalize gives an empty tenant its meaning, DefaultTenant, in the
// commands that predate tenants (their entries carry none, and Raft
// replays them after an upgrade). Apply calls it once per command, after
// Validate and before anything else reads the command, so no other code
// meets an empty tenant.
func (c *Command) normalize() {
	var tenant *string
	switch {
	case c.Enqueue != nil:
		tenant = &c.Enqueue.Tenant
	case c.CreateEndpoint != nil:
		tenant = &c.CreateEndpoint.Endpoint.Tenant
	case c.UpdateEndpoint != nil:
		tenant = &c.UpdateEndpoint.Tenant
	case c.DeleteEndpoint != nil:
		tenant = &c.DeleteEndpoint.Tenant
	case c.RotateSecret != nil:
		tenant = &c.RotateSecret.Tenant
	case c.Requeue != nil:
		tenant = &c.Requeue.Tenant
	}
	if tenant != nil && *tenant == "" {
		*tenant = DefaultTenant
	}
}
