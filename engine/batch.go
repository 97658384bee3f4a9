package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/heraldhq/herald/store"
)

// Limits on a batch of messages.
const (
	// MaxBatchMessages bounds the messages of one EnqueueBatch.
	MaxBatchMessages = store.MaxBatchMessages
	// MaxBatchBytes bounds a batch's request body in the HTTP API.
	MaxBatchBytes = 4 << 20
)

// BatchResult is one message's outcome in EnqueueBatch: the message, with
// Created false when its idempotency key returned an earlier one, or the
// error that refused it (an *InvalidError or ErrIdempotencyKeyReused).
type BatchResult struct {
	Message *Message
	Created bool
	Err     error
}

// batchReq is an EnqueueBatch as it is forwarded.
type batchReq struct {
	Tenant   string         `json:"tenant,omitempty"`
	Messages []MessageInput `json:"messages"`
}

// batchItem is a BatchResult on the wire.
type batchItem struct {
	Message *Message   `json:"message,omitempty"`
	Created bool       `json:"created,omitempty"`
	Error   *wireError `json:"error,omitempty"`
}

// EnqueueBatch accepts up to MaxBatchMessages messages of a tenant (each
// message's own Tenant is ignored) in one Raft entry, and returns once it
// is committed to a Raft majority. Each message is validated, and accepted
// or refused, on its own, with its own idempotency key: the results are in
// the order of ins. An error means none was accepted.
func (e *Engine) EnqueueBatch(ctx context.Context, tenant string, ins []MessageInput) ([]BatchResult, error) {
	// A copy: the writer normalizes the inputs it is given in place.
	req := &batchReq{Tenant: tenant, Messages: slices.Clone(ins)}
	rep, err := e.prop.propose(ctx, &request{EnqueueBatch: req})
	if err != nil {
		return nil, err
	}
	out := make([]BatchResult, len(rep.Batch))
	for i, it := range rep.Batch {
		out[i] = BatchResult{Message: it.Message, Created: it.Created, Err: fromWire(it.Error)}
	}
	return out, nil
}

func (w *writer) enqueueBatch(ctx context.Context, req batchReq) (reply, error) {
	tenant, err := tenantOf(req.Tenant)
	if err != nil {
		return reply{}, err
	}
	if n := len(req.Messages); n == 0 || n > MaxBatchMessages {
		return reply{}, invalid("messages", "%d messages; a batch takes 1 to %d", n, MaxBatchMessages)
	}
	items := make([]batchItem, len(req.Messages))
	var cmds []store.Enqueue
	var at []int // at[j] is the item of cmds[j]
	for i := range req.Messages {
		in := &req.Messages[i]
		in.Tenant = tenant
		cmd, rep, err := w.prepare(ctx, tenant, in)
		switch {
		case err != nil:
			items[i].Error = toWire(err)
		case cmd == nil:
			items[i] = batchItem{Message: rep.Message}
		default:
			cmds = append(cmds, *cmd)
			at = append(at, i)
		}
	}
	if len(cmds) == 0 {
		return reply{Batch: items}, nil
	}
	res, err := w.commitRetrying(ctx, store.Command{EnqueueBatch: &store.EnqueueBatch{Messages: cmds}})
	if err != nil {
		return reply{}, err
	}
	if len(res.Batch) != len(cmds) {
		return reply{}, fmt.Errorf("engine: a batch of %d messages got %d results", len(cmds), len(res.Batch))
	}
	for j, r := range res.Batch {
		r.Index = res.Index
		rep, err := w.enqueued(&cmds[j], r)
		items[at[j]] = batchItem{Message: rep.Message, Created: rep.Created, Error: toWire(err)}
	}
	return reply{Index: res.Index, Batch: items}, nil
}
