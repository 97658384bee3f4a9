package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/heraldhq/herald/cluster"
)

// Any node accepts every call. A follower forwards each write, as a typed
// request, to the leader's internal API, and asks the leader for a read
// index before it answers a read (see readGate).

// Internal API paths, served on the peer port.
const (
	internalProposePath   = "/internal/v1/propose"
	internalReadIndexPath = "/internal/v1/read-index"
	// maxInternalBody leaves room for a forwarded batch of messages, a
	// MaxBatchBytes request body re-encoded.
	maxInternalBody = 2 * MaxBatchBytes
	forwardTimeout  = 10 * time.Second
	// noLeaderWait is how long a call waits for a leader to be known before
	// answering ErrNotLeader (503): elections take well under a second.
	noLeaderWait     = 3 * time.Second
	readIndexTimeout = 3 * time.Second
)

// errLeaderHere means this node became the leader while it was looking for
// one: the caller should execute locally.
var errLeaderHere = errors.New("engine: this node leads now")

// internalAPI serves the node-to-node API on the leader.
type internalAPI struct {
	w        *writer
	reads    *readGate
	isLeader func() bool
	log      *slog.Logger
}

func (a *internalAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+internalProposePath, a.serveRequest)
	mux.HandleFunc("GET "+internalReadIndexPath, a.serveReadIndex)
	return mux
}

// serveRequest executes a forwarded request, validated as a client's.
func (a *internalAPI) serveRequest(w http.ResponseWriter, r *http.Request) {
	var req request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxInternalBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.fields() != 1 {
		http.Error(w, "one request expected", http.StatusBadRequest)
		return
	}
	var rep reply
	var err error
	if a.isLeader() {
		rep, err = a.w.execute(r.Context(), &req)
	} else {
		err = ErrNotLeader
	}
	if errors.Is(err, ErrClosed) {
		// This node is shutting down: the command may have been appended
		// before it stopped waiting.
		err = ErrUncertain
	}
	if rep.Error = toWire(err); rep.Error != nil && rep.Error.Code == wireInternal {
		a.log.Error("forwarded request failed", "error", err)
	}
	writeInternalJSON(w, rep)
}

// serveReadIndex hands a follower the index it must apply before it may
// answer a read: only a leader that has applied its term's barrier and
// confirmed its leadership with a quorum gives one.
func (a *internalAPI) serveReadIndex(w http.ResponseWriter, r *http.Request) {
	index, err := a.reads.readIndex(r.Context())
	writeInternalJSON(w, reply{Index: index, Error: toWire(err)})
}

func writeInternalJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// peers calls the leader's internal API on its peer port, the port that
// carries Raft: the leader's address comes from Raft itself, and the
// connection is authenticated like Raft's (mutual TLS when configured).
type peers struct {
	node     *cluster.Node
	isLeader func() bool
}

// leaderURL returns the URL of path on the leader's internal API, or ""
// while no leader is known.
func (p *peers) leaderURL(path string) string {
	if _, addr := p.node.Leader(); addr != "" {
		return p.node.PeerURL(addr, path)
	}
	return ""
}

// callLeader calls the leader's internal API and decodes its reply into
// out. While there is no leader, or the node asked is not (or no longer)
// the leader, it retries with a short backoff until the deadline; it
// returns errLeaderHere if this node is elected meanwhile, and ErrNotLeader
// when no leader could be reached. A reply carrying any other error code is
// returned for the caller to decode. A write whose connection failed after
// it may have reached the leader is not sent again: that is ErrUncertain.
func (p *peers) callLeader(parent context.Context, timeout time.Duration, method, path string, body []byte, out *reply) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	backoff := 10 * time.Millisecond
	var last error
	var leaderless time.Time // since when no leader is known
	for {
		if p.isLeader() {
			return errLeaderHere
		}
		url := p.leaderURL(path)
		if url == "" {
			if leaderless.IsZero() {
				leaderless = time.Now()
			} else if time.Since(leaderless) > noLeaderWait {
				return ErrNotLeader
			}
			last = ErrNotLeader
		} else {
			leaderless = time.Time{}
			*out = reply{}
			err := p.call(ctx, method, url, body, out)
			var refused *refusedError
			switch {
			case err == nil && (out.Error == nil || out.Error.Code != wireNotLeader):
				return nil // an answer, perhaps an error for the caller to decode
			case errors.As(err, &refused) && refused.status == http.StatusBadRequest:
				return err
			case err != nil && method != http.MethodGet && mayHaveArrived(err):
				// A write may have been executed before the connection
				// failed: sending it again could execute it twice.
				return ErrUncertain
			}
			last = err
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err() // the caller gave up, not the cluster
			}
			if last == nil || errors.Is(last, ErrNotLeader) {
				return ErrNotLeader
			}
			return fmt.Errorf("%w: %v", ErrNotLeader, last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

func (p *peers) call(ctx context.Context, method, url string, body []byte, out *reply) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.node.PeerClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &refusedError{status: resp.StatusCode, msg: string(bytes.TrimSpace(msg))}
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxInternalBody)).Decode(out)
}

// refusedError is an answer of the internal API other than 200: the request
// was not executed.
type refusedError struct {
	status int
	msg    string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("engine: the leader answered %d: %s", e.status, e.msg)
}

// mayHaveArrived reports whether a failed call may have reached the
// leader's handler: everything but a refusal and a failure to connect.
func mayHaveArrived(err error) bool {
	var refused *refusedError
	var op *net.OpError
	return !errors.As(err, &refused) && !(errors.As(err, &op) && op.Op == "dial")
}

// readIndex asks the leader for a read index.
func (p *peers) readIndex(ctx context.Context) (uint64, error) {
	var rep reply
	if err := p.callLeader(ctx, readIndexTimeout, http.MethodGet, internalReadIndexPath, nil, &rep); err != nil {
		return 0, err
	}
	return rep.Index, fromWire(rep.Error)
}
