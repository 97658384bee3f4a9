package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/engine/internal/ssrf"
	"github.com/heraldhq/herald/store"
)

// Limits on message input.
const (
	// MaxPayloadBytes bounds a message's data plus metadata.
	MaxPayloadBytes = 1 << 20
	// MaxListLimit bounds a page of ListMessages or Tenants;
	// DefaultListLimit is a page's size when the caller gives none.
	MaxListLimit     = 250
	DefaultListLimit = 50
)

// MessageInput is a message to enqueue.
type MessageInput struct {
	// Tenant is the message's tenant, whose endpoints it fans out to;
	// empty means DefaultTenant.
	Tenant string `json:"tenant,omitempty"`
	// Type is the event type, e.g. "batch.succeeded": letters, digits,
	// '.', '_' and '-'.
	Type string `json:"type"`
	// Data is the event payload, a JSON object.
	Data json.RawMessage `json:"data"`
	// URIs, when set, send the message only to these URLs (signed with the
	// cluster key) instead of to the subscribed endpoints.
	URIs []string `json:"uris,omitempty"`
	// UserMetadata is echoed in the envelope of override deliveries: a
	// JSON object, or nil.
	UserMetadata json.RawMessage `json:"user_metadata,omitempty"`
	// IdempotencyKey makes a repeated enqueue within 24 hours, in the same
	// tenant, return the first message instead of creating another.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Status is a message's or a delivery's status.
type Status string

// Statuses. A delivery is pending until it succeeds, fails (its retry
// window closed, or its endpoint answered 410) or is cancelled (its
// endpoint was disabled or deleted). A message is pending while any of its
// deliveries is, then succeeded if all succeeded, else failed.
const (
	StatusPending   Status = store.StatusPending
	StatusSucceeded Status = store.StatusSucceeded
	StatusFailed    Status = store.StatusFailed
	StatusCancelled Status = store.StatusCancelled
)

// Message is a message's state.
type Message struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Type      string    `json:"type"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// Data and UserMetadata are the message's payload, as its deliveries
	// carry them; set by Message, not by Enqueue or ListMessages.
	Data         json.RawMessage `json:"data,omitempty"`
	UserMetadata json.RawMessage `json:"user_metadata,omitempty"`
	Deliveries   []Delivery      `json:"deliveries,omitzero"` // set, perhaps empty, by Message
}

// Delivery is one destination's delivery of a message.
type Delivery struct {
	ID             string     `json:"id"`
	EndpointID     string     `json:"endpoint_id,omitempty"`
	URL            string     `json:"url"`
	Status         Status     `json:"status"`
	AttemptCount   int        `json:"attempt_count"`
	NextAttemptAt  *time.Time `json:"next_attempt_at,omitempty"`
	LastStatusCode int        `json:"last_status_code,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	Attempts       []Attempt  `json:"attempts"`
}

// Attempt is one HTTP exchange, as reported by the API.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

func messageView(m *store.Message, ds []store.Delivery) *Message {
	out := &Message{ID: m.ID, Tenant: m.Tenant, Type: m.Type, Status: Status(m.Status()), CreatedAt: utc(m.CreatedAt)}
	if ds != nil {
		out.Deliveries = make([]Delivery, 0, len(ds))
	}
	for _, d := range ds {
		v := Delivery{ID: d.ID, EndpointID: d.EndpointID, URL: d.URL, Status: Status(d.Status), AttemptCount: d.AttemptCount,
			LastStatusCode: d.LastStatusCode, LastError: d.LastError, Attempts: make([]Attempt, 0, len(d.Attempts))}
		if d.Status == store.StatusPending {
			t := utc(d.NextAttemptAt)
			v.NextAttemptAt = &t
		}
		for _, a := range d.Attempts {
			v.Attempts = append(v.Attempts, Attempt{At: utc(a.At), StatusCode: a.StatusCode, Error: a.Error, DurationMS: a.DurationMS})
		}
		out.Deliveries = append(out.Deliveries, v)
	}
	return out
}

