package engine

import (
	"errors"
	"fmt"

	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/store"
)

// Errors returned by Engine methods. Callers branch with errors.Is.
var (
	// ErrNotFound means the message or endpoint does not exist.
	ErrNotFound = errors.New("engine: not found")
	// ErrNotLeader means this node cannot accept writes now (no leader, or
	// another node leads). Nothing was written; retry, on any node.
	ErrNotLeader = errors.New("engine: this node is not the leader")
	// ErrUncertain means the write may or may not have been committed;
	// retry it with the same idempotency key.
	ErrUncertain = errors.New("engine: the write may or may not have committed")
	// ErrIdempotencyKeyReused means the idempotency key was used in the
	// last 24 hours, in the tenant, for another request (type, data or
	// webhook config): nothing was created. Use a new key.
	ErrIdempotencyKeyReused = errors.New("engine: idempotency key already used for a different request")
	// ErrClosed is returned after Stop or Close.
	ErrClosed = errors.New("engine: closed")
	// ErrConflict means the request cannot be done in the current state
	// (a disabled endpoint pinged, the last voter removed, a node id or
	// address taken). The error is a *ConflictError saying why and what to
	// do; nothing was written.
	ErrConflict = errors.New("engine: conflict")
)

// ConflictError is a request refused in the current state. Msg says what
// is in the way and what to do, for a person; errors.Is(err, ErrConflict)
// holds for it.
type ConflictError struct {
	Msg string
}

func (e *ConflictError) Error() string { return "engine: " + e.Msg }

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

func conflict(format string, args ...any) error {
	return &ConflictError{Msg: fmt.Sprintf(format, args...)}
}

// InvalidError reports bad input; the message names the field.
type InvalidError struct {
	Field string
	Msg   string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("engine: invalid %s: %s", e.Field, e.Msg)
}

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// onField turns the verdict of one of the store's checks, which the state
// machine applies to every command too, into an error on the API's field.
func onField(field string, err error) error {
	var inv *store.InvalidError
	if errors.As(err, &inv) {
		return &InvalidError{Field: field, Msg: inv.Msg}
	}
	return err
}

// fromCluster translates cluster and store errors into the engine's own.
func fromCluster(err error) error {
	var inv *store.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, cluster.ErrUncertain):
		return ErrUncertain
	case errors.Is(err, cluster.ErrClosed), errors.Is(err, store.ErrClosed):
		return ErrClosed
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrKeyReused):
		return ErrIdempotencyKeyReused
	case errors.As(err, &inv):
		// The state machine's own checks, which the engine's validation
		// of client input normally meets first.
		return &InvalidError{Field: inv.Field, Msg: inv.Msg}
	}
	return err
}
