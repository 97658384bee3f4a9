package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/engine"
	"github.com/heraldhq/herald/signer"
)

// cli runs herald in-process and returns stdout, stderr and the exit code.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), exitCode(err)
}

// oneLine checks that stderr is exactly one "herald: …" line containing want.
func oneLine(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "herald: ") || !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want one line mentioning %q", stderr, want)
	}
}

func TestServeFlags(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	parse := func(t *testing.T, lookup func(string) (string, bool), args ...string) *serveConfig {
		t.Helper()
		var stderr bytes.Buffer
		cfg, err := parseServeFlags(args, lookup, &stderr)
		if err != nil {
			t.Fatalf("parseServeFlags(%q): %v (%s)", args, err, stderr.String())
		}
		return cfg
	}

	t.Run("defaults", func(t *testing.T) {
		cfg := parse(t, env())
		want := &serveConfig{dataDir: "./herald-data", httpAddr: "127.0.0.1:8080", raftAddr: "127.0.0.1:8090", nodeID: "node1",
			attemptTimeout: 15 * time.Second, overrideSignature: "v1a", logFormat: "text",
			maxInflight: 1024, breakerFailures: 10, breakerPeriod: time.Minute, disableAfter: 5 * 24 * time.Hour, metricsTop: 20}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("defaults = %+v, want %+v", cfg, want)
		}
	})
	t.Run("env then flag", func(t *testing.T) {
		lookup := env("HERALD_DATA_DIR", "/env/data", "HERALD_HTTP_ADDR", "127.0.0.1:9999", "HERALD_RAFT_ADDR", "127.0.0.1:9998",
			"HERALD_NODE_ID", "n2", "HERALD_PEERS", "n1=127.0.0.1:1,n2=127.0.0.1:2", "HERALD_API_TOKEN", "envtok")
		cfg := parse(t, lookup)
		if cfg.dataDir != "/env/data" || cfg.httpAddr != "127.0.0.1:9999" || cfg.raftAddr != "127.0.0.1:9998" ||
			cfg.nodeID != "n2" || cfg.apiToken != "envtok" || len(cfg.peers) != 2 {
			t.Errorf("from env: %+v", cfg)
		}
		cfg = parse(t, lookup, "--data-dir", "/flag/data", "--http-addr", "0.0.0.0:1", "--node-id", "n1", "--api-token", "flagtok")
		if cfg.dataDir != "/flag/data" || cfg.httpAddr != "0.0.0.0:1" || cfg.nodeID != "n1" || cfg.apiToken != "flagtok" {
			t.Errorf("flags must beat env: %+v", cfg)
		}
		if want := []engine.Peer{{ID: "n1", RaftAddr: "127.0.0.1:1"}, {ID: "n2", RaftAddr: "127.0.0.1:2"}}; !reflect.DeepEqual(cfg.peers, want) {
			t.Errorf("peers = %v", cfg.peers)
		}
	})
	t.Run("peer TLS and seal key", func(t *testing.T) {
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "seal.key")
		key := bytes.Repeat([]byte{0xa5}, 32)
		for name, content := range map[string][]byte{
			"raw":    key,
			"base64": []byte(base64.StdEncoding.EncodeToString(key) + "\n"),
			"hex":    []byte(hex.EncodeToString(key) + "\n"),
		} {
			if err := os.WriteFile(keyFile, content, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := parse(t, env("HERALD_PEER_TLS_CERT", "n1.pem", "HERALD_PEER_TLS_KEY", "n1-key.pem"),
				"--raft-addr", "10.0.0.1:8090", "--peer-tls-ca", "ca.pem", "--seal-key-file", keyFile)
			want := &engine.TLSFiles{CertFile: "n1.pem", KeyFile: "n1-key.pem", CAFile: "ca.pem"}
			if !reflect.DeepEqual(cfg.peerTLS, want) || !bytes.Equal(cfg.sealKey, key) {
				t.Errorf("%s: peer TLS %+v, seal key %x", name, cfg.peerTLS, cfg.sealKey)
			}
		}
		for name, content := range map[string][]byte{
			"short":      key[:31],
			"long text":  []byte(base64.StdEncoding.EncodeToString(append(key, 1))),
			"empty":      nil,
			"not base64": []byte("correct horse battery staple"),
		} {
			if err := os.WriteFile(keyFile, content, 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			if _, err := parseServeFlags([]string{"--seal-key-file", keyFile}, env(), &stderr); exitCode(err) != 2 ||
				!strings.Contains(err.Error(), "not a seal key") {
				t.Errorf("%s seal key: %v, want a usage error", name, err)
			}
		}
		if err := os.WriteFile(keyFile, key, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(keyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		if _, err := parseServeFlags([]string{"--seal-key-file", keyFile}, env(), &stderr); err == nil ||
			!strings.Contains(err.Error(), "too open") {
			t.Errorf("a seal key others may read: %v, want refused", err)
		}
	})
	t.Run("all flags", func(t *testing.T) {
		cfg := parse(t, env(), "--retry-schedule", "1s, 2s,500ms", "--attempt-timeout", "3s", "--override-signature", "jwt",
			"--public-url", "https://hooks.example.com", "--log-format", "json", "--log-level", "debug", "--allow-private-networks",
			"--max-inflight", "64", "--breaker-failures", "3", "--breaker-period", "30s", "--disable-after", "120h", "--metrics-top-endpoints", "0")
		if cfg.maxInflight != 64 || cfg.breakerFailures != 3 || cfg.breakerPeriod != 30*time.Second || cfg.disableAfter != 120*time.Hour || cfg.metricsTop != 0 {
			t.Errorf("health flags: %+v", cfg)
		}
		ec := cfg.engineConfig()
		if ec.MaxInflight != 64 || ec.BreakerFailures != 3 || ec.BreakerPeriod != 30*time.Second || ec.DisableAfter != 120*time.Hour {
			t.Errorf("engine config: %+v", ec)
		}
		if !reflect.DeepEqual(cfg.retrySchedule, []time.Duration{time.Second, 2 * time.Second, 500 * time.Millisecond}) ||
			cfg.attemptTimeout != 3*time.Second || cfg.overrideSignature != "jwt" || cfg.publicURL != "https://hooks.example.com" ||
			cfg.logFormat != "json" || cfg.logLevel != slog.LevelDebug || !cfg.allowPrivate {
			t.Errorf("flags: %+v", cfg)
		}
	})

	bad := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--retry-schedule", "1s,soon"}, nil, "soon"},
		{[]string{"--retry-schedule", "1s,-2s"}, nil, "-2s"},
		{[]string{"--attempt-timeout", "0s"}, nil, "attempt-timeout"},
		{[]string{"--max-inflight", "0"}, nil, "--max-inflight"},
		{[]string{"--max-inflight", "2000000"}, nil, "--max-inflight"},
		{[]string{"--breaker-failures", "-1"}, nil, "--breaker-failures"},
		{[]string{"--breaker-period", "0s"}, nil, "--breaker-period"},
		{[]string{"--disable-after", "-5h"}, nil, "--disable-after"},
		{[]string{"--disable-after", "5d"}, nil, "disable-after"},
		{[]string{"--metrics-top-endpoints", "-1"}, nil, "--metrics-top-endpoints"},
		{[]string{"--metrics-top-endpoints", "1001"}, nil, "--metrics-top-endpoints"},
		{[]string{"--override-signature", "hmac"}, nil, "override-signature"},
		{[]string{"--log-format", "xml"}, nil, "log-format"},
		{[]string{"--log-level", "verbose"}, nil, "log-level"},
		{[]string{"--log-level", "info+2"}, nil, "log-level"},
		{[]string{"--peers", "n1"}, nil, "peers"},
		{nil, []string{"HERALD_PEERS", "n1=nowhere"}, "peers"},
		{[]string{"--http-addr", "8080"}, nil, "http-addr"},
		{[]string{"--raft-addr", "localhost"}, nil, "raft-addr"},
		{[]string{"--public-url", "hooks.example.com"}, nil, "public-url"},
		{[]string{"--data-dir", ""}, nil, "data-dir"},
		{[]string{"extra"}, nil, "extra"},
		{[]string{"--http-addr", "0.0.0.0:8080"}, nil, "--api-token"},
		{nil, []string{"HERALD_HTTP_ADDR", "10.1.2.3:80"}, "--api-token"},
		{[]string{"--node-id", ""}, nil, "node-id"},
		{[]string{"--node-id", "n 1"}, nil, "node-id"},
		{[]string{"--raft-addr", "10.0.0.1:8090"}, nil, "without mutual TLS"},
		{[]string{"--raft-addr", "0.0.0.0:8090"}, nil, "--peer-tls-cert"},
		{nil, []string{"HERALD_RAFT_ADDR", "[2001:db8::1]:8090"}, "--peer-tls-cert"},
		{[]string{"--peer-tls-cert", "n1.pem", "--peer-tls-key", "n1-key.pem"}, nil, "all three"},
		{nil, []string{"HERALD_PEER_TLS_CA", "ca.pem"}, "all three"},
		{[]string{"--seal-key-file", "/no/such/file"}, nil, "--seal-key-file"},
	}
	for _, c := range bad {
		var stderr bytes.Buffer
		_, err := parseServeFlags(c.args, env(c.env...), &stderr)
		if exitCode(err) != 2 {
			t.Errorf("%q %q: exit %d (%v), want 2", c.args, c.env, exitCode(err), err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q does not mention %q", c.args, err, c.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:0": true, "localhost:80": true, "[::1]:80": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:80": false, "10.0.0.1:80": false, "example.com:80": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestServeRefusesPublicAddrWithoutToken: the token rule is checked before
// anything is opened.
func TestServeRefusesPublicAddrWithoutToken(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	dir := filepath.Join(t.TempDir(), "data")
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		_, stderr, code := cli(t, "serve", "--http-addr", addr, "--raft-addr", "127.0.0.1:0", "--data-dir", dir)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", addr, code)
		}
		oneLine(t, stderr, "without --api-token")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data dir was created: %v", err)
	}
}

func TestServeBadFlagsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--no-such-flag"},
		{"serve", "--attempt-timeout", "soon"},
		{"serve", "--retry-schedule", "x"},
	} {
		_, stderr, code := cli(t, args...)
		if code != 2 || strings.Contains(stderr, "goroutine") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestServePortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, stderr, code := cli(t, "serve", "--http-addr", ln.Addr().String(), "--raft-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	oneLine(t, stderr, "address already in use")
}

// logWatch is a goroutine-safe stderr for serve that reports the API
// address from its "listening" log line.
type logWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
	sent bool
}

var listeningLine = regexp.MustCompile(`msg=listening http_addr=(\S+)`)

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := listeningLine.FindSubmatch(w.buf.Bytes()); m != nil && !w.sent {
		w.sent = true
		w.addr <- string(m[1])
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// serveRun is a `herald serve` running in-process.
type serveRun struct {
	addr string // API host:port
	base string // API base URL, http://addr
	stop context.CancelFunc
	done chan struct{} // closed when run returns
	err  error         // run's result, once done is closed
	logs *logWatch
}

// wait cancels serve and returns run's result.
func (s *serveRun) wait(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case <-s.done:
		return s.err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after cancel")
		return nil
	}
}

// startServe runs `herald serve` in-process on free ports and returns once
// it logged its API address.
func startServe(t *testing.T, extra ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveRun{stop: cancel, done: make(chan struct{}), logs: &logWatch{addr: make(chan string, 1)}}
	args := append([]string{"serve", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
		"--attempt-timeout", "2s"}, extra...)
	var stdout bytes.Buffer
	go func() {
		s.err = run(ctx, args, &stdout, s.logs)
		close(s.done)
	}()
	t.Cleanup(func() {
		s.wait(t)
		if stdout.Len() > 0 {
			t.Errorf("serve wrote to stdout: %q", stdout.String())
		}
		t.Logf("serve logs:\n%s", s.logs.String())
	})
	select {
	case addr := <-s.logs.addr:
		s.addr, s.base = addr, "http://"+addr
		return s
	case <-s.done:
		t.Fatalf("serve exited early: %v\n%s", s.err, s.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not log its address:\n%s", s.logs.String())
	}
	return nil
}

// TestServeEndToEnd runs `herald serve`, drives it with the client
// commands, sees a signed delivery arrive, and stops it with ctx.
func TestServeEndToEnd(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_SERVER", "")
	rcv := newHook(t)
	srv := startServe(t, "--allow-private-networks", "--retry-schedule", "100ms,100ms", "--api-token", "tok")
	base, logs := srv.base, srv.logs
	if !strings.HasPrefix(logs.String(), "time=") || !strings.Contains(logs.String(), "raft_addr=127.0.0.1:") {
		t.Errorf("startup log line = %q", logs.String())
	}

	waitReady(t, http.DefaultClient, base) // before the first write
	out, stderr, code := cli(t, "cluster", "status", "--server", base, "--api-token", "tok")
	if code != 0 || !strings.Contains(out, `"leader": "node1"`) {
		t.Fatalf("cluster status: %d %s %s", code, out, stderr)
	}

	// Without the token, the CLI reports the API error in one line.
	_, stderr, code = cli(t, "endpoints", "list", "--server", base)
	if code != 1 {
		t.Errorf("no token: exit %d", code)
	}
	oneLine(t, stderr, "unauthorized: ")

	out, stderr, code = cli(t, "endpoints", "create", "--server", base, "--api-token", "tok", "--url", rcv.URL+"/hook", "--event-type", "batch.succeeded", "--name", "e2e")
	if code != 0 {
		t.Fatalf("endpoints create: exit %d: %s", code, stderr)
	}
	var ep struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(out), &ep); err != nil || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("endpoints create printed %q (%v)", out, err)
	}
	if !strings.Contains(out, "\n  \"id\"") {
		t.Errorf("output is not indented JSON: %q", out)
	}
	out, _, code = cli(t, "endpoints", "list", "--server", base, "--api-token", "tok")
	if code != 0 || !strings.Contains(out, ep.ID) || strings.Contains(out, ep.Secret) {
		t.Errorf("endpoints list: %d %s", code, out)
	}

	out, stderr, code = cli(t, "send", "--server", base, "--api-token", "tok", "--type", "batch.succeeded", "--data", `{"batch_id": "b1"}`, "--idempotency-key", "e2e-1")
	if code != 0 {
		t.Fatalf("send: exit %d: %s", code, stderr)
	}
	var msg struct{ ID, Status string }
	if err := json.Unmarshal([]byte(out), &msg); err != nil || !strings.HasPrefix(msg.ID, "msg_") || msg.Status != "pending" {
		t.Fatalf("send printed %q (%v)", out, err)
	}
	out, _, _ = cli(t, "send", "--server", base, "--api-token", "tok", "--type", "batch.succeeded", "--data", `{"batch_id": "b1"}`, "--idempotency-key", "e2e-1")
	if !strings.Contains(out, msg.ID) {
		t.Errorf("idempotent send printed %q, want id %s", out, msg.ID)
	}

	waitUntil(t, 10*time.Second, "the delivery", func() bool { return rcv.count() >= 1 })
	h := rcv.header(0)
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{ep.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	body := rcv.bodies[0]
	rcv.mu.Unlock()
	if err := v.Verify(h, body); err != nil || h.Get("webhook-id") != msg.ID {
		t.Errorf("delivery: id %q, verify: %v", h.Get("webhook-id"), err)
	}

	waitUntil(t, 10*time.Second, "succeeded status", func() bool {
		out, _, _ := cli(t, "messages", "get", msg.ID, "--server", base, "--api-token", "tok")
		return strings.Contains(out, `"status": "succeeded"`)
	})
	out, _, code = cli(t, "messages", "list", "--server", base, "--api-token", "tok", "--status", "succeeded", "--limit", "5")
	if code != 0 || !strings.Contains(out, msg.ID) {
		t.Errorf("messages list: %d %s", code, out)
	}
	out, _, code = cli(t, "messages", "retry", msg.ID, "--server", base, "--api-token", "tok")
	if code != 0 || !strings.Contains(out, `"requeued": 0`) {
		t.Errorf("messages retry: %d %s", code, out)
	}
	_, stderr, code = cli(t, "messages", "get", "msg_nope", "--server", base, "--api-token", "tok")
	if code != 1 {
		t.Errorf("missing message: exit %d", code)
	}
	oneLine(t, stderr, `not_found: message "msg_nope" not found`)

	if err := srv.wait(t); err != nil {
		t.Errorf("serve returned %v, want nil", err)
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Errorf("no stop log line")
	}
	// Stopped: the client cannot reach it.
	_, stderr, code = cli(t, "messages", "get", msg.ID, "--server", base, "--api-token", "tok")
	if code != 1 {
		t.Errorf("after stop: exit %d", code)
	}
	oneLine(t, stderr, "cannot reach "+base+": connection refused")
}
