package engine

import (
	"errors"
	"fmt"

	"github.com/heraldhq/herald/cluster"
)

// ErrCatchingUp means this node is too far behind the leader to answer
// (it rejoined after a long absence, or is installing a snapshot): a
// request here would wait until it has caught up. Nothing was written;
// retry on another node. The error is a *CatchingUpError;
// errors.Is(err, ErrCatchingUp) holds for it.
var ErrCatchingUp = errors.New("engine: this node is catching up with the leader")

// CatchingUpError is ErrCatchingUp with how far behind the node is.
type CatchingUpError struct {
	// Behind is how many Raft entries this node trails the leader by, as
	// far as it knows.
	Behind uint64
}

func (e *CatchingUpError) Error() string {
	return fmt.Sprintf("%v (%d entries behind)", ErrCatchingUp, e.Behind)
}

// Is makes errors.Is(err, ErrCatchingUp) hold.
func (e *CatchingUpError) Is(target error) bool { return target == ErrCatchingUp }

// CatchingUp reports whether this node is too far behind the leader to
// answer, and by how many Raft entries it trails the leader: every read
// and write on it then returns a *CatchingUpError at once, and Ready is
// false.
func (e *Engine) CatchingUp() (behind uint64, ok bool) { return e.node.CatchingUp() }

// caughtUp returns a *CatchingUpError while node is too far behind the
// leader to answer.
func caughtUp(node *cluster.Node) error {
	if behind, far := node.CatchingUp(); far {
		return &CatchingUpError{Behind: behind}
	}
	return nil
}
