package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/engine"
)

// testRunner is a job runner serving on a loopback port, in process.
type testRunner struct {
	url string
	app *app
	srv *http.Server
}

// startJobRunner opens a job runner on dir and serves it until stop, or
// the end of the test.
func startJobRunner(t *testing.T, dir, overrideSignature string) *testRunner {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	a, err := openApp(ctx, config{DataDir: dir, AllowPrivateNetworks: true, OverrideSignature: overrideSignature,
		PublicURL: url, Logger: log, HeraldLogger: log.With("component", "herald")})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	jr := &testRunner{url: url, app: a, srv: &http.Server{Handler: a.handler()}}
	go jr.srv.Serve(ln)
	t.Cleanup(func() { jr.stop(t) })
	return jr
}

// stop stops the job runner as a SIGTERM would; stopping again does nothing.
func (jr *testRunner) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := jr.srv.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := jr.app.close(ctx); err != nil {
		t.Error(err)
	}
}

// do sends a request to the job runner, in project unless that is empty,
// and returns the status and the decoded JSON answer.
func (jr *testRunner) do(t *testing.T, method, path, project, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, jr.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if project != "" {
		req.Header.Set("x-project", project)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, answer
}

// call is do for a request that must succeed.
func (jr *testRunner) call(t *testing.T, method, path, project, body string) map[string]any {
	t.Helper()
	code, answer := jr.do(t, method, path, project, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s = %d %v, want 200", method, path, code, answer)
	}
	return answer
}

// fail is do for a request that must fail with code, the message
// mentioning each of mention.
func (jr *testRunner) fail(t *testing.T, method, path, project, body string, code int, mention ...string) {
	t.Helper()
	got, answer := jr.do(t, method, path, project, body)
	e, _ := answer["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if got != code || e["code"] != float64(code) {
		t.Fatalf("%s %s %s = %d %v, want %d", method, path, body, got, answer, code)
	}
	for _, m := range mention {
		if !strings.Contains(msg, m) {
			t.Errorf("%s %s %s: message %q does not mention %q", method, path, body, msg, m)
		}
	}
}

// createWebhook registers a webhook in project and returns its id and
// secret.
func (jr *testRunner) createWebhook(t *testing.T, project, body string) (id, secret string) {
	t.Helper()
	wh := jr.call(t, "POST", "/v1beta/webhooks", project, body)
	name, _ := wh["name"].(string)
	secret, _ = wh["new_signing_secret"].(string)
	if !strings.HasPrefix(name, "webhooks/ep_") || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("created webhook %v: want a name webhooks/ep_… and a whsec_ secret", wh)
	}
	return strings.TrimPrefix(name, "webhooks/"), secret
}

