package main

// Tests of the command line as its users meet it: the herald binary, built
// once in TestMain, run with os/exec against a real `herald serve` process
// (one, shared by the tests that need a server, each working in a tenant of
// its own).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// heraldBin is the herald binary built by TestMain.
var heraldBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	heraldBin = filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-o", heraldBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building herald:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	stopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binResult is what one run of the binary printed and its exit code.
type binResult struct {
	stdout, stderr string
	code           int
}

// runBin runs the herald binary with args and, of the environment, only
// what is not HERALD_* plus env ("KEY=value"): the developer's HERALD_SERVER
// or HERALD_OUTPUT must not change a test.
func runBin(t *testing.T, env []string, args ...string) binResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, heraldBin, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("herald %q: %v", args, err)
	}
	return binResult{stdout.String(), stderr.String(), code}
}

// cleanEnv is the process environment without HERALD_* variables, plus env.
func cleanEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// ok checks that a run exited 0 with nothing on stderr, and returns stdout.
func (r binResult) ok(t *testing.T, what string) string {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%s: exit %d, stderr %q, stdout %q", what, r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// failsWith checks that a run exited code with nothing on stdout and one
// "herald: " line on stderr containing each of want.
func (r binResult) failsWith(t *testing.T, what string, code int, want ...string) {
	t.Helper()
	if r.code != code || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "herald: ") {
		t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and one herald: line", what, r.code, r.stdout, r.stderr, code)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: stderr %q does not mention %q", what, r.stderr, w)
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// The shared server: one herald serve process with an admin token, started
// by the first test that needs it and stopped by TestMain.
const sharedToken = "cli-test-admin-token"

var shared struct {
	once sync.Once
	base string // API base URL
	err  error
	cmd  *exec.Cmd
	dir  string
	mu   sync.Mutex
	logs strings.Builder
}

var listeningAddr = regexp.MustCompile(`msg=listening http_addr=(\S+)`)

// server returns the shared serve's base URL, starting it if need be.
func server(t *testing.T) string {
	t.Helper()
	shared.once.Do(startShared)
	if shared.err != nil {
		t.Fatalf("herald serve: %v\n%s", shared.err, sharedLogs())
	}
	return shared.base
}

func sharedLogs() string {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.logs.String()
}

func startShared() {
	shared.dir, shared.err = os.MkdirTemp("", "herald-cli-data-")
	if shared.err != nil {
		return
	}
	cmd := exec.Command(heraldBin, "serve", "--data-dir", filepath.Join(shared.dir, "data"),
		"--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0",
		"--allow-private-networks", "--retry-schedule", "100ms,100ms", "--attempt-timeout", "5s")
	cmd.Env = cleanEnv("HERALD_API_TOKEN=" + sharedToken)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		shared.err = err
		return
	}
	if err := cmd.Start(); err != nil {
		shared.err = err
		return
	}
	shared.cmd = cmd
	addr := make(chan string, 1)
	go func() { // reads the log to the end, reporting the API's address once
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			shared.mu.Lock()
			shared.logs.WriteString(sc.Text() + "\n")
			shared.mu.Unlock()
			if m := listeningAddr.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			shared.err = fmt.Errorf("exited before listening")
			return
		}
		shared.base = "http://" + a
	case <-time.After(30 * time.Second):
		shared.err = fmt.Errorf("did not log its address within 30s")
		return
	}
	// Ready: a leader, caught up.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(shared.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			shared.err = fmt.Errorf("not ready within 20s")
			return
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// stopShared ends the shared serve, if it was started: SIGINT, then
// SIGKILL if it has not exited within 20 s; then removes its data.
func stopShared() {
	if shared.cmd != nil {
		shared.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { shared.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			shared.cmd.Process.Kill()
			<-done
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// admin is the environment of a client command run as the admin against
// the shared server.
func admin(t *testing.T) []string {
	return []string{"HERALD_SERVER=" + server(t), "HERALD_API_TOKEN=" + sharedToken}
}

// receiver is a loopback webhook receiver: /ok answers 204, /fail 500.
func receiver(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// decodeOut parses a command's JSON output.
func decodeOut[T any](t *testing.T, what, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: output is not the expected JSON (%v):\n%s", what, err, out)
	}
	return v
}

// cliEndpoint is an endpoint as the commands print it.
type cliEndpoint struct {
	ID            string   `json:"id"`
	Tenant        string   `json:"tenant"`
	URL           string   `json:"url"`
	Name          string   `json:"name"`
	EventTypes    []string `json:"event_types"`
	State         string   `json:"state"`
	RateLimitPerS int      `json:"rate_limit_per_s"`
	Secret        string   `json:"secret"`
}

// table is one aligned table of a command's output: its header cells and
// its rows, cut at the header's column starts.
type table struct {
	header []string
	rows   [][]string
}

var headerCell = regexp.MustCompile(`\S+( \S+)*`)

// parseTables reads the tables of a --output table output, separated by
// blank lines. Cells are cut where the header's cells start, so that they
// may hold single spaces; whitespace is not compared exactly.
func parseTables(t *testing.T, out string) []table {
	t.Helper()
	var tables []table
	for _, block := range strings.Split(strings.TrimRight(out, "\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		idx := headerCell.FindAllStringIndex(lines[0], -1)
		var tb table
		var starts []int
		for _, ix := range idx {
			tb.header = append(tb.header, lines[0][ix[0]:ix[1]])
			starts = append(starts, len([]rune(lines[0][:ix[0]])))
		}
		for _, line := range lines[1:] {
			r := []rune(line)
			var cells []string
			for i, s := range starts {
				end := len(r)
				if i+1 < len(starts) && starts[i+1] < end {
					end = starts[i+1]
				}
				if s > len(r) {
					cells = append(cells, "")
					continue
				}
				if i > 0 && s > 0 && r[s-1] != ' ' {
					t.Errorf("a cell runs into column %q: %q", tb.header[i], line)
				}
				cells = append(cells, strings.TrimSpace(string(r[s:end])))
			}
			tb.rows = append(tb.rows, cells)
		}
		tables = append(tables, tb)
	}
	return tables
}

// col returns a row's cell in the column named name.
func (tb table) col(t *testing.T, row []string, name string) string {
	t.Helper()
	i := slices.Index(tb.header, name)
	if i < 0 {
		t.Fatalf("no column %q in %q", name, tb.header)
	}
	return row[i]
}

// find returns the row whose first cell is key.
func (tb table) find(t *testing.T, key string) []string {
	t.Helper()
	for _, r := range tb.rows {
		if r[0] == key {
			return r
		}
	}
	t.Fatalf("no row %q in the table %q %q", key, tb.header, tb.rows)
	return nil
}

// allCommands lists every command and sub-command by name ("endpoints
// update"), groups included.
func allCommands() []string {
	var names []string
	for name, cmd := range commands {
		names = append(names, name)
		for _, sub := range cmd.order {
			names = append(names, name+" "+sub)
		}
	}
	slices.Sort(names)
	return names
}

// oneDash finds a flag written with one dash at the start of a help line
// or after a space: " -data-dir", "  -h".
var oneDash = regexp.MustCompile(`(^|[\s(\[|])-[a-z][a-z-]*`)

// TestCLIHelp: every command's help, from 'herald help CMD' (stdout) and
// 'herald CMD --help' or '-h' (stderr), exits 0, names flags with two
// dashes, lists the environment variables they read and has examples.
func TestCLIHelp(t *testing.T) {
	for _, name := range allCommands() {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			args := strings.Fields(name)
			help := runBin(t, nil, append([]string{"help"}, args...)...).ok(t, "herald help "+name)
			if !strings.HasPrefix(help, "Usage: herald "+name+" ") {
				t.Errorf("herald help %s does not start with its usage line:\n%s", name, help)
			}
			for _, section := range []string{"\nExamples:\n  herald ", "\n  herald " + name} {
				if !strings.Contains(help, section) {
					t.Errorf("herald help %s has no %q:\n%s", name, section, help)
				}
			}
			beforeExamples, _, _ := strings.Cut(help, "\nExamples:\n") // examples may run other programs: date -u
			for _, line := range strings.Split(beforeExamples, "\n") {
				if m := oneDash.FindString(line); m != "" {
					t.Errorf("herald help %s: a flag with one dash (%q) in %q", name, strings.TrimSpace(m), line)
				}
			}
			if cmd, ok := commands[name]; ok && cmd.subs != nil && !strings.Contains(help, "\nCommands:\n") {
				t.Errorf("herald help %s lists no commands:\n%s", name, help)
			}
			// A client command says where it connects and from which variables.
			if strings.Contains(help, "\n  --server URL") {
				for _, v := range []string{"HERALD_SERVER", "HERALD_API_TOKEN", "HERALD_API_TOKEN_FILE", "HERALD_CA_CERT"} {
					if !regexp.MustCompile(`\n  ` + v + ` +--`).MatchString(help) {
						t.Errorf("herald help %s: %s is not under Environment:\n%s", name, v, help)
					}
				}
			}
			for _, flag := range []string{"--help", "-h"} {
				r := runBin(t, nil, append(args, flag)...)
				if r.code != 0 || r.stdout != "" || r.stderr != help {
					t.Errorf("herald %s %s: exit %d, stdout %q; stderr differs from herald help's stdout:\n%s", name, flag, r.code, r.stdout, r.stderr)
				}
			}
		})
	}
	t.Run("top", func(t *testing.T) {
		t.Parallel()
		help := runBin(t, nil, "help").ok(t, "herald help")
		for _, name := range []string{"serve", "endpoints", "signing-keys", "--output", "HERALD_OUTPUT=table", "HERALD_SERVER"} {
			if !strings.Contains(help, name) {
				t.Errorf("herald help does not mention %q:\n%s", name, help)
			}
		}
		if r := runBin(t, nil, "--help"); r.code != 0 || r.stderr != help {
			t.Errorf("herald --help: exit %d, stderr %q", r.code, r.stderr)
		}
		if r := runBin(t, nil); r.code != 2 || !strings.HasPrefix(r.stderr, "Usage: herald") ||
			!strings.HasSuffix(r.stderr, "herald: no command given (see 'herald help')\n") {
			t.Errorf("herald: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestCLIUsageErrors: an unknown command or flag, or a bad value, is one
// line on stderr naming flags with two dashes and pointing at the help;
// exit 2.
func TestCLIUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the whole line, or a part
	}{
		{[]string{"frobnicate"}, `herald: unknown command "frobnicate" (see 'herald help')` + "\n"},
		{[]string{"endpoint"}, `herald: unknown command "endpoint" (did you mean "endpoints"? see 'herald help')` + "\n"},
		{[]string{"help", "frobnicate"}, `herald: unknown command "frobnicate" (see 'herald help')` + "\n"},
		{[]string{"endpoints", "frobnicate"}, `herald: endpoints: unknown command "frobnicate" (see 'herald help endpoints')` + "\n"},
		{[]string{"endpoints", "updte", "ep_1"}, `did you mean "update"?`},
		{[]string{"send", "--data"}, "herald: flag needs an argument: --data (see 'herald send --help')\n"},
		{[]string{"send", "--bogus"}, "herald: unknown flag --bogus (see 'herald send --help')\n"},
		{[]string{"send", "-tyep", "a.b"}, "herald: unknown flag --tyep (did you mean --type?) (see 'herald send --help')\n"},
		{[]string{"messages", "list", "--limit", "many"}, `herald: invalid value "many" for flag --limit: want a whole number (see 'herald messages list --help')` + "\n"},
		{[]string{"serve", "--attempt-timeout", "soon"}, "--attempt-timeout: want a duration"},
		{[]string{"endpoints", "list", "--output", "yaml"}, `herald: --output "yaml": want json or table` + "\n"},
		{[]string{"endpoints", "update", "ep_1"}, "nothing to change: give --url, --event-type, --all-events, --name or --rate-limit"},
		{[]string{"endpoints", "update", "ep_1", "--event-type", "a", "--all-events"}, "--event-type and --all-events"},
		{[]string{"endpoints", "update"}, "missing ID"},
		{[]string{"endpoints", "enable"}, "missing ID"},
		{[]string{"endpoints", "enable", "ep_1", "--recover-since", "yesterday"}, "--recover-since \"yesterday\" is not an RFC 3339 time"},
		{[]string{"endpoints", "disable", "ep_1", "--recover-since", "2026-03-01T00:00:00Z"}, "unknown flag --recover-since"},
		{[]string{"endpoints", "disable", "ep_1", "ep_2"}, `unexpected argument "ep_2"`},
		{[]string{"signing-keys", "rotate", "now"}, `unexpected argument "now"`},
		{[]string{"signing-keys", "rotate", "--tenant", "acme"}, "unknown flag --tenant"},
	} {
		r := runBin(t, nil, c.args...)
		r.failsWith(t, strings.Join(c.args, " "), 2, c.want)
		if strings.HasSuffix(c.want, "\n") && r.stderr != c.want {
			t.Errorf("%q: stderr %q, want %q", c.args, r.stderr, c.want)
		}
	}
	// HERALD_OUTPUT is checked like --output, and named.
	runBin(t, []string{"HERALD_OUTPUT=yaml"}, "tenants", "list").failsWith(t, "HERALD_OUTPUT=yaml", 2, `HERALD_OUTPUT="yaml": want json or table`)
}

// TestCLIServerErrors: a failed call is one line that says what to do:
// which flags carry the token, which name the server, that a 503 is worth
// retrying.
func TestCLIServerErrors(t *testing.T) {
	base := server(t)
	// 401 from herald serve: its message names the flags already; the CLI
	// does not repeat them.
	for _, token := range []string{"", "wrong-token"} {
		r := runBin(t, []string{"HERALD_SERVER=" + base, "HERALD_API_TOKEN=" + token}, "endpoints", "list")
		r.failsWith(t, "a 401 with token "+token, 1, "unauthorized: ", "--api-token", "HERALD_API_TOKEN")
		if n := strings.Count(r.stderr, "--api-token,"); n != 1 {
			t.Errorf("a 401: the token flags are named %d times: %q", n, r.stderr)
		}
	}
	// An unreachable server: its URL, and the flag and variable that set it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	runBin(t, []string{"HERALD_SERVER=" + closed}, "cluster", "status").
		failsWith(t, "an unreachable server", 1, "cannot reach "+closed+": connection refused", "--server", "HERALD_SERVER")
	runBin(t, nil, "messages", "list", "--server", closed).
		failsWith(t, "an unreachable --server", 1, "cannot reach "+closed)

	// Answers herald serve gives rarely, from a stand-in: a 401 whose
	// message names no flag, a 503, a 500, a 404 of something else.
	var mu sync.Mutex
	status, answer := 0, ""
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(answer, "{") {
			w.Header().Set("Content-Type", "application/json")
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	defer fake.Close()
	for _, c := range []struct {
		status int
		answer string
		token  string
		want   []string
	}{
		{401, `{"error": {"code": "unauthorized", "message": "missing bearer token"}}`, "",
			[]string{"unauthorized: missing bearer token (no token was sent: pass the API token with --api-token, --api-token-file or HERALD_API_TOKEN)"}},
		{401, `{"error": {"code": "unauthorized", "message": "invalid bearer token"}}`, "t",
			[]string{"invalid bearer token (the token was refused: check --api-token, --api-token-file or HERALD_API_TOKEN)"}},
		{503, `{"error": {"code": "unavailable", "message": "no leader"}}`, "",
			[]string{"unavailable: no leader (retry in 1s, on this or any other node"}},
		{503, `{"error": {"code": "unavailable", "message": "no leader; retry"}}`, "",
			[]string{"no leader; retry\n"}},
		{500, `{"error": {"code": "internal", "message": "internal error"}}`, "",
			[]string{"internal: internal error (the details are in the server's log)"}},
		{404, "404 page not found", "",
			[]string{"HTTP 404: 404 page not found (not an answer of Herald's API: is --server the URL of a herald serve?)"}},
	} {
		mu.Lock()
		status, answer = c.status, c.answer
		mu.Unlock()
		runBin(t, []string{"HERALD_SERVER=" + fake.URL, "HERALD_API_TOKEN=" + c.token}, "messages", "get", "msg_1").
			failsWith(t, fmt.Sprintf("a %d", c.status), 1, c.want...)
	}
}

// TestCLIEndpointsUpdate: endpoints update sends only the flags given,
// --all-events clears the event types, enable and disable set the state,
// and all of them act in --tenant.
func TestCLIEndpointsUpdate(t *testing.T) {
	env := append(admin(t), "HERALD_TENANT=cli-update")
	rcv := receiver(t)
	out := runBin(t, env, "endpoints", "create", "--url", rcv+"/ok", "--event-type", "a.one", "--name", "first").ok(t, "endpoints create")
	ep := decodeOut[cliEndpoint](t, "endpoints create", out)
	if ep.Tenant != "cli-update" {
		t.Fatalf("endpoints create with HERALD_TENANT: tenant %q", ep.Tenant)
	}

	update := func(args ...string) cliEndpoint {
		t.Helper()
		out := runBin(t, env, append([]string{"endpoints", "update", ep.ID}, args...)...).ok(t, "endpoints update "+strings.Join(args, " "))
		return decodeOut[cliEndpoint](t, "endpoints update", out)
	}
	got := update("--name", "renamed")
	if got.Name != "renamed" || got.URL != rcv+"/ok" || !slices.Equal(got.EventTypes, []string{"a.one"}) || got.RateLimitPerS != 0 {
		t.Errorf("update --name changed more than the name: %+v", got)
	}
	got = update("--url", rcv+"/moved", "--event-type", "b.one", "--event-type", "b.two", "--rate-limit", "7")
	if got.Name != "renamed" || got.URL != rcv+"/moved" || !slices.Equal(got.EventTypes, []string{"b.one", "b.two"}) || got.RateLimitPerS != 7 {
		t.Errorf("update --url --event-type… --rate-limit: %+v", got)
	}
	got = update("--all-events", "--rate-limit", "0", "--name", "")
	if len(got.EventTypes) != 0 || got.RateLimitPerS != 0 || got.Name != "" || got.URL != rcv+"/moved" {
		t.Errorf("update --all-events --rate-limit 0 --name '': %+v", got)
	}

	out = runBin(t, env, "endpoints", "disable", ep.ID).ok(t, "endpoints disable")
	if got := decodeOut[cliEndpoint](t, "endpoints disable", out); got.State != "disabled" || got.ID != ep.ID {
		t.Errorf("endpoints disable: %+v", got)
	}
	tb := parseTables(t, runBin(t, env, "endpoints", "get", ep.ID, "--output", "table").ok(t, "endpoints get --output table"))
	if row := tb[0].find(t, ep.ID); tb[0].col(t, row, "STATE") != "disabled" || tb[0].col(t, row, "EVENT TYPES") != "*" {
		t.Errorf("endpoints get --output table after disable: %q", row)
	}
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	out = runBin(t, env, "endpoints", "enable", ep.ID, "--recover-since", since).ok(t, "endpoints enable --recover-since")
	if got := decodeOut[cliEndpoint](t, "endpoints enable", out); got.State != "enabled" {
		t.Errorf("endpoints enable: %+v", got)
	}

	// The endpoint is cli-update's: the default tenant's routes do not find it.
	for _, cmd := range [][]string{{"update", ep.ID, "--name", "x"}, {"disable", ep.ID}, {"enable", ep.ID}} {
		runBin(t, admin(t), append([]string{"endpoints"}, cmd...)...).failsWith(t, "endpoints "+cmd[0]+" without the tenant", 1, "not_found")
	}
	// A bad value is the server's invalid_argument, exit 1.
	runBin(t, env, "endpoints", "update", ep.ID, "--url", "ftp://example.com").failsWith(t, "update --url ftp://", 1, "invalid_argument")
}

// TestCLISigningKeys: signing-keys rotate publishes a new key next to the
// old one, which signing-keys list shows.
func TestCLISigningKeys(t *testing.T) {
	env := admin(t)
	type jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	kids := func(set jwks) []string {
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.Kid)
		}
		return out
	}
	before := kids(decodeOut[jwks](t, "signing-keys list", runBin(t, env, "signing-keys", "list").ok(t, "signing-keys list")))
	after := kids(decodeOut[jwks](t, "signing-keys rotate", runBin(t, env, "signing-keys", "rotate").ok(t, "signing-keys rotate")))
	if len(before) == 0 || len(after) <= len(before) {
		t.Fatalf("signing keys: %q before the rotation, %q after", before, after)
	}
	for _, k := range before {
		if !slices.Contains(after, k) {
			t.Errorf("the rotation unpublished key %s at once: %q", k, after)
		}
	}
	listed := kids(decodeOut[jwks](t, "signing-keys list", runBin(t, env, "signing-keys", "list").ok(t, "signing-keys list")))
	if !slices.Equal(listed, after) {
		t.Errorf("signing-keys list after the rotation: %q, want %q", listed, after)
	}
	// Rotating is the admin's: without the token, one line.
	runBin(t, []string{"HERALD_SERVER=" + server(t)}, "signing-keys", "rotate").failsWith(t, "rotate without a token", 1, "unauthorized")
}

// TestCLITables: --output table (or HERALD_OUTPUT=table) on the commands
// people read lists with: aligned columns with a header, one row per item.
func TestCLITables(t *testing.T) {
	const tenant = "cli-tables"
	env := append(admin(t), "HERALD_TENANT="+tenant)
	rcv := receiver(t)
	good := decodeOut[cliEndpoint](t, "create", runBin(t, env, "endpoints", "create", "--url", rcv+"/ok", "--name", "good receiver").ok(t, "create"))
	bad := decodeOut[cliEndpoint](t, "create", runBin(t, env, "endpoints", "create", "--url", rcv+"/fail", "--event-type", "t.a",
		"--event-type", "t.b", "--rate-limit", "50").ok(t, "create"))

	tb := parseTables(t, runBin(t, env, "endpoints", "list", "--output", "table").ok(t, "endpoints list --output table"))
	if len(tb) != 1 || !slices.Equal(tb[0].header, []string{"ID", "STATE", "BREAKER", "URL", "EVENT TYPES", "RATE LIMIT", "NAME", "CREATED"}) || len(tb[0].rows) != 2 {
		t.Fatalf("endpoints list --output table: %+v", tb)
	}
	for _, c := range []struct {
		ep                       cliEndpoint
		url, types, rate, epName string
	}{
		{good, rcv + "/ok", "*", "-", "good receiver"},
		{bad, rcv + "/fail", "t.a,t.b", "50/s", "-"},
	} {
		row := tb[0].find(t, c.ep.ID)
		if tb[0].col(t, row, "URL") != c.url || tb[0].col(t, row, "EVENT TYPES") != c.types || tb[0].col(t, row, "RATE LIMIT") != c.rate ||
			tb[0].col(t, row, "NAME") != c.epName || tb[0].col(t, row, "STATE") != "enabled" || tb[0].col(t, row, "BREAKER") != "closed" {
			t.Errorf("endpoints list row %q, want url %s, types %s, rate %s, name %s", row, c.url, c.types, c.rate, c.epName)
		}
		if _, err := time.Parse(time.RFC3339, tb[0].col(t, row, "CREATED")); err != nil {
			t.Errorf("CREATED is not RFC 3339: %v", err)
		}
	}

	// A message to both: one delivery succeeds at once, the other fails
	// three times (--retry-schedule 100ms,100ms).
	msg := decodeOut[struct{ ID string }](t, "send", runBin(t, env, "send", "--type", "t.a", "--data", `{"n": 1}`).ok(t, "send"))
	eventually(t, 20*time.Second, "the message to finish", func() bool {
		out := runBin(t, env, "messages", "get", msg.ID).ok(t, "messages get")
		return !strings.Contains(out, `"status": "pending"`)
	})
	second := decodeOut[struct{ ID string }](t, "send", runBin(t, env, "send", "--type", "t.other").ok(t, "send"))
	eventually(t, 20*time.Second, "the second message to be delivered", func() bool {
		out := runBin(t, env, "messages", "get", second.ID).ok(t, "messages get")
		return strings.Contains(out, `"status": "succeeded"`)
	})

	tb = parseTables(t, runBin(t, append(env, "HERALD_OUTPUT=table"), "messages", "get", msg.ID).ok(t, "messages get with HERALD_OUTPUT=table"))
	if len(tb) != 3 {
		t.Fatalf("messages get --output table: %d tables, want the message, deliveries and attempts: %+v", len(tb), tb)
	}
	fields := map[string]string{tb[0].header[0]: tb[0].header[1]}
	for _, r := range tb[0].rows {
		fields[r[0]] = r[1]
	}
	if fields["MESSAGE"] != msg.ID || fields["TYPE"] != "t.a" || fields["TENANT"] != tenant || fields["STATUS"] != "failed" {
		t.Errorf("messages get: the message's table %q", fields)
	}
	deliveries, attempts := tb[1], tb[2]
	if !slices.Equal(deliveries.header, []string{"DELIVERY", "ENDPOINT", "URL", "STATUS", "ATTEMPTS", "NEXT ATTEMPT", "LAST RESULT"}) || len(deliveries.rows) != 2 {
		t.Fatalf("messages get: deliveries %+v", deliveries)
	}
	byEndpoint := map[string][]string{}
	for _, r := range deliveries.rows {
		byEndpoint[deliveries.col(t, r, "ENDPOINT")] = r
	}
	okRow, failRow := byEndpoint[good.ID], byEndpoint[bad.ID]
	if okRow == nil || failRow == nil {
		t.Fatalf("messages get: deliveries by endpoint %q", byEndpoint)
	}
	if deliveries.col(t, okRow, "STATUS") != "succeeded" || deliveries.col(t, okRow, "ATTEMPTS") != "1" || deliveries.col(t, okRow, "LAST RESULT") != "204" {
		t.Errorf("the good delivery: %q", okRow)
	}
	if deliveries.col(t, failRow, "STATUS") != "failed" || deliveries.col(t, failRow, "ATTEMPTS") != "3" ||
		deliveries.col(t, failRow, "LAST RESULT") != "500" || deliveries.col(t, failRow, "NEXT ATTEMPT") != "-" {
		t.Errorf("the failing delivery: %q", failRow)
	}
	if !slices.Equal(attempts.header, []string{"DELIVERY", "ATTEMPT", "AT", "STATUS CODE", "DURATION", "ERROR"}) || len(attempts.rows) != 4 {
		t.Fatalf("messages get: attempts %+v", attempts)
	}
	failID := deliveries.col(t, failRow, "DELIVERY")
	n := 0
	for _, r := range attempts.rows {
		if _, err := time.Parse(time.RFC3339, attempts.col(t, r, "AT")); err != nil {
			t.Errorf("attempt AT %q: %v", attempts.col(t, r, "AT"), err)
		}
		if r[0] == failID {
			n++
			if attempts.col(t, r, "ATTEMPT") != fmt.Sprint(n) || attempts.col(t, r, "STATUS CODE") != "500" {
				t.Errorf("failed attempt %d: %q", n, r)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d attempts of the failing delivery, want 3: %q", n, attempts.rows)
	}

	tb = parseTables(t, runBin(t, env, "messages", "list", "--output", "table").ok(t, "messages list --output table"))
	if len(tb) != 1 || !slices.Equal(tb[0].header, []string{"ID", "TYPE", "STATUS", "CREATED"}) || len(tb[0].rows) != 2 ||
		tb[0].rows[0][0] != second.ID || tb[0].rows[1][0] != msg.ID || tb[0].col(t, tb[0].rows[1], "STATUS") != "failed" {
		t.Errorf("messages list --output table: %+v", tb)
	}
	// A page: the cursor of the next one, in a last line.
	out := runBin(t, env, "messages", "list", "--limit", "1", "--output", "table").ok(t, "messages list --limit 1")
	if tables := parseTables(t, out); len(tables[0].rows) != 1 || !strings.HasSuffix(out, "\nmore: add --after "+second.ID+"\n") {
		t.Errorf("messages list --limit 1 --output table:\n%s", out)
	}
	// JSON stays the default.
	if out := runBin(t, env, "messages", "list").ok(t, "messages list"); !strings.HasPrefix(out, "{\n") {
		t.Errorf("messages list without --output: %q", out)
	}

	tb = parseTables(t, runBin(t, admin(t), "tenants", "list", "--output", "table").ok(t, "tenants list --output table"))
	if len(tb) != 1 || !slices.Equal(tb[0].header, []string{"TENANT", "ENDPOINTS", "PENDING DELIVERIES", "MESSAGES", "TOKENS"}) {
		t.Fatalf("tenants list --output table: %+v", tb)
	}
	if row := tb[0].find(t, tenant); !slices.Equal(row, []string{tenant, "2", "0", "2", "0"}) {
		t.Errorf("tenants list: %s's row %q, want 2 endpoints, 0 pending, 2 messages, 0 tokens", tenant, row)
	}

	tb = parseTables(t, runBin(t, admin(t), "cluster", "status", "--output", "table").ok(t, "cluster status --output table"))
	if len(tb) != 2 || !slices.Equal(tb[1].header, []string{"NODE", "STATE", "REACHABLE", "RAFT ADDR", "API ADDR"}) || len(tb[1].rows) != 1 {
		t.Fatalf("cluster status --output table: %+v", tb)
	}
	fields = map[string]string{tb[0].header[0]: tb[0].header[1]}
	for _, r := range tb[0].rows {
		fields[r[0]] = r[1]
	}
	node := tb[1].rows[0]
	if fields["LEADER"] != "node1" || fields["TERM"] == "" || node[0] != "node1" || tb[1].col(t, node, "STATE") != "leader" ||
		tb[1].col(t, node, "REACHABLE") != "yes" || "http://"+tb[1].col(t, node, "API ADDR") != server(t) {
		t.Errorf("cluster status --output table: %q %q", fields, node)
	}
}
