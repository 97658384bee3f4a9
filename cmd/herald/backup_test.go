package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
)

// apiJSON calls a running serve's API and decodes its JSON answer.
func apiJSON(t *testing.T, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, out
}

// TestBackupRestore takes a backup of a node with a sealed secret, a
// pending delivery and an idempotency key, restores it into a fresh data
// dir and starts a new node there: the delivery is made when it falls due,
// signed with the secret the endpoint was created with; the idempotency
// key and the signing keys are the same.
func TestBackupRestore(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_SERVER", "")
	dir := t.TempDir()
	sealKey := filepath.Join(dir, "seal.key")
	keyLine, _, _ := cli(t, "keygen", "seal")
	if err := os.WriteFile(sealKey, []byte(keyLine), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--allow-private-networks", "--retry-schedule", "3s", "--seal-key-file", sealKey}
	rcv := newHook(t)
	rcv.setStatus(http.StatusServiceUnavailable)

	a := startServe(t, flags...)
	waitReady(t, http.DefaultClient, a.base)
	_, ep := apiJSON(t, "POST", a.base+"/v1/endpoints", `{"url": "`+rcv.URL+`/hook"}`)
	secret, _ := ep["secret"].(string)
	status, msg := apiJSON(t, "POST", a.base+"/v1/messages", `{"type": "job.done", "data": {"n": 1}}`, "Idempotency-Key", "job-1")
	if status != http.StatusAccepted || secret == "" {
		t.Fatalf("enqueue: %d %v; endpoint %v", status, msg, ep)
	}
	id := msg["id"].(string)
	var due string
	waitUntil(t, 10*time.Second, "the first attempt to fail", func() bool {
		_, m := apiJSON(t, "GET", a.base+"/v1/messages/"+id, "")
		d := m["deliveries"].([]any)[0].(map[string]any)
		due, _ = d["next_attempt_at"].(string)
		return d["attempt_count"].(float64) == 1 && due != ""
	})
	_, jwksBefore := apiJSON(t, "GET", a.base+"/.well-known/jwks.json", "")

	backup := filepath.Join(dir, "herald.backup")
	if out, stderr, code := cli(t, "backup", "--out", backup, "--server", a.base); code != 0 || !strings.HasPrefix(out, "wrote "+backup) {
		t.Fatalf("backup: exit %d, %q %q", code, out, stderr)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi, err)
	}
	if _, stderr, code := cli(t, "backup", "--out", backup, "--server", a.base); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("a second backup over the first: exit %d, %q", code, stderr)
	}
	if err := a.wait(t); err != nil {
		t.Fatal(err)
	}

	restored := filepath.Join(dir, "restored")
	if out, stderr, code := cli(t, "restore", "--data-dir", restored, backup); code != 0 || !strings.Contains(out, "herald serve --data-dir "+restored) {
		t.Fatalf("restore: exit %d, %q %q", code, out, stderr)
	}
	if _, stderr, code := cli(t, "restore", "--data-dir", restored, backup); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Errorf("restore into a used dir: exit %d, %q", code, stderr)
	}
	rcv.setStatus(http.StatusNoContent)
	b := startServe(t, append(flags, "--data-dir", restored)...)
	waitReady(t, http.DefaultClient, b.base)
	var m map[string]any
	waitUntil(t, 20*time.Second, "the restored delivery to succeed", func() bool {
		_, m = apiJSON(t, "GET", b.base+"/v1/messages/"+id, "")
		return m["status"] == "succeeded"
	})
	d := m["deliveries"].([]any)[0].(map[string]any)
	attempts := d["attempts"].([]any)
	second, _ := attempts[len(attempts)-1].(map[string]any)["at"].(string)
	if d["attempt_count"].(float64) != 2 || parseTime(t, second).Before(parseTime(t, due)) {
		t.Errorf("delivery after restore: %d attempts, the last at %s; want 2, the second not before its due time %s",
			int(d["attempt_count"].(float64)), second, due)
	}
	last := rcv.count() - 1
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	body := rcv.bodies[last]
	rcv.mu.Unlock()
	if err := v.Verify(rcv.header(last), body); err != nil {
		t.Errorf("the restored node's delivery does not verify with the endpoint's secret: %v", err)
	}
	if status, again := apiJSON(t, "POST", b.base+"/v1/messages", `{"type": "job.done", "data": {"n": 1}}`, "Idempotency-Key", "job-1"); status != http.StatusOK || again["id"] != id {
		t.Errorf("the idempotency key after restore: %d %v, want 200 with %s", status, again, id)
	}
	if _, jwksAfter := apiJSON(t, "GET", b.base+"/.well-known/jwks.json", ""); !jsonEqual(jwksBefore, jwksAfter) {
		t.Errorf("JWKS after restore %v, want %v", jwksAfter, jwksBefore)
	}
}

// waitReady waits until a serve answers /readyz.
func waitReady(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	waitUntil(t, 10*time.Second, "readiness of "+base, func() bool {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func parseTime(t *testing.T, s string) time.Time {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
