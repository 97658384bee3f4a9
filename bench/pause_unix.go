//go:build unix

package bench

import (
	"fmt"
	"os"
	"syscall"
)

// canPause reports whether Pause works here.
const canPause = true

// Pause sends SIGSTOP to node i: it freezes as in a long GC pause or a
// suspended VM, its sockets open (the kernel still accepts connections
// and buffers requests) and its state as it was. Resume continues it;
// Terminate, Kill and Stop also work on a paused node.
func (c *Cluster) Pause(i int) error { return c.Nodes[i].send(syscall.SIGSTOP) }

// Resume sends SIGCONT to node i.
func (c *Cluster) Resume(i int) error { return c.Nodes[i].send(syscall.SIGCONT) }

// send sends sig to the node's process if it runs.
func (n *Node) send(sig syscall.Signal) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("bench: %s was never started", n.ID)
	}
	select {
	case <-done:
		return fmt.Errorf("bench: %s is not running", n.ID)
	default:
	}
	return cmd.Process.Signal(sig)
}

// resume continues p if it is paused.
func resume(p *os.Process) { p.Signal(syscall.SIGCONT) }
