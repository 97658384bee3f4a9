package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestStandardWebhooksReceiverVerifiesEveryDelivery sends messages through
// a real herald serve to a receiver written with the npm standardwebhooks
// package, which answers 401 to any signature it cannot verify, and checks
// that every delivery was verified at the first attempt — across a secret
// rotation too.
func TestStandardWebhooksReceiverVerifiesEveryDelivery(t *testing.T) {
	interop, err := filepath.Abs("../testdata/interop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(interop, "node_modules", "standardwebhooks")); err != nil {
		t.Fatalf("interop npm packages are not installed: run `npm ci --prefix testdata/interop` from the repository root (%v)", err)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("this test needs Node.js 20+ on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, ClusterConfig{Binary: heraldBin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	logOnFailure(t, c)
	client := NewClient([]string{c.Nodes[0].URL()}, "", 4)

	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	epID, secret, err := client.CreateEndpoint(ctx, "http://"+addr+"/hooks")
	if err != nil {
		t.Fatal(err)
	}
	recv := exec.CommandContext(ctx, nodeBin, "receiver.mjs", addr, secret)
	recv.Dir, recv.Stderr = interop, os.Stderr
	out, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { recv.Process.Kill(); recv.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("receiver did not start: %q %v", line, err)
	}

	const total = 40
	var ids []string
	for i := range total {
		if i == total/2 {
			// Rotate: the receiver keeps the old secret, which stays live
			// for 24 h, so every attempt must still carry a token for it.
			if _, err := client.call(ctx, 0, http.MethodPost, "/v1/endpoints/"+epID+"/rotate-secret", nil, []byte(`{}`), nil); err != nil {
				t.Fatal(err)
			}
		}
		body := fmt.Appendf(nil, `{"type":"video.rendered","data":{"n":%d,"title":"Zoë ✓ \"quoted\" <tag> \u2028","nested":{"a":[1,2.5,null,true]}}}`, i)
		id, err := client.Send(ctx, 0, fmt.Sprintf("interop-%d", i), body)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var counts struct {
		Verified []string `json:"verified"`
		Rejected int      `json:"rejected"`
	}
	for len(counts.Verified)+counts.Rejected < total {
		if ctx.Err() != nil {
			t.Fatalf("only %d verified and %d rejected of %d deliveries", len(counts.Verified), counts.Rejected, total)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
		resp, err := http.Get("http://" + addr + "/counts")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&counts)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if counts.Rejected != 0 || len(counts.Verified) != total {
		t.Fatalf("standardwebhooks verified %d and rejected %d of %d deliveries", len(counts.Verified), counts.Rejected, total)
	}
	for _, id := range ids {
		if !slices.Contains(counts.Verified, id) {
			t.Fatalf("message %s was not among the verified deliveries", id)
		}
	}
}
