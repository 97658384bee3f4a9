package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// heraldBin is the herald binary built once for the process-level tests.
var heraldBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	heraldBin = filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-o", heraldBin, "github.com/heraldhq/herald/cmd/herald")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building herald:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startTestCluster starts nodes herald serve processes and a receiver,
// registers the receiver as an endpoint, and returns a client that spreads
// its calls over every node. Everything stops when the test ends.
func startTestCluster(ctx context.Context, t *testing.T, nodes int) (*Cluster, *Receiver, *Client) {
	t.Helper()
	return startTestClusterConfig(ctx, t, ClusterConfig{Nodes: nodes})
}

// startTestClusterConfig is startTestCluster with a configuration; Binary
// and Dir are filled in.
func startTestClusterConfig(ctx context.Context, t *testing.T, cfg ClusterConfig) (*Cluster, *Receiver, *Client) {
	t.Helper()
	rc, err := NewReceiver(ReceiverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	cfg.Binary, cfg.Dir = heraldBin, t.TempDir()
	c, err := StartCluster(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	logOnFailure(t, c)
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.URL())
	}
	client := NewClient(urls, cfg.Token, 16)
	if _, _, err := client.CreateEndpoint(ctx, rc.URL()); err != nil {
		t.Fatal(err)
	}
	return c, rc, client
}

// logOnFailure prints every node's log when the test fails.
func logOnFailure(t *testing.T, c *Cluster) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range c.Nodes {
			t.Logf("--- %s log (%s):\n%s", n.ID, n.LogPath, tail(n.LogPath))
		}
	})
}
