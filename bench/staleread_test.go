package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"
)

// TestPausedLeaderNeverAnswersStale freezes the leader of a three-node
// cluster with SIGSTOP, as a long GC pause or a suspended VM would, lets the
// other two elect a new leader and acknowledge messages, then continues the
// old leader while readers, whose first requests already wait in its
// sockets, read every acknowledged message through it. The old leader
// believes it leads until it hears of the new term; its store has none of
// the messages. It may answer 503 but never 404: a read is answered only
// after a quorum confirms leadership, or after catching up with the real
// leader. Several rounds, each pausing the current leader.
func TestPausedLeaderNeverAnswersStale(t *testing.T) {
	if !canPause {
		t.Skip("pausing a process needs SIGSTOP")
	}
	const (
		// With the check that confirms leadership removed, the stale
		// answers come in the first milliseconds after SIGCONT, before
		// the old leader learns of the new term, and a round catches
		// them more than half the time: eight rounds miss with odds
		// under 1%.
		rounds   = 8
		messages = 40 // acknowledged per round while the old leader is frozen
		readers  = 16
		// readFor bounds a round's reads: the old leader must catch up
		// within it (it takes well under a second).
		readFor = 20 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, _, client := startTestCluster(ctx, t, 3)

	for round := range rounds {
		old := awaitLeader(ctx, t, c, -1)
		rd := newReaders(ctx, t, c.Nodes[old].URL(), readers, readFor)
		if err := c.Pause(old); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		next := awaitLeader(ctx, t, c, old)
		elected := time.Since(paused)

		// Acknowledged through the new leader while the old one is frozen.
		ids := make([]string, messages)
		writer := &Client{URLs: []string{c.Nodes[next].URL()}, HTTP: client.HTTP}
		var wg sync.WaitGroup
		errs := make(chan error, messages)
		for k := range messages {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var msg struct {
					ID string `json:"id"`
				}
				key := http.Header{"Idempotency-Key": {fmt.Sprintf("paused-%d-%d", round, k)}}
				status, err := writer.call(ctx, 0, http.MethodPost, "/v1/messages", key, []byte(`{"type":"job.done","data":{}}`), &msg)
				if err == nil && status != http.StatusAccepted {
					err = fmt.Errorf("POST /v1/messages answered %d", status)
				}
				ids[k] = msg.ID
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}

		r := rd.read(ctx, t, ids, func() error { return c.Resume(old) })
		if r.stale > 0 {
			t.Errorf("round %d: %d reads of acknowledged messages answered 404 by the old leader %s (first %v after SIGCONT)",
				round, r.stale, c.Nodes[old].ID, r.firstStale.Round(time.Millisecond))
		}
		if r.other > 0 {
			t.Errorf("round %d: %d reads failed otherwise: %s", round, r.other, r.otherExample)
		}
		if r.unread > 0 {
			t.Errorf("round %d: %d of %d messages never read through the old leader within %v", round, r.unread, messages, readFor)
		}
		t.Logf("round %d: %s paused, %s elected %v later, %d acknowledged; after SIGCONT %d reads through %s: %d × 200, %d × 503, %d × 404; first 200 after %v",
			round, c.Nodes[old].ID, c.Nodes[next].ID, elected.Round(time.Millisecond), messages, r.reads, c.Nodes[old].ID,
			r.ok, r.unavailable, r.stale, r.firstOK.Round(time.Millisecond))
		if r.fresh > 0 {
			t.Logf("round %d: %d of %d first reads went out on a new connection", round, r.fresh, readers)
		}
		if t.Failed() {
			return
		}
		if err := c.WaitReady(ctx, old); err != nil {
			t.Fatal(err)
		}
	}
}

// readResult counts the reads of one round.
type readResult struct {
	reads, ok, unavailable, stale, other int
	unread                               int // messages never read with 200
	fresh                                int // first reads not on the warmed connection
	firstOK, firstStale                  time.Duration
	otherExample                         string
}

// readers read messages through one node, each on its own connection.
type readers struct {
	url     string
	clients []*http.Client
	readFor time.Duration
}

// newReaders returns n readers of the node at url, each with an open
// connection that the node has accepted: a request sent on it while the
// node is paused is read as soon as the node runs, with no accept first,
// which gives the reads the best chance to race the node's discovery that
// it was deposed.
func newReaders(ctx context.Context, t *testing.T, url string, n int, readFor time.Duration) *readers {
	t.Helper()
	r := &readers{url: url, readFor: readFor}
	for range n {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: readFor}
		t.Cleanup(hc.CloseIdleConnections)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.clients = append(r.clients, hc)
	}
	return r
}

