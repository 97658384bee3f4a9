package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhq/herald/store"
)

// Any node accepts every call. A follower sends each write, as an encoded
// command, to the leader's internal endpoint, then waits until its own
// store has applied the entry, so a read on the same node sees the write.
// Reads on a follower first learn the leader's applied index (a Raft
// "read index", confirmed with a quorum) and wait to apply up to it, so they
// are as current as the leader's.

// Internal API paths, served by InternalHandler.
const (
	internalApplyPath     = "/internal/v1/apply"
	internalReadIndexPath = "/internal/v1/read-index"
	internalMembersPath   = "/internal/v1/members"
	maxInternalBody       = 4 << 20
	forwardTimeout        = 10 * time.Second
	// noLeaderWait is how long a call waits for a leader to be known before
	// answering ErrNotLeader (503): elections take well under a second.
	noLeaderWait     = 3 * time.Second
	readIndexTimeout = 3 * time.Second
)

// forwardReply is the leader's answer to a forwarded command.
type forwardReply struct {
	MessageID string `json:"message_id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Count     int    `json:"count,omitempty"`
	ErrCode   string `json:"err_code,omitempty"`
	Index     uint64 `json:"index"`
}

// rejection codes for store errors carried in forwardReply.
var rejections = map[string]error{"not_found": store.ErrNotFound, "exists": store.ErrExists}

func rejectionCode(err error) string {
	for code, e := range rejections {
		if errors.Is(err, e) {
			return code
		}
	}
	return err.Error()
}

func rejectionErr(code string) error {
	if err, ok := rejections[code]; ok {
		return err
	}
	return errors.New(code)
}

// InternalHandler serves the node-to-node API that followers use to
// forward writes and reads to the leader. Mount it at /internal/ behind the
// same authentication as the public API.
func (e *Engine) InternalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+internalApplyPath, e.serveApply)
	mux.HandleFunc("GET "+internalReadIndexPath, e.serveReadIndex)
	mux.HandleFunc("POST "+internalMembersPath, e.serveMembership)
	return mux
}

func (e *Engine) serveApply(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInternalBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	cmds, err := store.DecodeBatch(raw)
	if err != nil || len(cmds) != 1 {
		http.Error(w, "one encoded command expected", http.StatusBadRequest)
		return
	}
	res, err := e.node.Apply(r.Context(), cmds[0])
	if err != nil {
		http.Error(w, fromCluster(err).Error(), http.StatusServiceUnavailable)
		return
	}
	reply := forwardReply{MessageID: res.MessageID, Duplicate: res.Duplicate, Count: res.Count, Index: res.Index}
	if res.Err != nil {
		reply.ErrCode = rejectionCode(res.Err)
	}
	writeInternalJSON(w, reply)
}

func (e *Engine) serveReadIndex(w http.ResponseWriter, r *http.Request) {
	if err := e.node.VerifyLeader(r.Context()); err != nil {
		http.Error(w, fromCluster(err).Error(), http.StatusServiceUnavailable)
		return
	}
	// The index of the last entry applied to the leader's store covers every
	// write acknowledged so far (the leader answers only after applying).
	// Raft's commit index would not do: it can point at a no-op entry that
	// never reaches a store, and a follower would wait for it in vain.
	e.appliedMu.Lock()
	index := e.appliedIndex
	e.appliedMu.Unlock()
	writeInternalJSON(w, forwardReply{Index: index})
}

// membershipChange is a forwarded AddNode or RemoveNode.
type membershipChange struct {
	Remove   bool   `json:"remove,omitempty"`
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr,omitempty"`
}

func (e *Engine) serveMembership(w http.ResponseWriter, r *http.Request) {
	var c membershipChange
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInternalBody)).Decode(&c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := e.changeMembership(r.Context(), c); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeInternalJSON(w, forwardReply{})
}

func writeInternalJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// leaderAPI returns the leader's API base URL, or "" while unknown.
func (e *Engine) leaderAPI() string {
	id, _ := e.node.Leader()
	if id == "" {
		return ""
	}
	nodes, err := e.store.Nodes()
	if err != nil {
		return ""
	}
	for _, n := range nodes {
		if n.ID == id && n.APIAddr != "" {
			if strings.Contains(n.APIAddr, "://") {
				return n.APIAddr
			}
			return "http://" + n.APIAddr
		}
	}
	return ""
}

// forward sends cmd to the leader, retrying while leadership settles, and
// waits until this node has applied it.
func (e *Engine) forward(ctx context.Context, cmd store.Command) (store.Result, error) {
	body, err := store.EncodeBatch([]store.Command{cmd})
	if err != nil {
		return store.Result{}, err
	}
	var reply forwardReply
	if err := e.callLeader(ctx, forwardTimeout, http.MethodPost, internalApplyPath, body, &reply); err != nil {
		return store.Result{}, err
	}
	if err := e.waitApplied(ctx, reply.Index); err != nil {
		return store.Result{}, err
	}
	res := store.Result{MessageID: reply.MessageID, Duplicate: reply.Duplicate, Count: reply.Count, Index: reply.Index}
	if reply.ErrCode != "" {
		res.Err = rejectionErr(reply.ErrCode)
	}
	return res, nil
}

// syncRead makes a read on this node as current as the leader: a follower
// waits until it has applied what the leader had applied.
func (e *Engine) syncRead(ctx context.Context) error {
	if e.IsLeader() {
		return nil
	}
	var reply forwardReply
	if err := e.callLeader(ctx, readIndexTimeout, http.MethodGet, internalReadIndexPath, nil, &reply); err != nil {
		return err
	}
	return e.waitApplied(ctx, reply.Index)
}

// callLeader calls the leader's internal API, retrying with a short backoff
// while there is no leader or the one asked has just lost leadership. Only
// a clear rejection or the deadline ends it; ErrNotLeader then means no
// leader could be reached.
func (e *Engine) callLeader(ctx context.Context, timeout time.Duration, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := 10 * time.Millisecond
	var last error
	var leaderless time.Time // since when no leader is known
	for {
		if e.IsLeader() && method == http.MethodPost {
			return ErrNotLeader // became leader meanwhile: the caller applies locally
		}
		base := e.leaderAPI()
		if base == "" {
			if leaderless.IsZero() {
				leaderless = time.Now()
			} else if time.Since(leaderless) > noLeaderWait {
				return ErrNotLeader
			}
			last = ErrNotLeader
		} else {
			leaderless = time.Time{}
			status, err := e.post(ctx, method, base+path, body, out)
			switch {
			case err == nil:
				return nil
			case status == http.StatusBadRequest:
				return err
			}
			last = err
		}
		select {
		case <-ctx.Done():
			if errors.Is(last, ErrNotLeader) || last == nil {
				return ErrNotLeader
			}
			return fmt.Errorf("%w: %v", ErrNotLeader, last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

func (e *Engine) post(ctx context.Context, method, url string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if e.cfg.ClusterToken != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.ClusterToken)
	}
	resp, err := e.peerClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.StatusCode, fmt.Errorf("engine: leader answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// onApplied is the store's hook after every applied batch.
func (e *Engine) onApplied(a store.Applied) {
	if len(a.Scheduled) > 0 {
		e.sched.observe(a.Scheduled)
	}
	e.appliedMu.Lock()
	if a.Index > e.appliedIndex {
		e.appliedIndex = a.Index
		close(e.appliedCh)
		e.appliedCh = make(chan struct{})
	}
	e.appliedMu.Unlock()
}

// waitApplied waits until this node's store has applied index.
func (e *Engine) waitApplied(ctx context.Context, index uint64) error {
	for {
		e.appliedMu.Lock()
		done, ch := e.appliedIndex >= index, e.appliedCh
		e.appliedMu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.stopping:
			return ErrClosed
		}
	}
}
