package engine

import (
	"errors"
	"time"

	"github.com/heraldhq/herald/store"
)

// request is one write as a client asked for it; exactly one field is set.
// A follower forwards it unchanged to the leader, which validates and
// executes it exactly as it would a call made there: nothing a follower
// sends reaches the log without the leader's own checks.
type request struct {
	CreateEndpoint   *EndpointInput     `json:"create_endpoint,omitempty"`
	UpdateEndpoint   *updateEndpointReq `json:"update_endpoint,omitempty"`
	DeleteEndpoint   *idReq             `json:"delete_endpoint,omitempty"`
	RotateSecret     *rotateSecretReq   `json:"rotate_secret,omitempty"`
	Ping             *idReq             `json:"ping,omitempty"`
	Enqueue          *MessageInput      `json:"enqueue,omitempty"`
	EnqueueBatch     *batchReq          `json:"enqueue_batch,omitempty"`
	Retry            *idReq             `json:"retry,omitempty"`
	Recover          *recoverReq        `json:"recover,omitempty"`
	RotateSigningKey *struct{}          `json:"rotate_signing_key,omitempty"`
	AddNode          *nodeReq           `json:"add_node,omitempty"`
	RemoveNode       *idReq             `json:"remove_node,omitempty"`
	PublishNode      *store.Node        `json:"publish_node,omitempty"`
	DeleteTenant     *idReq             `json:"delete_tenant,omitempty"`
	CreateToken      *tokenReq          `json:"create_token,omitempty"`
	RevokeTokens     *idReq             `json:"revoke_tokens,omitempty"`
}

// idReq names a record, of a tenant when the record belongs to one.
type idReq struct {
	Tenant string `json:"tenant,omitempty"`
	ID     string `json:"id"`
}

type updateEndpointReq struct {
	Tenant string         `json:"tenant,omitempty"`
	ID     string         `json:"id"`
	Update EndpointUpdate `json:"update"`
}

type rotateSecretReq struct {
	Tenant    string `json:"tenant,omitempty"`
	ID        string `json:"id"`
	RevokeNow bool   `json:"revoke_now,omitempty"`
}

type recoverReq struct {
	Tenant string    `json:"tenant,omitempty"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"`
}

type tokenReq struct {
	Tenant string        `json:"tenant"`
	TTL    time.Duration `json:"ttl"`
}

type nodeReq struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// fields counts the request's set fields.
func (r *request) fields() int {
	n := 0
	for _, set := range []bool{r.CreateEndpoint != nil, r.UpdateEndpoint != nil, r.DeleteEndpoint != nil,
		r.RotateSecret != nil, r.Ping != nil, r.Enqueue != nil, r.EnqueueBatch != nil, r.Retry != nil, r.Recover != nil,
		r.RotateSigningKey != nil, r.AddNode != nil, r.RemoveNode != nil, r.PublishNode != nil,
		r.DeleteTenant != nil, r.CreateToken != nil, r.RevokeTokens != nil} {
		if set {
			n++
		}
	}
	return n
}

// reply is the result of a request. Index is the Raft index of the entry
// that carried its command (zero when nothing was written): the node that
// forwarded the request waits to apply it before answering, but for an
// enqueue (see proposer.forward).
type reply struct {
	Index    uint64      `json:"index,omitempty"`
	Endpoint *Endpoint   `json:"endpoint,omitempty"`
	Message  *Message    `json:"message,omitempty"`
	Created  bool        `json:"created,omitempty"`
	Count    int         `json:"count,omitempty"`
	Secret   string      `json:"secret,omitempty"`
	Reason   string      `json:"reason,omitempty"`
	Token    *Token      `json:"token,omitempty"`
	Batch    []batchItem `json:"batch,omitempty"`
	Error    *wireError  `json:"error,omitempty"`
}

// wireError is an error as it crosses between nodes: a code, not a string
// to be parsed. Errors are translated to codes once, by toWire, and back
// once, by fromWire.
type wireError struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message,omitempty"`
}

// Wire error codes.
const (
	wireInvalid   = "invalid_argument"
	wireConflict  = "conflict"
	wireNotFound  = "not_found"
	wireNotLeader = "not_leader"
	wireUncertain = "uncertain"
	wireClosed    = "closed"
	wireKeyReused = "idempotency_key_reused"
	wireInternal  = "internal"
)

// sentinels maps codes to the engine's sentinel errors.
var sentinels = []struct {
	code string
	err  error
}{
	{wireNotFound, ErrNotFound},
	{wireNotLeader, ErrNotLeader},
	{wireUncertain, ErrUncertain},
	{wireClosed, ErrClosed},
	{wireKeyReused, ErrIdempotencyKeyReused},
}

// toWire encodes an engine error. Errors without a code (bugs, I/O) cross
// as "internal" without their text, which stays in the leader's log.
func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	var ie *InvalidError
	if errors.As(err, &ie) {
		return &wireError{Code: wireInvalid, Field: ie.Field, Message: ie.Msg}
	}
	var ce *ConflictError
	if errors.As(err, &ce) {
		return &wireError{Code: wireConflict, Message: ce.Msg}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return &wireError{Code: s.code}
		}
	}
	return &wireError{Code: wireInternal}
}

// errInternal is a failure the leader reported without details.
var errInternal = errors.New("engine: the leader could not execute the request (see its log)")

// fromWire decodes an error made by toWire.
func fromWire(w *wireError) error {
	if w == nil {
		return nil
	}
	switch w.Code {
	case wireInvalid:
		return &InvalidError{Field: w.Field, Msg: w.Message}
	case wireConflict:
		return &ConflictError{Msg: w.Message}
	}
	for _, s := range sentinels {
		if w.Code == s.code {
			return s.err
		}
	}
	return errInternal
}
