package main

import (
	"errors"
	"net/http"

	"github.com/heraldhq/herald/engine"
)

// batchRequest is the body of POST /v1/messages/batch.
type batchRequest struct {
	Messages []batchMessage `json:"messages"`
}

// batchMessage is one message of a batch: a createMessageRequest with its
// own idempotency key.
type batchMessage struct {
	createMessageRequest
	IdempotencyKey string `json:"idempotency_key"`
}

// batchItem is one message's answer, in the order of the request: the
// message, or the error that refused it.
type batchItem struct {
	ID       string        `json:"id,omitempty"`
	Status   engine.Status `json:"status,omitempty"`
	Replayed *bool         `json:"replayed,omitempty"`
	Error    *errorDetail  `json:"error,omitempty"`
}

// batchAnswer is the answer to POST /v1/messages/batch.
type batchAnswer struct {
	Data []batchItem `json:"data"`
}

func (a *api) createMessageBatch(w http.ResponseWriter, r *http.Request) error {
	var req batchRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	if n := len(req.Messages); n == 0 || n > engine.MaxBatchMessages {
		return badRequest("messages: %d messages; a batch takes 1 to %d", n, engine.MaxBatchMessages)
	}
	ins := make([]engine.MessageInput, len(req.Messages))
	for i := range req.Messages {
		ins[i] = req.Messages[i].input(req.Messages[i].IdempotencyKey)
	}
	results, err := a.e.EnqueueBatch(r.Context(), r.PathValue("tenant"), ins)
	if err != nil {
		return err
	}
	out := make([]batchItem, len(results))
	accepted := 0
	for i, res := range results {
		if res.Err != nil {
			out[i].Error = a.itemError(r, res.Err)
			continue
		}
		replayed := !res.Created
		out[i] = batchItem{ID: res.Message.ID, Status: res.Message.Status, Replayed: &replayed}
		if res.Created {
			accepted++
		}
	}
	if a.metrics != nil {
		a.metrics.messagesAccepted.Add(float64(accepted))
	}
	return writeJSON(w, http.StatusAccepted, batchAnswer{Data: out})
}

// itemError is the error of one refused message of a batch, with the code
// and message the same error has on its own in a single enqueue.
func (a *api) itemError(r *http.Request, err error) *errorDetail {
	var ie *engine.InvalidError
	switch {
	case errors.As(err, &ie):
		return &errorDetail{Code: codeInvalidArgument, Message: ie.Field + ": " + ie.Msg}
	case errors.Is(err, engine.ErrIdempotencyKeyReused):
		return &errorDetail{Code: codeKeyReused, Message: "this idempotency_key was used in the last 24 hours for a different request " +
			"(type, data or webhook_config); nothing was created for this message: use a new key"}
	}
	a.log.Error("batch message failed", "path", r.URL.Path, "error", err)
	return &errorDetail{Code: codeInternal, Message: "internal error"}
}