// read has every reader send its first read of ids to the paused node,
// calls resume once all are written (they wait in the node's sockets),
// and reads until every id was answered 200 once or readFor passed.
func (r *readers) read(ctx context.Context, t *testing.T, ids []string, resume func() error) readResult {
	t.Helper()
	var (
		mu      sync.Mutex // guards res, read, left, resumed
		res     readResult
		read    = make([]bool, len(ids))
		left    = len(ids)
		resumed time.Time
	)
	allRead := make(chan struct{})
	stop := make(chan struct{})
	var written sync.WaitGroup // each reader's first request
	written.Add(len(r.clients))
	var wg sync.WaitGroup
	for g, hc := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once, wrote sync.Once
			trace := &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) {
					once.Do(func() {
						if !info.Reused {
							mu.Lock()
							res.fresh++
							mu.Unlock()
						}
					})
				},
				WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Do(written.Done) },
			}
			for n := g; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				k := n % len(ids)
				rctx := ctx
				if n == g {
					rctx = httptrace.WithClientTrace(ctx, trace)
				}
				req, _ := http.NewRequestWithContext(rctx, http.MethodGet, r.url+"/v1/messages/"+ids[k], nil)
				resp, err := hc.Do(req)
				wrote.Do(written.Done) // a request that failed unwritten must not hold up the resume
				status := 0
				var body []byte
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				since := time.Since(resumed)
				res.reads++
				switch {
				case status == http.StatusOK && messageID(body) == ids[k]:
					res.ok++
					if res.ok == 1 {
						res.firstOK = since
					}
					if !read[k] {
						read[k] = true
						if left--; left == 0 {
							close(allRead)
						}
					}
				case status == http.StatusServiceUnavailable:
					res.unavailable++
				case status == http.StatusNotFound:
					res.stale++
					if res.stale == 1 {
						res.firstStale = since
					}
				default:
					res.other++
					if res.otherExample == "" {
						res.otherExample = fmt.Sprintf("GET %s: %d %s %v", ids[k], status, body, err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	waitGroup(ctx, t, &written)
	mu.Lock()
	resumed = time.Now()
	mu.Unlock()
	if err := resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-allRead:
	case <-time.After(r.readFor):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	res.unread = left
	return res
}

// messageID returns the id of a message as GET /v1/messages/{id} shows it.
func messageID(body []byte) string {
	var m struct {
		ID string `json:"id"`
	}
	json.Unmarshal(body, &m)
	return m.ID
}

// waitGroup waits for wg or fails the test when ctx ends.
func waitGroup(ctx context.Context, t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("readers did not start:", ctx.Err())
	}
}

// awaitLeader waits until every node but skip (-1: none) names the same
// leader, not skip, and returns its index. It polls GET /v1/cluster, which
// shows each node's own view.
func awaitLeader(ctx context.Context, t *testing.T, c *Cluster, skip int) int {
	t.Helper()
	for {
		leader := ""
		for i, n := range c.Nodes {
			if i == skip {
				continue
			}
			var st clusterView
			err := getJSON(ctx, n.URL()+"/v1/cluster", c.cfg.Token, &st)
			if err != nil || st.Leader == "" || (skip >= 0 && st.Leader == c.Nodes[skip].ID) || (leader != "" && st.Leader != leader) {
				leader = ""
				break
			}
			leader = st.Leader
		}
		for i, n := range c.Nodes {
			if leader != "" && n.ID == leader {
				return i
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the nodes do not agree on a leader:", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