// envelope returns the body every attempt of a message sends:
//
//	{"type", "version": "v1", "timestamp", "data", "user_metadata"?}
//
// It is assembled by hand: typ passed store.CheckEventType and the timestamp
// is RFC 3339, so neither needs escaping, and data and metadata are JSON
// objects validated already. Marshalling would validate and compact the
// payload yet again, a measurable share of enqueue's CPU.
func envelope(typ string, at time.Time, data, metadata json.RawMessage) []byte {
	b := make([]byte, 0, len(data)+len(metadata)+len(typ)+96)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","version":"v1","timestamp":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, data...)
	if len(metadata) > 0 {
		b = append(b, `,"user_metadata":`...)
		b = append(b, metadata...)
	}
	return append(b, '}')
}

func (w *writer) validateMessage(ctx context.Context, in *MessageInput) error {
	if err := store.CheckEventType(in.Type); err != nil {
		return onField("type", err)
	}
	if len(in.Data)+len(in.UserMetadata) > MaxPayloadBytes {
		return invalid("data", "larger than %d bytes", MaxPayloadBytes)
	}
	var ok bool
	if in.Data, ok = compactObject(in.Data); !ok {
		return invalid("data", "must be a JSON object")
	}
	if len(in.UserMetadata) > 0 {
		if in.UserMetadata, ok = compactObject(in.UserMetadata); !ok {
			return invalid("webhook_config.user_metadata", "must be a JSON object")
		}
	}
	if len(in.URIs) > store.MaxURIs {
		return invalid("webhook_config.uris", "at most %d URIs", store.MaxURIs)
	}
	if in.URIs != nil && len(in.URIs) == 0 {
		return invalid("webhook_config.uris", "must list at least one URI")
	}
	for _, u := range in.URIs {
		if err := ssrf.CheckURL(ctx, u, w.cfg.AllowPrivateNetworks); err != nil {
			return invalid("webhook_config.uris", "%q: %v", u, err)
		}
	}
	if len(in.IdempotencyKey) > store.MaxIdempotencyKey {
		return invalid("idempotency_key", "longer than %d bytes", store.MaxIdempotencyKey)
	}
	return nil
}

// compactObject validates that raw is a JSON object and returns it without
// insignificant whitespace, in one pass.
func compactObject(raw json.RawMessage) (json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	return appendCompactJSON(make([]byte, 0, len(raw)), raw)
}

// Enqueue accepts a message and returns once it is committed to a Raft
// majority. With an IdempotencyKey already used in the last 24 hours it
// creates nothing and returns the first message with created false.
func (e *Engine) Enqueue(ctx context.Context, in MessageInput) (msg *Message, created bool, err error) {
	rep, err := e.prop.propose(ctx, &request{Enqueue: &in})
	return rep.Message, rep.Created, err
}

func (w *writer) enqueue(ctx context.Context, in MessageInput) (reply, error) {
	tenant, err := tenantOf(in.Tenant)
	if err != nil {
		return reply{}, err
	}
	cmd, rep, err := w.prepare(ctx, tenant, &in)
	if err != nil || cmd == nil {
		return rep, err
	}
	res, err := w.commitRetrying(ctx, store.Command{Enqueue: cmd})
	if err != nil {
		return reply{}, err
	}
	return w.enqueued(cmd, res)
}

