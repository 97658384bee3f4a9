package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/heraldhq/herald/engine"
)

// createMessageRequest is the body of POST /v1/messages.
type createMessageRequest struct {
	Type          string          `json:"type"`
	Data          json.RawMessage `json:"data"`
	WebhookConfig *webhookConfig  `json:"webhook_config"`
}

// input is the message the request asks for.
func (req *createMessageRequest) input(idempotencyKey string) engine.MessageInput {
	in := engine.MessageInput{Type: req.Type, Data: req.Data, IdempotencyKey: idempotencyKey}
	if wc := req.WebhookConfig; wc != nil {
		in.URIs = wc.URIs
		if len(wc.UserMetadata) > 0 && string(wc.UserMetadata) != "null" {
			in.UserMetadata = wc.UserMetadata
		}
	}
	return in
}

// webhookConfig overrides the destinations of one message.
type webhookConfig struct {
	URIs         []string        `json:"uris"`
	UserMetadata json.RawMessage `json:"user_metadata"`
}

// messageCreated is the answer to POST /v1/messages.
type messageCreated struct {
	ID        string        `json:"id"`
	Tenant    string        `json:"tenant"`
	Type      string        `json:"type"`
	Status    engine.Status `json:"status"`
	CreatedAt time.Time     `json:"created_at"`
}

// messageList is the answer to GET /v1/messages. NextCursor is the value
// for ?after= that fetches the next, older page; null on the last page. A
// page filtered by status may hold fewer than limit messages, or none, and
// still have a NextCursor (the engine bounds what one request examines).
type messageList struct {
	Data       []engine.Message `json:"data"`
	NextCursor *string          `json:"next_cursor"`
}

// recoverRequest is the body of POST /v1/messages/recover.
type recoverRequest struct {
	Since string `json:"since"`
	Until string `json:"until"`
}

// requeued answers retry and recover. Reason, given only when nothing was
// re-queued, says why.
type requeued struct {
	Requeued int    `json:"requeued"`
	Reason   string `json:"reason,omitempty"`
}

// headerIdempotencyKey makes POST /v1/messages idempotent for 24 hours.
const headerIdempotencyKey = "Idempotency-Key"

func (a *api) createMessage(w http.ResponseWriter, r *http.Request) error {
	var req createMessageRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	in := req.input(r.Header.Get(headerIdempotencyKey))
	in.Tenant = r.PathValue("tenant")
	msg, created, err := a.e.Enqueue(r.Context(), in)
	if err != nil {
		return err
	}
	out := messageCreated{ID: msg.ID, Tenant: msg.Tenant, Type: msg.Type, Status: msg.Status, CreatedAt: msg.CreatedAt}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		return writeJSON(w, http.StatusOK, out)
	}
	if a.metrics != nil {
		a.metrics.messagesAccepted.Inc()
	}
	return writeJSON(w, http.StatusAccepted, out)
}

func (a *api) getMessage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	msg, err := a.e.Message(r.Context(), r.PathValue("tenant"), id)
	if err != nil {
		return messageErr(err, id)
	}
	return writeJSON(w, http.StatusOK, msg)
}

func (a *api) listMessages(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	status, _, err := param(r, "status")
	if err != nil {
		return err
	}
	typ, _, err := param(r, "type")
	if err != nil {
		return err
	}
	after, _, err := param(r, "after")
	if err != nil {
		return err
	}
	opts := engine.ListOptions{Tenant: r.PathValue("tenant"), Status: engine.Status(status), Type: typ, Limit: limit, After: after}
	msgs, next, err := a.e.ListMessages(r.Context(), opts)
	if err != nil {
		return err
	}
	out := messageList{Data: msgs}
	if out.Data == nil {
		out.Data = []engine.Message{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) retryMessage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := decode(r, &struct{}{}, true); err != nil {
		return err
	}
	res, err := a.e.RetryMessage(r.Context(), r.PathValue("tenant"), id)
	if err != nil {
		return messageErr(err, id)
	}
	return writeJSON(w, http.StatusOK, requeuedOf(res))
}

func (a *api) recoverMessages(w http.ResponseWriter, r *http.Request) error {
	var req recoverRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	if req.Since == "" {
		return badRequest("since: is required (an RFC 3339 time)")
	}
	since, err := time.Parse(time.RFC3339, req.Since)
	if err != nil {
		return badRequest("since: %q is not an RFC 3339 time", req.Since)
	}
	var until time.Time
	if req.Until != "" {
		if until, err = time.Parse(time.RFC3339, req.Until); err != nil {
			return badRequest("until: %q is not an RFC 3339 time", req.Until)
		}
	}
	res, err := a.e.Recover(r.Context(), r.PathValue("tenant"), since, until)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, requeuedOf(res))
}

// requeuedOf is the answer for a requeue's result: a reason only when
// nothing was re-queued.
func requeuedOf(res engine.RequeueResult) requeued {
	out := requeued{Requeued: res.Requeued}
	if res.Requeued == 0 {
		out.Reason = res.Reason
		if out.Reason == "" {
			out.Reason = "no failed deliveries to re-queue"
		}
	}
	return out
}

func (a *api) rotateSigningKey(w http.ResponseWriter, r *http.Request) error {
	if err := decode(r, &struct{}{}, true); err != nil {
		return err
	}
	if err := a.e.RotateSigningKey(r.Context()); err != nil {
		return err
	}
	set, err := a.e.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(set)
	return nil
}

func (a *api) jwks(w http.ResponseWriter, r *http.Request) error {
	set, err := a.e.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(set)
	return nil
}

func (a *api) clusterStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := a.e.ClusterStatus(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// messageErr names the message in a not-found error.
func messageErr(err error, id string) error {
	if errors.Is(err, engine.ErrNotFound) {
		return notFound("message", id)
	}
	return err
}
