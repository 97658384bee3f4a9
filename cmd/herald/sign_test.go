package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/signer/jwks"
)

// The Standard Webhooks conformance vectors: the HMAC one from the Standard
// Webhooks libraries' tests, and an Ed25519 one over the same content.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecKey    = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = "1614265330"
	vecBody   = `{"test": 2432232314}`
	vecV1     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	vecV1a    = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)

// herald runs the CLI in-process and returns stdout, stderr and the exit code.
func herald(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), exitCode(err)
}

func bodyFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSignVectors(t *testing.T) {
	file := bodyFile(t, vecBody)
	for _, tt := range []struct{ flag, key, want string }{
		{"--secret", vecSecret, vecV1},
		{"--secret", strings.TrimPrefix(vecSecret, "whsec_"), vecV1},
		{"--key", vecKey, vecV1a},
	} {
		stdout, stderr, code := herald(t, "sign", tt.flag, tt.key, "--id", vecID, "--timestamp", vecTS, "--file", file)
		want := "webhook-id: " + vecID + "\nwebhook-timestamp: " + vecTS + "\nwebhook-signature: " + tt.want + "\n"
		if code != 0 || stdout != want || stderr != "" {
			t.Errorf("sign %s: exit %d, stdout %q, stderr %q; want %q", tt.flag, code, stdout, stderr, want)
		}
	}
}

func TestSignUsageErrors(t *testing.T) {
	file := bodyFile(t, vecBody)
	for name, args := range map[string][]string{
		"no key":         {"--id", vecID, "--timestamp", vecTS, "--file", file},
		"two keys":       {"--secret", vecSecret, "--key", vecKey, "--id", vecID, "--timestamp", vecTS, "--file", file},
		"no id":          {"--secret", vecSecret, "--timestamp", vecTS, "--file", file},
		"no timestamp":   {"--secret", vecSecret, "--id", vecID, "--file", file},
		"bad timestamp":  {"--secret", vecSecret, "--id", vecID, "--timestamp", "1.5", "--file", file},
		"bad secret":     {"--secret", "whsec_short", "--id", vecID, "--timestamp", vecTS, "--file", file},
		"bad key":        {"--key", "whsk_AAAA", "--id", vecID, "--timestamp", vecTS, "--file", file},
		"unknown flag":   {"--secrets", vecSecret},
		"extra argument": {"--secret", vecSecret, "--id", vecID, "--timestamp", vecTS, "body.json"},
	} {
		stdout, stderr, code := herald(t, append([]string{"sign"}, args...)...)
		if code != 2 || stdout != "" || stderr == "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 with a message", name, code, stdout, stderr)
		}
	}
	if _, stderr, code := herald(t, "sign", "--secret", vecSecret, "--id", vecID, "--timestamp", vecTS, "--file", filepath.Join(t.TempDir(), "missing")); code != 1 || !strings.HasPrefix(stderr, "herald: ") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
}

func TestVerify(t *testing.T) {
	file := bodyFile(t, vecBody)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	sign := func(flag, key string) string {
		t.Helper()
		stdout, stderr, code := herald(t, "sign", flag, key, "--id", vecID, "--timestamp", now, "--file", file)
		if code != 0 {
			t.Fatalf("sign: %s", stderr)
		}
		return strings.TrimPrefix(strings.Split(stdout, "\n")[2], "webhook-signature: ")
	}
	v1, v1a := sign("--secret", vecSecret), sign("--key", vecKey)
	vecPub := "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
	old := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"v1", []string{"--secret", vecSecret, "--timestamp", now, "--signature", v1}, 0, ""},
		{"v1a", []string{"--public-key", vecPub, "--timestamp", now, "--signature", v1a}, 0, ""},
		{"vector with wide tolerance", []string{"--secret", vecSecret, "--timestamp", vecTS, "--signature", vecV1, "--tolerance", "1000000h"}, 0, ""},
		{"v1a vector with wide tolerance", []string{"--public-key", vecPub, "--timestamp", vecTS, "--signature", vecV1a, "--tolerance", "1000000h"}, 0, ""},
		{"vector too old", []string{"--secret", vecSecret, "--timestamp", vecTS, "--signature", vecV1}, 1, "herald: signer: message timestamp too old\n"},
		{"too old for tolerance", []string{"--secret", vecSecret, "--timestamp", old, "--signature", v1, "--tolerance", "1m"}, 1, "herald: signer: message timestamp too old\n"},
		{"wrong signature", []string{"--secret", vecSecret, "--timestamp", now, "--signature", "v1,Zm9v"}, 1, "herald: signer: no matching signature found\n"},
		{"wrong key", []string{"--public-key", vecPub, "--timestamp", now, "--signature", v1}, 1, "herald: signer: no matching signature found\n"},
		{"bad timestamp", []string{"--secret", vecSecret, "--timestamp", "x", "--signature", v1}, 1, "herald: signer: invalid timestamp\n"},
		{"no key flag", []string{"--timestamp", now, "--signature", v1}, 2, ""},
		{"two key flags", []string{"--secret", vecSecret, "--public-key", vecPub, "--timestamp", now, "--signature", v1}, 2, ""},
		{"no signature", []string{"--secret", vecSecret, "--timestamp", now}, 2, ""},
		{"bad public key", []string{"--public-key", "whpk_AAAA", "--timestamp", now, "--signature", v1a}, 2, ""},
		{"empty secret", []string{"--secret", "whsec_", "--timestamp", now, "--signature", v1}, 2, ""},
		{"bad tolerance", []string{"--secret", vecSecret, "--timestamp", now, "--signature", v1, "--tolerance", "-1s"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "--id", vecID, "--file", file}, tt.args...)
			stdout, stderr, code := herald(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if code == 0 && (stdout != "ok\n" || stderr != "") {
				t.Fatalf("stdout %q, stderr %q; want ok", stdout, stderr)
			}
			if code != 0 && stdout != "" {
				t.Fatalf("stdout %q on failure", stdout)
			}
			if tt.wantStderr != "" && stderr != tt.wantStderr {
				t.Fatalf("stderr %q, want %q", stderr, tt.wantStderr)
			}
			if code == 2 && !strings.Contains(stderr, "herald: ") {
				t.Fatalf("usage error without a message: %q", stderr)
			}
		})
	}
}