// prepare validates a message and drafts its command. A message whose
// idempotency key this node has seen already is answered at once: no
// command, the first message in rep (or ErrIdempotencyKeyReused).
func (w *writer) prepare(ctx context.Context, tenant string, in *MessageInput) (cmd *store.Enqueue, rep reply, err error) {
	if err := w.validateMessage(ctx, in); err != nil {
		return nil, reply{}, err
	}
	now := w.cfg.Now()
	var hash []byte
	if in.IdempotencyKey != "" {
		hash = requestHash(in)
		// A fast path only: the state machine itself ignores a key it
		// has seen, whatever this read missed.
		if id, first, ok, err := w.store.IdempotentMessage(tenant, in.IdempotencyKey, now.UnixNano()); err != nil {
			return nil, reply{}, fromCluster(err)
		} else if ok && len(first) > 0 && !bytes.Equal(first, hash) {
			return nil, reply{}, ErrIdempotencyKeyReused
		} else if ok {
			rep, err := w.messageReply(0, tenant, id)
			return nil, rep, err
		}
	}
	c, err := draft(now, tenant, in.Type, in.Data, in.UserMetadata)
	if err != nil {
		return nil, reply{}, err
	}
	c.URIs = in.URIs
	if in.IdempotencyKey != "" {
		c.IdempotencyKey = in.IdempotencyKey
		c.IdempotencyExpiresAt = now.Add(idempotencyTTL).UnixNano()
		c.RequestHash = hash
	}
	return &c, reply{}, nil
}

// commitRetrying commits cmd, once more if the first try is uncertain: the
// entry may have committed under the old leader, and re-proposing the same
// message ids is safe, as the state machine creates each at most once.
func (w *writer) commitRetrying(ctx context.Context, cmd store.Command) (store.Result, error) {
	res, err := w.commit(ctx, cmd)
	if errors.Is(err, ErrUncertain) {
		res, err = w.commit(ctx, cmd)
	}
	return res, err
}

// enqueued answers for a committed Enqueue: the new message, or the first
// one when its idempotency key was taken meanwhile.
func (w *writer) enqueued(cmd *store.Enqueue, res store.Result) (reply, error) {
	if err := fromCluster(res.Err); err != nil {
		return reply{}, err
	}
	if res.Duplicate && res.MessageID != cmd.ID {
		return w.messageReply(res.Index, cmd.Tenant, res.MessageID)
	}
	status := StatusPending
	if res.Count == 0 { // no endpoint was subscribed: nothing to deliver
		status = StatusSucceeded
	}
	return reply{Index: res.Index, Created: true,
		Message: &Message{ID: cmd.ID, Tenant: cmd.Tenant, Type: cmd.Type, Status: status, CreatedAt: utc(cmd.CreatedAt)}}, nil
}

// messageReply answers with a message as this node's store holds it.
func (w *writer) messageReply(index uint64, tenant, id string) (reply, error) {
	m, ds, err := w.store.Message(tenant, id)
	if err != nil {
		return reply{}, fromCluster(err)
	}
	return reply{Index: index, Message: messageView(m, ds)}, nil
}

// requestHash fingerprints what a client asked for (the type, the
// compacted data and metadata, the URIs), so that an idempotency key used
// again for another request is refused rather than answered with the
// first message. Each part is length-prefixed: no two requests share one.
func requestHash(in *MessageInput) []byte {
	h := sha256.New()
	var n [8]byte
	part := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	part([]byte(in.Type))
	part(in.Data)
	part(in.UserMetadata)
	for _, u := range in.URIs {
		part([]byte(u))
	}
	return h.Sum(nil)
}

// draft stamps a new message with its id, creation time and the envelope
// bytes that every attempt will send. typ and data must be valid already.
func draft(now time.Time, tenant, typ string, data, metadata json.RawMessage) (store.Enqueue, error) {
	id, err := store.NewID("msg", now, rand.Reader)
	if err != nil {
		return store.Enqueue{}, err
	}
	return store.Enqueue{Tenant: tenant, ID: id, Type: typ, CreatedAt: now.UnixNano(), Envelope: envelope(typ, now, data, metadata)}, nil
}

// Message returns a message of the tenant with its payload, deliveries and
// their attempts; a message of another tenant is ErrNotFound.
func (e *Engine) Message(ctx context.Context, tenant, id string) (*Message, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return nil, err
	}
	if err := e.reads.sync(ctx); err != nil {
		return nil, err
	}
	return e.message(tenant, id)
}

