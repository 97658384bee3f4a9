package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/heraldhq/herald/cluster"
)

// ClusterConfig describes the herald serve processes to start.
type ClusterConfig struct {
	// Binary is the herald executable.
	Binary string
	// Nodes is 1 or 3. Defaults to 1.
	Nodes int
	// Dir holds each node's data dir and log file. Required.
	Dir string
	// Args are extra flags for every node, e.g. --retry-schedule.
	Args []string
	// Token, if set, is the API token. It reaches the nodes in their
	// HERALD_API_TOKEN environment variable, which only their user can
	// read, rather than as --api-token, which ps shows to everyone.
	Token string
	// Debug gives every node a --debug-addr (pprof) on a free port.
	Debug bool
	// PeerTLS puts every node's peer port (Raft and the node-to-node API)
	// under mutual TLS: StartCluster creates a CA and a certificate for
	// each node, nodes added later included, in Dir (see Cluster.PeerCA and
	// Node.PeerTLS).
	PeerTLS bool
}

// Node is one herald serve process.
type Node struct {
	ID       string
	HTTPAddr string
	RaftAddr string
	DataDir  string
	LogPath  string
	// DebugAddr serves pprof when ClusterConfig.Debug is set.
	DebugAddr string
	// PeerTLS names the node's peer TLS files (its certificate, for
	// 127.0.0.1, and the cluster's CA) when ClusterConfig.PeerTLS is set.
	PeerTLS *cluster.TLSFiles

	mu   sync.Mutex // guards cmd, done
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the node's API base URL.
func (n *Node) URL() string { return "http://" + n.HTTPAddr }

// Cluster is a set of herald serve processes.
type Cluster struct {
	cfg   ClusterConfig
	Nodes []*Node
	peers string
	// PeerCA is the CA that signs the nodes' peer certificates when
	// ClusterConfig.PeerTLS is set, else nil.
	PeerCA *CAFiles
}

// StartCluster starts the nodes and waits until every one is ready.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 1
	}
	c := &Cluster{cfg: cfg}
	if cfg.PeerTLS {
		var err error
		if c.PeerCA, err = newCA(cfg.Dir); err != nil {
			return nil, err
		}
	}
	var peers []string
	for i := 0; i < cfg.Nodes; i++ {
		n, err := c.newNode()
		if err != nil {
			return nil, err
		}
		peers = append(peers, n.ID+"="+n.RaftAddr)
	}
	c.peers = strings.Join(peers, ",")
	for i := range c.Nodes {
		if err := c.Start(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for i := range c.Nodes {
		if err := c.WaitReady(ctx, i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// newNode adds a node with free ports to c.Nodes, without starting it.
func (c *Cluster) newNode() (*Node, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	raftAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("n%d", len(c.Nodes)+1)
	n := &Node{ID: id, HTTPAddr: httpAddr, RaftAddr: raftAddr,
		DataDir: filepath.Join(c.cfg.Dir, id), LogPath: filepath.Join(c.cfg.Dir, id+".log")}
	if c.cfg.Debug {
		if n.DebugAddr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if c.PeerCA != nil {
		if n.PeerTLS, err = c.IssuePeerCert(id); err != nil {
			return nil, err
		}
	}
	c.Nodes = append(c.Nodes, n)
	return n, nil
}

// StartExtra starts one more node with the original --peers, which do not
// list it: it does not bootstrap and waits to be added (cluster join). With
// ClusterConfig.PeerTLS it gets a certificate of the cluster's CA like the
// others. It returns the node's index.
func (c *Cluster) StartExtra() (int, error) {
	if _, err := c.newNode(); err != nil {
		return -1, err
	}
	i := len(c.Nodes) - 1
	return i, c.Start(i)
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Start (re)starts node i on its data dir, appending to its log.
func (c *Cluster) Start(i int) error {
	n := c.Nodes[i]
	args := []string{"serve", "--node-id", n.ID, "--data-dir", n.DataDir, "--http-addr", n.HTTPAddr,
		"--raft-addr", n.RaftAddr, "--peers", c.peers, "--allow-private-networks", "--log-format", "json"}
	if n.PeerTLS != nil {
		args = append(args, "--peer-tls-cert", n.PeerTLS.CertFile, "--peer-tls-key", n.PeerTLS.KeyFile,
			"--peer-tls-ca", n.PeerTLS.CAFile)
	}
	if n.DebugAddr != "" {
		args = append(args, "--debug-addr", n.DebugAddr)
	}
	args = append(args, c.cfg.Args...)
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = childEnv(os.Environ(), c.cfg.Token)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("bench: start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	return nil
}

// childEnv returns the environment of a node: this process's, without any
// HERALD_ variable (serve reads them, and the nodes' configuration is what
// ClusterConfig says), with GOMAXPROCS=2 and the API token, if any.
func childEnv(env []string, token string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HERALD_") {
			out = append(out, kv)
		}
	}
	out = append(out, "GOMAXPROCS=2")
	if token != "" {
		out = append(out, "HERALD_API_TOKEN="+token)
	}
	return out
}

// Kill sends SIGKILL to node i and waits for it to exit.
func (c *Cluster) Kill(i int) error { return c.Nodes[i].signal(syscall.SIGKILL, 10*time.Second) }

// Terminate sends SIGTERM to node i and waits for a clean exit.
func (c *Cluster) Terminate(i int) error { return c.Nodes[i].signal(syscall.SIGTERM, 60*time.Second) }

func (n *Node) signal(sig syscall.Signal, wait time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	if sig != syscall.SIGKILL {
		resume(cmd.Process) // a paused node acts on sig only once continued
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("bench: %s did not exit within %v of %v", n.ID, wait, sig)
	}
}

// Running reports whether node i's process is alive.
func (c *Cluster) Running(i int) bool {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Pid returns node i's process id.
func (c *Cluster) Pid(i int) int {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Stop terminates every node, gracefully where it can.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for i := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Nodes[i].signal(syscall.SIGTERM, 20*time.Second); err != nil {
				c.Nodes[i].signal(syscall.SIGKILL, 5*time.Second)
			}
		}()
	}
	wg.Wait()
}

var probe = &http.Client{Timeout: 2 * time.Second}

// WaitReady polls node i's /readyz until it answers 200 or ctx ends.
func (c *Cluster) WaitReady(ctx context.Context, i int) error {
	n := c.Nodes[i]
	for {
		if !c.Running(i) {
			return fmt.Errorf("bench: %s exited; see %s:\n%s", n.ID, n.LogPath, tail(n.LogPath))
		}
		resp, err := probe.Get(n.URL() + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: %s not ready: %w; log:\n%s", n.ID, ctx.Err(), tail(n.LogPath))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Leader asks the running nodes who leads and returns its index.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	for {
		for i, n := range c.Nodes {
			if !c.Running(i) {
				continue
			}
			var st struct {
				Leader string `json:"leader"`
			}
			if err := getJSON(ctx, n.URL()+"/v1/cluster", c.cfg.Token, &st); err != nil || st.Leader == "" {
				continue
			}
			for j, m := range c.Nodes {
				if m.ID == st.Leader && c.Running(j) {
					return j, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return -1, errors.New("bench: no leader among the running nodes")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func getJSON(ctx context.Context, url, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := probe.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// tail returns the last few KiB of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}
