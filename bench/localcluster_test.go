package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLocalClusterScript runs scripts/local-cluster.sh again and again on
// the same data dirs: waits for its three nodes to answer /readyz, sends
// SIGINT to the script's process group as a terminal's Ctrl-C does, and
// checks that every node stopped cleanly, its state file marked so, and
// that none was signalled twice. HERALD_LOCAL_CLUSTER_RUNS sets the number
// of runs (default 10: the double stop it guards against showed
// in 2 runs of 8).
func TestLocalClusterScript(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the script needs %s: %v", tool, err)
		}
	}
	runs := 10
	if s := os.Getenv("HERALD_LOCAL_CLUSTER_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("HERALD_LOCAL_CLUSTER_RUNS=%q", s)
		}
		runs = n
	}
	// A process started with SIGINT ignored (in the background of a
	// shell) passes that on, and bash cannot trap a signal ignored at its
	// start. Handling it here makes the script's SIGINT default again.
	if signal.Ignored(syscall.SIGINT) {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT)
		defer signal.Stop(c)
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "local-cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var httpPorts, raftPorts []string
	for range 3 {
		for _, ports := range []*[]string{&httpPorts, &raftPorts} {
			addr, err := freeAddr()
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(addr)
			*ports = append(*ports, port)
		}
	}
	env := append(childEnv(os.Environ(), ""), "HERALD_BIN="+heraldBin, "HERALD_CLUSTER_DIR="+dir,
		"HERALD_CLUSTER_HTTP_PORTS="+strings.Join(httpPorts, " "), "HERALD_CLUSTER_RAFT_PORTS="+strings.Join(raftPorts, " "))

	for run := 1; run <= runs; run++ {
		start := time.Now()
		out := runLocalCluster(t, script, env, httpPorts)
		if t.Failed() {
			t.Fatalf("run %d of %d, output:\n%s", run, runs, out)
		}
		for i := 1; i <= 3; i++ {
			session, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("n%d", i), "state.db.session"))
			if err != nil || string(session) != "clean" {
				t.Fatalf("run %d: n%d's state.db.session is %q (%v); output:\n%s", run, i, session, err, out)
			}
		}
		t.Logf("run %d of %d: clean in %v", run, runs, time.Since(start).Round(time.Millisecond))
		if run == 1 && testing.Verbose() {
			t.Logf("its output:\n%s", out)
		}
	}
}

var nodePids = regexp.MustCompile(`nodes: n1 pid (\d+), n2 pid (\d+), n3 pid (\d+)`)

// runLocalCluster runs the script once, interrupts it once its nodes are
// ready and returns its output, failing t if the cluster did not stop
// cleanly.
func runLocalCluster(t *testing.T, script string, env, httpPorts []string) string {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(script)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a job of its own, as a shell starts it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	defer func() { // on failure, leave nothing running
		if t.Failed() {
			syscall.Kill(-pgid, syscall.SIGKILL)
			if m := nodePids.FindStringSubmatch(out.String()); m != nil {
				for _, p := range m[1:] {
					pid, _ := strconv.Atoi(p)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for _, port := range httpPorts {
		for {
			resp, err := client.Get("http://127.0.0.1:" + port + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case err := <-exited:
				t.Errorf("the script exited before the nodes were ready: %v", err)
				return out.String()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Errorf("node on port %s not ready after 60s", port)
				return out.String()
			}
		}
	}
	// The pids, to check that the nodes are gone afterwards. The script
	// prints them once it sees the nodes ready, as this test just did.
	var pids []int
	for m := nodePids.FindStringSubmatch(out.String()); ; m = nodePids.FindStringSubmatch(out.String()) {
		if m != nil {
			for _, p := range m[1:] {
				pid, _ := strconv.Atoi(p)
				pids = append(pids, pid)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the script printed no pids")
			return out.String()
		}
		<-time.After(20 * time.Millisecond)
	}

	// Ctrl-C.
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the script: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("the script still runs 60s after SIGINT")
		return out.String()
	}
	s := out.String()
	if strings.Contains(s, "interrupted twice") {
		t.Errorf("a node was interrupted twice")
	}
	for i := 1; i <= 3; i++ {
		if !strings.Contains(s, fmt.Sprintf("n%d stopped cleanly\n", i)) {
			t.Errorf("n%d did not stop cleanly", i)
		}
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("n%d (pid %d) still runs after the script exited: %v", i+1, pid, err)
		}
	}
	return s
}