// WaitDelivered waits until no delivery of the message is pending (each
// has succeeded, failed or been cancelled) and returns the message, or
// until ctx ends. It does not poll: it looks again each time this node
// applies a change. Any node can wait.
func (e *Engine) WaitDelivered(ctx context.Context, tenant, id string) (*Message, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return nil, err
	}
	if err := e.reads.sync(ctx); err != nil {
		return nil, err
	}
	for {
		applied := e.applied.next() // before the read: no change is missed
		m, _, err := e.store.Message(tenant, id)
		if err != nil {
			return nil, fromCluster(err)
		}
		if m.Status() != store.StatusPending {
			return e.message(tenant, id)
		}
		select {
		case <-applied:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-e.stopping:
			return nil, ErrClosed
		}
	}
}

// message reads a message, with its deliveries and payload, from this
// node's store.
func (e *Engine) message(tenant, id string) (*Message, error) {
	m, ds, err := e.store.Message(tenant, id)
	if err != nil {
		return nil, fromCluster(err)
	}
	v := messageView(m, ds)
	envelope, err := e.store.Envelope(id)
	if err != nil {
		return nil, fromCluster(err)
	}
	var payload struct {
		Data         json.RawMessage `json:"data"`
		UserMetadata json.RawMessage `json:"user_metadata"`
	}
	if err := json.Unmarshal(envelope, &payload); err != nil {
		return nil, fmt.Errorf("engine: message %s: envelope: %w", id, err)
	}
	v.Data, v.UserMetadata = payload.Data, payload.UserMetadata
	return v, nil
}

// ListOptions selects messages to list.
type ListOptions struct {
	// Tenant is the tenant whose messages to list; empty means
	// DefaultTenant.
	Tenant string
	// Status filters by aggregate status (pending, succeeded, failed).
	Status Status
	// Type filters by event type.
	Type string
	// Limit is the page size: 0 means DefaultListLimit; at most
	// MaxListLimit.
	Limit int
	// After is the cursor from a previous page (its next, a message id):
	// list messages older than it. Anything else is an *InvalidError.
	After string
}

// ListMessages lists messages newest first, without their deliveries. next
// is the cursor for the following page, empty at the end. A status or type
// filter examines a bounded number of messages per call, so a page may hold
// fewer than Limit messages, or none, with a next cursor: follow next until
// it is empty.
func (e *Engine) ListMessages(ctx context.Context, opts ListOptions) (msgs []Message, next string, err error) {
	tenant, err := tenantOf(opts.Tenant)
	if err != nil {
		return nil, "", err
	}
	switch opts.Status {
	case "", StatusPending, StatusSucceeded, StatusFailed:
	default:
		return nil, "", invalid("status", "must be pending, succeeded or failed")
	}
	if opts.Type != "" {
		if err := store.CheckEventType(opts.Type); err != nil {
			return nil, "", onField("type", err)
		}
	}
	if opts.Limit, err = pageLimit(opts.Limit); err != nil {
		return nil, "", err
	}
	if opts.After != "" && store.CheckID("msg", opts.After) != nil {
		return nil, "", invalid("after", "must be the next_cursor of a previous page (a message id: msg_ and 26 Crockford base32 digits)")
	}
	if err := e.reads.sync(ctx); err != nil {
		return nil, "", err
	}
	// One more than a page tells whether another follows; fewer, with a
	// next, means the store's scan budget ran out first.
	ms, next, err := e.store.ListMessages(tenant, store.ListFilter{Status: string(opts.Status), Type: opts.Type}, opts.Limit+1, opts.After)
	if err != nil {
		return nil, "", fromCluster(err)
	}
	if len(ms) > opts.Limit {
		ms = ms[:opts.Limit]
		next = ms[len(ms)-1].ID
	}
	msgs = make([]Message, 0, len(ms))
	for i := range ms {
		msgs = append(msgs, *messageView(&ms[i], nil))
	}
	return msgs, next, nil
}

