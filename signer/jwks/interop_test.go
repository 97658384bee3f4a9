package jwks_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/signer/jwks"
)

// These tests check Herald against implementations it did not write: the
// standardwebhooks and jose npm packages and Node's own crypto, driven
// through testdata/interop/interop.mjs. They need Node 20+ and the pinned
// packages (npm ci --prefix testdata/interop); without them they fail rather
// than skip, so CI cannot pass silently without the interop checks.

var interopDir = filepath.Join("..", "..", "testdata", "interop")

// interopBody has non-ASCII bytes to catch any re-encoding of the body.
var interopBody = []byte(`{"type":"batch.succeeded","version":"v1","data":{"name":"Zoë ✓","n":1}}`)

// node runs one interop operation: req goes in as JSON (Body as base64, by
// encoding/json's []byte rule) and the JSON answer is decoded into resp.
func node(t *testing.T, op string, req map[string]any, resp any) error {
	t.Helper()
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "jose")); err != nil {
		t.Fatalf("interop npm packages are not installed: run `npm ci --prefix testdata/interop` from the repository root (%v)", err)
	}
	bin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("interop tests need Node.js 20+ on PATH: %v", err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "interop.mjs", op)
	cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr = interopDir, bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, exited := err.(*exec.ExitError); !exited {
			t.Fatalf("node %s: %v", op, err)
		}
		return fmt.Errorf("node %s: %s", op, bytes.TrimSpace(stderr.Bytes()))
	}
	if resp != nil {
		if err := json.Unmarshal(stdout.Bytes(), resp); err != nil {
			t.Fatalf("node %s: bad answer %q: %v", op, stdout.Bytes(), err)
		}
	}
	return nil
}

func TestInteropStandardWebhooksNPM(t *testing.T) {
	oldSecret, newSecret := signer.GenerateHMACSecret(), signer.GenerateHMACSecret()
	now := time.Now()
	ts := now.Unix()
	req := func(secret string, extra map[string]any) map[string]any {
		r := map[string]any{"secret": secret, "id": "msg_interop", "timestamp": strconv.FormatInt(ts, 10), "body": interopBody}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}

	// Herald signs during a rotation; a receiver holding either secret accepts.
	s, err := signer.NewHMAC(oldSecret, newSecret)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := s.Sign("msg_interop", now, interopBody)
	for _, secret := range []string{oldSecret, newSecret} {
		if err := node(t, "sw-verify", req(secret, map[string]any{"signature": sig}), nil); err != nil {
			t.Errorf("standardwebhooks rejected Herald's signature: %v", err)
		}
	}
	// Control: the harness can fail.
	if err := node(t, "sw-verify", req(oldSecret, map[string]any{"signature": sig, "body": []byte("{}")}), nil); err == nil {
		t.Error("standardwebhooks accepted a tampered body")
	}

	// standardwebhooks signs; Herald verifies.
	var signed struct{ Signature string }
	if err := node(t, "sw-sign", map[string]any{"secret": newSecret, "id": "msg_interop", "timestamp": ts, "body": interopBody}, &signed); err != nil {
		t.Fatal(err)
	}
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{oldSecret, newSecret}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyValues("msg_interop", strconv.FormatInt(ts, 10), signed.Signature, interopBody); err != nil {
		t.Errorf("Herald rejected standardwebhooks' signature %q: %v", signed.Signature, err)
	}
}

