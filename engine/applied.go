package engine

import (
	"context"
	"sync"
)

// appliedIndex follows the index of the last Raft entry applied to this
// node's store, and lets callers wait for it to reach a given index.
type appliedIndex struct {
	stopping <-chan struct{} // waits end with ErrClosed when closed

	mu    sync.Mutex // guards index, moved
	index uint64
	moved chan struct{} // closed when index advances
}

func newAppliedIndex(index uint64, stopping <-chan struct{}) *appliedIndex {
	return &appliedIndex{index: index, stopping: stopping, moved: make(chan struct{})}
}

// advance records that the store has applied up to index.
func (a *appliedIndex) advance(index uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if index > a.index {
		a.index = index
		close(a.moved)
		a.moved = make(chan struct{})
	}
}

// next returns a channel closed when the index next advances.
func (a *appliedIndex) next() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.moved
}

func (a *appliedIndex) get() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index
}

// wait waits until the store has applied index.
func (a *appliedIndex) wait(ctx context.Context, index uint64) error {
	for {
		a.mu.Lock()
		done, moved := a.index >= index, a.moved
		a.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		case <-a.stopping:
			return ErrClosed
		}
	}
}