// RequeueResult is what RetryMessage and Recover did.
type RequeueResult struct {
	// Requeued is how many failed deliveries were re-queued.
	Requeued int `json:"requeued"`
	// Reason says why nothing was, when Requeued is 0: what the
	// deliveries are instead, or that their endpoints are disabled.
	Reason string `json:"reason,omitempty"`
}

// RetryMessage re-queues the failed deliveries of a message of the tenant
// for a fresh round of attempts, starting now. Deliveries to a disabled or
// deleted endpoint stay failed.
func (e *Engine) RetryMessage(ctx context.Context, tenant, id string) (RequeueResult, error) {
	rep, err := e.prop.propose(ctx, &request{Retry: &idReq{Tenant: tenant, ID: id}})
	return RequeueResult{Requeued: rep.Count, Reason: rep.Reason}, err
}

func (w *writer) retry(ctx context.Context, tenant, id string) (reply, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return reply{}, err
	}
	res, err := w.commit(ctx, store.Command{Requeue: &store.Requeue{Tenant: tenant, MessageID: id, At: w.cfg.Now().UnixNano()}})
	if err != nil {
		return reply{}, err
	}
	rep := reply{Index: res.Index, Count: res.Count}
	if res.Count == 0 {
		// The command is applied here: the store shows what it found.
		rep.Reason = w.retryReason(tenant, id)
	}
	return rep, nil
}

// retryReason says why retrying a message re-queued nothing.
func (w *writer) retryReason(tenant, id string) string {
	_, ds, err := w.store.Message(tenant, id)
	if err != nil {
		return "no failed deliveries"
	}
	if len(ds) == 0 {
		return "the message has no deliveries: no enabled endpoint was subscribed to its type when it was sent"
	}
	counts := map[string]int{}
	var disabled, deleted []string // endpoints of failed deliveries
	for _, d := range ds {
		counts[d.Status]++
		if d.Status != store.StatusFailed || d.Override() {
			continue
		}
		ep, err := w.store.Endpoint(tenant, d.EndpointID)
		switch {
		case err != nil:
			if !slices.Contains(deleted, d.EndpointID) {
				deleted = append(deleted, d.EndpointID)
			}
		case ep.State != store.StateEnabled:
			if !slices.Contains(disabled, d.EndpointID) {
				disabled = append(disabled, d.EndpointID)
			}
		}
	}
	if counts[store.StatusFailed] == 0 {
		var parts []string
		for _, st := range []string{store.StatusSucceeded, store.StatusPending, store.StatusCancelled} {
			if n := counts[st]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, st))
			}
		}
		reason := "no failed deliveries: " + strings.Join(parts, ", ")
		if counts[store.StatusCancelled] > 0 {
			reason += " (only failed deliveries are re-queued)"
		}
		return reason
	}
	list := func(ids []string) string { return strings.Join(ids, ", ") }
	switch {
	case len(disabled) > 0 && len(deleted) > 0:
		return fmt.Sprintf("the endpoints of its failed deliveries are disabled (%s) or were deleted (%s): enable the disabled ones first, then retry",
			list(disabled), list(deleted))
	case len(disabled) > 0:
		return fmt.Sprintf("the endpoints of its failed deliveries are disabled (%s): enable them first, then retry", list(disabled))
	case len(deleted) > 0:
		return fmt.Sprintf("the endpoints of its failed deliveries were deleted (%s): they cannot be retried", list(deleted))
	}
	// Enabled again since the command was applied.
	return "the endpoints of its failed deliveries were disabled when the retry was applied: retry again"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Recover re-queues every failed delivery of the tenant's messages created