func TestInteropEd25519NodeCrypto(t *testing.T) {
	now := time.Now()
	ts := now.Unix()
	priv, pub := signer.GenerateEd25519()
	key, _ := signer.ParsePrivateKey(priv)
	s, _ := signer.NewEd25519(key)
	sig, _ := s.Sign("msg_interop", now, interopBody)
	req := map[string]any{"publicKey": pub, "id": "msg_interop", "timestamp": ts, "signature": "v1,ignored " + sig, "body": interopBody}
	if err := node(t, "ed-verify", req, nil); err != nil {
		t.Errorf("Node crypto rejected Herald's v1a signature: %v", err)
	}
	req["body"] = []byte("{}")
	if err := node(t, "ed-verify", req, nil); err == nil {
		t.Error("Node crypto accepted a tampered body")
	}

	var signed struct{ PublicKey, Signature string }
	if err := node(t, "ed-sign", map[string]any{"id": "msg_interop", "timestamp": ts, "body": interopBody}, &signed); err != nil {
		t.Fatal(err)
	}
	nodeKey, err := signer.ParsePublicKey(signed.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := signer.NewVerifier(signer.VerifierConfig{PublicKeys: []ed25519.PublicKey{nodeKey}})
	if err := v.VerifyValues("msg_interop", strconv.FormatInt(ts, 10), signed.Signature, interopBody); err != nil {
		t.Errorf("Herald rejected Node's v1a signature: %v", err)
	}
}

func TestInteropJOSE(t *testing.T) {
	const issuer, audience = "https://herald.example.com", "https://receiver.example.com/hook"
	rsaKey, err := jwks.GenerateRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	_, edPub := signer.GenerateEd25519()
	edKey, _ := signer.ParsePublicKey(edPub)
	doc, err := jwks.Marshal(&rsaKey.PublicKey, edKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	defer srv.Close()

	// Herald signs; jose verifies against Herald's JWKS URL.
	js, err := jwks.NewJWTSigner(rsaKey, issuer)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	token, _ := js.Sign(audience, "msg_interop", now, interopBody)
	req := map[string]any{"jwksURL": srv.URL, "token": token, "audience": audience, "issuer": issuer, "id": "msg_interop", "body": interopBody}
	var verified struct {
		Kid         string
		Thumbprints []struct{ Kid, Thumbprint string }
	}
	if err := node(t, "jose-verify", req, &verified); err != nil {
		t.Fatalf("jose rejected Herald's JWT: %v", err)
	}
	if kid, _ := jwks.KeyID(&rsaKey.PublicKey); verified.Kid != kid {
		t.Errorf("JWT kid = %q, want %q", verified.Kid, kid)
	}
	if len(verified.Thumbprints) != 2 {
		t.Fatalf("jose saw %d keys, want 2", len(verified.Thumbprints))
	}
	for _, k := range verified.Thumbprints {
		if k.Kid != k.Thumbprint {
			t.Errorf("kid %q is not jose's RFC 7638 thumbprint %q", k.Kid, k.Thumbprint)
		}
	}
	for field, bad := range map[string]any{"audience": "https://evil.example.com/", "id": "msg_other", "body": []byte("{}")} {
		tampered := map[string]any{}
		for k, v := range req {
			tampered[k] = v
		}
		tampered[field] = bad
		if err := node(t, "jose-verify", tampered, nil); err == nil {
			t.Errorf("jose accepted Herald's JWT with a different %s", field)
		}
	}

	// jose signs with its own key and JWKS; Herald verifies.
	var signed struct{ JWKS, Token string }
	if err := node(t, "jose-sign", map[string]any{"id": "msg_interop", "timestamp": now.Unix(), "audience": audience, "issuer": issuer, "body": interopBody}, &signed); err != nil {
		t.Fatal(err)
	}
	set, err := jwks.Parse([]byte(signed.JWKS))
	if err != nil {
		t.Fatalf("Herald cannot parse jose's JWKS: %v", err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	if err := set.Verify("msg_interop", ts, signed.Token, interopBody, jwks.VerifyConfig{Audience: audience}); err != nil {
		t.Errorf("Herald rejected jose's JWT: %v", err)
	}
	if err := set.Verify("msg_interop", ts, signed.Token, []byte("{}"), jwks.VerifyConfig{Audience: audience}); err == nil {
		t.Error("Herald accepted jose's JWT with a tampered body")
	}
}