// delivered waits until the job has handed its event to Herald and Herald
// has delivered it to every destination, and returns the message.
func (jr *testRunner) delivered(t *testing.T, jobID string) *engine.Message {
	t.Helper()
	var j job
	waitFor(t, "the event of job "+jobID, func() bool {
		j, _ = jr.app.jobs.get(jobID)
		return j.MessageID != ""
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := jr.app.engine.WaitDelivered(ctx, j.Project, j.MessageID)
	if err != nil {
		t.Fatalf("message %s of job %s: %v", j.MessageID, jobID, err)
	}
	for _, d := range m.Deliveries {
		if d.Status != engine.StatusSucceeded {
			t.Fatalf("message %s of job %s: delivery to %s %s", m.ID, jobID, d.URL, d.Status)
		}
	}
	return m
}

// lastSegment returns the id at the end of a resource name.
func lastSegment(name any) string {
	s, _ := name.(string)
	return s[strings.LastIndex(s, "/")+1:]
}

// waitFor polls until cond holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// receiver is testdata/interop/jobreceiver.mjs, a webhook receiver in Node
// that verifies every request with the npm standardwebhooks package (v1),
// Node's crypto (v1a) or jose (JWT), against a job runner's JWKS for the
// last two. The tests share one, each under paths of its own.
type receiver struct {
	url      string
	cmd      *exec.Cmd
	prefixes sync.Map // *testing.T → its paths' prefix
	runs     atomic.Int64
}

// check says how the receiver verifies the requests to a path: with an
// HMAC secret, or against a JWKS.
type check struct {
	Secret string `json:"secret,omitempty"`
	JWKS   string `json:"jwks,omitempty"`
}

// arrival is a request the receiver got, and its verdict.
type arrival struct {
	Path      string `json:"path"`
	WebhookID string `json:"webhook_id"`
	Scheme    string `json:"scheme"` // v1, v1a or jwt
	Valid     bool   `json:"valid"`
	Error     string `json:"error"`
	Body      string `json:"body"`
}

// event is the body of a webhook.
type event struct {
	Type         string          `json:"type"`
	Data         map[string]any  `json:"data"`
	UserMetadata json.RawMessage `json:"user_metadata"`
}

func (a arrival) event(t *testing.T) event {
	t.Helper()
	var e event
	if err := json.Unmarshal([]byte(a.Body), &e); err != nil {
		t.Fatalf("webhook body %q: %v", a.Body, err)
	}
	return e
}

var shared struct {
	once sync.Once
	rc   *receiver
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if rc := shared.rc; rc != nil {
		rc.cmd.Process.Kill()
		rc.cmd.Wait()
	}
	os.Exit(code)
}

// theReceiver returns the shared receiver, starting it on first use.
func theReceiver(t *testing.T) *receiver {
	t.Helper()
	shared.once.Do(func() { shared.rc, shared.err = startReceiver() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.rc
}

// startReceiver starts the Node receiver on a free loopback port.
func startReceiver() (*receiver, error) {
	interop := filepath.Join("..", "..", "testdata", "interop")
	for _, pkg := range []string{"standardwebhooks", "jose"} {
		if _, err := os.Stat(filepath.Join(interop, "node_modules", pkg)); err != nil {
			return nil, fmt.Errorf("the interop npm packages are not installed: run `npm ci --prefix testdata/interop` from the repository root (%v)", err)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("these tests need Node.js 20+ on PATH: %v", err)
	}
	cmd := exec.Command(node, "jobreceiver.mjs", "127.0.0.1:0")
	cmd.Dir, cmd.Stderr = interop, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stdout := bufio.NewReader(out)
	line, err := stdout.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the receiver did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout) // what it prints for people
	return &receiver{url: "http://" + addr, cmd: cmd}, nil
}

// path returns a path of the test's own on the receiver: under a prefix
// that no other test, nor another run of the test (-count), uses.
func (rc *receiver) path(t *testing.T, name string) string {
	prefix, ok := rc.prefixes.Load(t)
	if !ok {
		prefix, _ = rc.prefixes.LoadOrStore(t, fmt.Sprintf("/%s-%d", t.Name(), rc.runs.Add(1)))
	}
	return prefix.(string) + "/" + name
}

// set tells the receiver how to verify the requests to each path.
func (rc *receiver) set(t *testing.T, checks map[string]check) {
	t.Helper()
	body, _ := json.Marshal(checks)
	resp, err := http.Post(rc.url+"/_paths", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("configuring the receiver: %s", resp.Status)
	}
}

// arrivals returns what the receiver got on path, oldest first.
func (rc *receiver) arrivals(t *testing.T, path string) []arrival {
	t.Helper()
	resp, err := http.Get(rc.url + "/_received")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all, out []arrival
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.Path == path {
			out = append(out, a)
		}
	}
	return out
}

// only returns the one arrival on path, failing the test unless there is
// exactly one and the receiver verified it as signed with scheme.
func (rc *receiver) only(t *testing.T, path, scheme string) arrival {
	t.Helper()
	got := rc.arrivals(t, path)
	if len(got) != 1 {
		t.Fatalf("%s received %d webhooks, want 1: %+v", path, len(got), got)
	}
	if a := got[0]; !a.Valid || a.Scheme != scheme {
		t.Fatalf("%s received a webhook the receiver did not verify as %s: %+v", path, scheme, a)
	}
	return got[0]
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