// in [since, until) (until zero: up to now), as after an outage of the
// receiver. Deliveries to a disabled or deleted endpoint stay failed. A
// wide window is done in a series of bounded commands; when one fails, those
// before it stay applied, and calling Recover again is safe (re-queued
// deliveries are pending, not failed).
func (e *Engine) Recover(ctx context.Context, tenant string, since, until time.Time) (RequeueResult, error) {
	rep, err := e.prop.propose(ctx, &request{Recover: &recoverReq{Tenant: tenant, Since: since, Until: until}})
	return RequeueResult{Requeued: rep.Count, Reason: rep.Reason}, err
}

// recover is Recover; with endpointID, it re-queues that endpoint's failed
// and cancelled deliveries alone (see UpdateEndpoint's RecoverSince).
func (w *writer) recover(ctx context.Context, tenant, endpointID string, since, until time.Time) (reply, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return reply{}, err
	}
	now := w.cfg.Now()
	if until.IsZero() {
		until = now
	}
	if since.Before(time.Unix(0, 0)) {
		return reply{}, invalid("since", "must not be before 1970")
	}
	if !since.Before(until) {
		return reply{}, invalid("since", "must be before until")
	}
	cmd := store.Requeue{Tenant: tenant, Since: since.UnixNano(), Until: until.UnixNano(), At: now.UnixNano(),
		EndpointID: endpointID, Limit: requeueBatch}
	var rep reply
	for {
		res, err := w.commit(ctx, store.Command{Requeue: &cmd})
		if err != nil {
			return reply{}, err
		}
		rep.Index, rep.Count = res.Index, rep.Count+res.Count
		if res.Next == "" {
			break
		}
		cmd.After = res.Next
	}
	if rep.Count == 0 {
		rep.Reason = w.recoverReason(tenant, since, until)
	}
	return rep, nil
}

// requeueBatch is how many messages one Requeue command of a window
// examines, which keeps its write transaction short.
var requeueBatch = 1000

// recoverScanLimit bounds the messages recoverReason reads.
const recoverScanLimit = 10000

// recoverReason says why recovering a window re-queued nothing, from the
// messages created in it.
func (w *writer) recoverReason(tenant string, since, until time.Time) string {
	window := fmt.Sprintf("between %s and %s", since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano))
	total, withFailed, ok := w.windowCounts(tenant, since, until)
	switch {
	case !ok:
		return "no message created " + window + " has a failed delivery to an enabled endpoint"
	case total == 0:
		return "no message was created " + window
	case withFailed == 0:
		return fmt.Sprintf("no message in the window had failed deliveries (%d %s created %s)",
			total, plural(total, "message was", "messages were"), window)
	}
	return fmt.Sprintf("the failed deliveries of the %d %s in the window that %s them are to disabled or deleted endpoints: enable the endpoints first, then recover",
		withFailed, plural(withFailed, "message", "messages"), plural(withFailed, "has", "have"))
}

// windowCounts counts the tenant's messages created in [since, until) and
// those of them with failed deliveries. ok is false when it gave up: more
// than recoverScanLimit messages, or a read failed.
func (w *writer) windowCounts(tenant string, since, until time.Time) (total, withFailed int, ok bool) {
	// Message ids begin with their creation time: newest first from just
	// past the window's end, until the ids are older than its start, with
	// a minute of margin either way (for the clocks of different nodes);
	// each record's own time decides.
	const margin, page = time.Minute, 500
	cursor, err := store.NewID("msg", until.Add(margin), bytes.NewReader(make([]byte, 16)))
	if err != nil {
		return 0, 0, false
	}
	for read := 0; read < recoverScanLimit; {
		ms, next, err := w.store.ListMessages(tenant, store.ListFilter{}, page, cursor)
		if err != nil {
			return 0, 0, false
		}
		for _, m := range ms {
			read++
			at := time.Unix(0, m.CreatedAt)
			switch {
			case at.Before(since.Add(-margin)):
				return total, withFailed, true
			case at.Before(since), !at.Before(until):
			default:
				total++
				if m.Failed > 0 {
					withFailed++
				}
			}
		}
		if next == "" {
			return total, withFailed, true
		}
		cursor = next
	}
	return 0, 0, false
}
