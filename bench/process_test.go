package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestAPITokenStaysOffTheCommandLine starts a node with an API token and
// checks that the token protects the API and that the node's command line,
// which every user can read (ps, /proc/PID/cmdline), does not hold it.
func TestAPITokenStaysOffTheCommandLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const token = "bench-token-7f3a9c"
	t.Setenv("HERALD_API_TOKEN_FILE", "/nonexistent") // an inherited variable must not reach the node
	c, _, client := startTestClusterConfig(ctx, t, ClusterConfig{Nodes: 1, Token: token})
	if _, err := c.Leader(ctx); err != nil { // Leader calls /v1/cluster with the token
		t.Fatal(err)
	}
	anon := &Client{URLs: client.URLs, HTTP: client.HTTP}
	if status, err := anon.do(ctx, 0, http.MethodGet, "/v1/endpoints", nil, nil, nil); status != http.StatusUnauthorized {
		t.Errorf("GET /v1/endpoints without the token: %d, %v", status, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.Pid(0)))
	if err != nil {
		t.Skip("no /proc to read the command line from:", err)
	}
	if bytes.Contains(cmdline, []byte(token)) {
		t.Errorf("the token is on the node's command line: %q", bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
}
