//go:build !unix

package bench

import (
	"errors"
	"os"
)

// canPause reports whether Pause works here.
const canPause = false

var errNoPause = errors.New("bench: pausing a node needs SIGSTOP (Unix)")

// Pause is not supported here: it needs SIGSTOP.
func (c *Cluster) Pause(i int) error { return errNoPause }

// Resume is not supported here: it needs SIGCONT.
func (c *Cluster) Resume(i int) error { return errNoPause }

// resume does nothing: no node can be paused here.
func resume(*os.Process) {}