func TestVerifyJWKS(t *testing.T) {
	rsaKey, err := jwks.GenerateRSAKey()
	if err != nil {
		t.Fatal(err)
	}
	edKey, _ := signer.ParsePrivateKey(vecKey)
	doc, err := jwks.Marshal(edKey.Public().(ed25519.PublicKey), &rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }))
	defer srv.Close()

	file := bodyFile(t, vecBody)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	js, _ := jwks.NewJWTSigner(rsaKey, "http://herald.test")
	token, _ := js.Sign("https://receiver.test/hook", vecID, now, []byte(vecBody))
	ed, _ := signer.NewEd25519(edKey)
	v1a, _ := ed.Sign(vecID, now, []byte(vecBody))

	for _, tt := range []struct {
		name, id, sig, url string
		wantCode           int
		wantStderr         string
	}{
		{"jwt", vecID, token, srv.URL, 0, ""},
		{"v1a", vecID, v1a, srv.URL, 0, ""},
		{"jwt for another id", "msg_other", token, srv.URL, 1, "herald: jwks: invalid JWT: "},
		{"v1a for another id", "msg_other", v1a, srv.URL, 1, "herald: signer: no matching signature found"},
		{"unreachable", vecID, token, "http://127.0.0.1:1/jwks.json", 1, "herald: jwks: fetch: "},
	} {
		stdout, stderr, code := herald(t, "verify", "--jwks", tt.url, "--id", tt.id, "--timestamp", ts, "--signature", tt.sig, "--file", file)
		if code != tt.wantCode || !strings.HasPrefix(stderr, tt.wantStderr) || strings.Count(stderr, "\n") > 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stderr %q…", tt.name, code, stdout, stderr, tt.wantCode, tt.wantStderr)
		}
	}
}

func TestKeygen(t *testing.T) {
	stdout, _, code := herald(t, "keygen", "hmac")
	secret := strings.TrimSuffix(stdout, "\n")
	if _, err := signer.ParseHMACSecret(secret); code != 0 || err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("keygen hmac: exit %d, %q: %v", code, stdout, err)
	}

	stdout, _, code = herald(t, "keygen", "ed25519")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "whsk_") || !strings.HasPrefix(lines[1], "whpk_") {
		t.Fatalf("keygen ed25519: exit %d, %q", code, stdout)
	}
	// The pair works end to end through sign and verify.
	file := bodyFile(t, vecBody)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	out, _, _ := herald(t, "sign", "--key", lines[0], "--id", vecID, "--timestamp", now, "--file", file)
	sig := strings.TrimPrefix(strings.Split(out, "\n")[2], "webhook-signature: ")
	if out, stderr, code := herald(t, "verify", "--public-key", lines[1], "--id", vecID, "--timestamp", now, "--signature", sig, "--file", file); code != 0 || out != "ok\n" {
		t.Fatalf("verify generated pair: exit %d, %q %q", code, out, stderr)
	}

	// A seal key, written to a file, is what serve --seal-key-file reads.
	stdout, _, code = herald(t, "keygen", "seal")
	keyFile := filepath.Join(t.TempDir(), "seal.key")
	if err := os.WriteFile(keyFile, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if key, err := readSealKey("--seal-key-file", keyFile); code != 0 || err != nil || len(key) != 32 {
		t.Fatalf("keygen seal: exit %d, %q: %v", code, stdout, err)
	}

	for _, args := range [][]string{{"keygen"}, {"keygen", "rsa"}, {"keygen", "hmac", "ed25519"}} {
		if _, stderr, code := herald(t, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}
