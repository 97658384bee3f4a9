package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// httpsTestCA is a throw-away CA that issues ECDSA server certificates for
// 127.0.0.1 and localhost.
type httpsTestCA struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string // the CA certificate, PEM
}

func newHTTPSTestCA(t *testing.T) *httpsTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &httpsTestCA{dir: t.TempDir(), cert: cert, key: key}
	ca.caFile = filepath.Join(ca.dir, "ca.pem")
	writeFile(t, ca.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// issue returns a PEM server certificate with the given serial and its key.
func (ca *httpsTestCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "herald test server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// writePair issues a certificate with serial and writes it and its key to
// the CA's server.pem and server.key, returning their paths.
func (ca *httpsTestCA) writePair(t *testing.T, serial int64) (certFile, keyFile string) {
	t.Helper()
	c, k := ca.issue(t, serial)
	certFile, keyFile = filepath.Join(ca.dir, "server.pem"), filepath.Join(ca.dir, "server.key")
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	return certFile, keyFile
}

// pool returns a pool holding only the CA.
func (ca *httpsTestCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// writeFile writes a file only its owner may read.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // an existing file keeps its mode
		t.Fatal(err)
	}
}

// servedSerial connects to addr, trusting only the CA, and returns the
// serial of the certificate the server presents.
func servedSerial(t *testing.T, ca *httpsTestCA, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestCertReloader: a reload swaps the served certificate; a reload that
// fails names the bad file and keeps the previous certificate.
func TestCertReloader(t *testing.T) {
	ca := newHTTPSTestCA(t)
	certFile, keyFile := ca.writePair(t, 101)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r, err := newCertReloader(certFile, keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLSConfig(r))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	if got := servedSerial(t, ca, addr); got != 101 {
		t.Fatalf("serial = %d, want 101", got)
	}
	if !strings.Contains(logs.String(), "serial=65") { // 101 in hex
		t.Errorf("the load is not logged with the serial: %s", logs.String())
	}

	ca.writePair(t, 102)
	if err := r.reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := servedSerial(t, ca, addr); got != 102 {
		t.Fatalf("after reload serial = %d, want 102", got)
	}

	// Bad files: the error names the file at fault, in one line, and the
	// certificate in use stays.
	otherCert, otherKey := ca.issue(t, 999)
	goodCert, goodKey := ca.issue(t, 103)
	for _, c := range []struct {
		name       string
		cert, key  []byte
		removeCert bool
		want       string
	}{
		{"missing cert", nil, goodKey, true, "--tls-cert " + certFile + ": no such file"},
		{"garbage cert", []byte("not PEM"), goodKey, false, "--tls-cert " + certFile},
		{"empty cert", []byte{}, goodKey, false, "--tls-cert " + certFile},
		{"garbage key", goodCert, []byte("not PEM"), false, "--tls-key " + keyFile},
		{"key of another cert", goodCert, otherKey, false, "does not match"},
		{"swapped", goodKey, goodCert, false, "--tls-cert " + certFile},
		{"half written chain", goodCert[:len(goodCert)/2], goodKey, false, "--tls-cert " + certFile},
		{"cert of another key", otherCert, goodKey, false, "does not match"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.removeCert {
				os.Remove(certFile)
			} else {
				writeFile(t, certFile, c.cert)
			}
			writeFile(t, keyFile, c.key)
			err := r.reload()
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("reload error = %v, want one line containing %q", err, c.want)
			}
			if got := servedSerial(t, ca, addr); got != 102 {
				t.Errorf("after a failed reload serial = %d, want 102 still", got)
			}
		})
	}

	// runReloaders logs each reloader's outcome and goes on after a failure.
	logs.Reset()
	writeFile(t, certFile, goodCert)
	writeFile(t, keyFile, goodKey)
	runReloaders(log, []reloader{
		{what: "broken thing", reload: func() error { return errors.New("boom") }},
		{what: "API TLS certificate", reload: r.reload},
	})
	if got := servedSerial(t, ca, addr); got != 103 {
		t.Errorf("after runReloaders serial = %d, want 103", got)
	}
	out := logs.String()
	if !strings.Contains(out, `level=ERROR msg="reload failed; keeping the previous one" what="broken thing" error=boom`) ||
		!strings.Contains(out, `msg=reloaded what="API TLS certificate"`) {
		t.Errorf("reload logs:\n%s", out)
	}
}

// TestServeTLSConfigVersions: TLS 1.2 and 1.3 are served, older is refused.
func TestServeTLSConfigVersions(t *testing.T) {
	ca := newHTTPSTestCA(t)
	certFile, keyFile := ca.writePair(t, 7)
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLSConfig(r))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	for _, c := range []struct {
		version uint16
		ok      bool
	}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.pool(), MinVersion: c.version, MaxVersion: c.version})
		if (err == nil) != c.ok {
			t.Errorf("TLS version %x: err %v, want ok=%v", c.version, err, c.ok)
		}
		if conn != nil {
			conn.Close()
		}
	}
}

func TestServeTLSFlags(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_API_TOKEN_FILE", "")
	t.Setenv("HERALD_TLS_CERT", "")
	t.Setenv("HERALD_TLS_KEY", "")
	ca := newHTTPSTestCA(t)
	certFile, keyFile := ca.writePair(t, 5)
	none := func(string) (string, bool) { return "", false }

	var stderr bytes.Buffer
	cfg, err := parseServeFlags([]string{"--tls-cert", certFile, "--tls-key", keyFile}, none, &stderr)
	if err != nil || cfg.tlsCert != certFile || cfg.tlsKey != keyFile {
		t.Errorf("flags: %+v, %v", cfg, err)
	}
	env := map[string]string{"HERALD_TLS_CERT": certFile, "HERALD_TLS_KEY": keyFile}
	cfg, err = parseServeFlags(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &stderr)
	if err != nil || cfg.tlsCert != certFile || cfg.tlsKey != keyFile {
		t.Errorf("env: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{{"--tls-cert", certFile}, {"--tls-key", keyFile}} {
		_, err := parseServeFlags(args, none, &stderr)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "--tls-cert and --tls-key go together") {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}

	// A bad file is one line naming it, before anything is opened.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	writeFile(t, bad, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	_, otherKey := ca.issue(t, 6)
	other := filepath.Join(t.TempDir(), "other.key")
	writeFile(t, other, otherKey)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", filepath.Join(ca.dir, "nope.pem"), "--tls-key", keyFile}, "--tls-cert " + filepath.Join(ca.dir, "nope.pem") + ": no such file or directory"},
		{[]string{"--tls-cert", certFile, "--tls-key", filepath.Join(ca.dir, "nope.key")}, "--tls-key " + filepath.Join(ca.dir, "nope.key") + ": no such file or directory"},
		{[]string{"--tls-cert", bad, "--tls-key", keyFile}, "--tls-cert " + bad},
		{[]string{"--tls-cert", certFile, "--tls-key", other}, "does not match"},
		{[]string{"--tls-cert", keyFile, "--tls-key", certFile}, "--tls-cert " + keyFile},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		_, stderr, code := cli(t, append([]string{"serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"}, c.args...)...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", c.args, code)
		}
		oneLine(t, stderr, c.want)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%q: the data dir was created", c.args)
		}
	}
}

// TestServeHTTPS runs `herald serve` over HTTPS with a token file, drives it
// with the client commands through --ca-cert and --api-token-file, and
// reloads its certificate with SIGHUP.
func TestServeHTTPS(t *testing.T) {
	for _, k := range []string{"HERALD_API_TOKEN", "HERALD_API_TOKEN_FILE", "HERALD_SERVER", "HERALD_CA_CERT", "HERALD_TLS_CERT", "HERALD_TLS_KEY"} {
		t.Setenv(k, "")
	}
	ca := newHTTPSTestCA(t)
	certFile, keyFile := ca.writePair(t, 201)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, []byte("file-token-42\n"))
	rcv := newHook(t)
	srv := startServe(t, "--tls-cert", certFile, "--tls-key", keyFile, "--api-token-file", tokenFile,
		"--override-signature", "jwt", "--allow-private-networks")
	base := "https://" + srv.addr
	if logs := srv.logs.String(); !strings.Contains(logs, "tls=true") || strings.Contains(logs, "file-token-42") {
		t.Errorf("startup logs (want tls=true, no token):\n%s", logs)
	}

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	defer hc.CloseIdleConnections()
	waitReady(t, hc, base)
	// Plain HTTP on the HTTPS port is refused.
	if resp, err := http.Get(srv.base + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: %d, want 400", resp.StatusCode)
		}
	}

	// The client with --ca-cert and --api-token-file.
	out, stderr, code := cli(t, "cluster", "status", "--server", base, "--ca-cert", ca.caFile, "--api-token-file", tokenFile)
	if code != 0 || !strings.Contains(out, `"api_addr": "`+srv.addr+`"`) {
		t.Fatalf("cluster status over HTTPS: exit %d: %s %s", code, out, stderr)
	}
	// A write (JSON content type from the client) and the environment.
	t.Setenv("HERALD_CA_CERT", ca.caFile)
	t.Setenv("HERALD_API_TOKEN_FILE", tokenFile)
	out, stderr, code = cli(t, "send", "--server", base, "--type", "a.b", "--data", `{"n": 1}`)
	if code != 0 || !strings.Contains(out, `"status": "succeeded"`) { // no endpoint: nothing to deliver
		t.Fatalf("send over HTTPS: exit %d: %s %s", code, out, stderr)
	}
	t.Setenv("HERALD_CA_CERT", "")
	t.Setenv("HERALD_API_TOKEN_FILE", "")

	// The JWT issuer defaults to the https URL.
	_, stderr, code = cli(t, "send", "--server", base, "--ca-cert", ca.caFile, "--api-token-file", tokenFile,
		"--type", "a.b", "--uri", rcv.URL+"/cb")
	if code != 0 {
		t.Fatalf("send override: exit %d: %s", code, stderr)
	}
	waitUntil(t, 10*time.Second, "the override delivery", func() bool { return rcv.count() >= 1 })
	parts := strings.Split(rcv.header(0).Get("webhook-signature"), ".")
	if len(parts) != 3 {
		t.Fatalf("webhook-signature is not a JWT: %q", rcv.header(0).Get("webhook-signature"))
	}
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Iss string }
	if err := json.Unmarshal(claims, &c); err != nil || c.Iss != base {
		t.Errorf("JWT iss = %q (%v), want %q", c.Iss, err, base)
	}

	// Without --ca-cert the system roots do not know the test CA.
	_, stderr, code = cli(t, "cluster", "status", "--server", base, "--api-token-file", tokenFile)
	if code != 1 {
		t.Errorf("without --ca-cert: exit %d", code)
	}
	oneLine(t, stderr, "cannot reach "+base+": its TLS certificate is not signed by a trusted CA (give the CA's certificate with --ca-cert")
	// A CA that did not sign it.
	other := newHTTPSTestCA(t)
	_, stderr, code = cli(t, "cluster", "status", "--server", base, "--api-token-file", tokenFile, "--ca-cert", other.caFile)
	if code != 1 {
		t.Errorf("wrong CA: exit %d", code)
	}
	oneLine(t, stderr, "not signed by a trusted CA")
	// Without the token.
	_, stderr, code = cli(t, "cluster", "status", "--server", base, "--ca-cert", ca.caFile)
	if code != 1 {
		t.Errorf("no token: exit %d", code)
	}
	oneLine(t, stderr, "unauthorized")

	// SIGHUP reloads the certificate without a restart.
	if got := servedSerial(t, ca, srv.addr); got != 201 {
		t.Fatalf("serial = %d, want 201", got)
	}
	ca.writePair(t, 202)
	reloads := strings.Count(srv.logs.String(), "msg=reloaded")
	sendSIGHUP(t)
	waitUntil(t, 10*time.Second, "the reload", func() bool { return strings.Count(srv.logs.String(), "msg=reloaded") > reloads })
	if got := servedSerial(t, ca, srv.addr); got != 202 {
		t.Fatalf("after SIGHUP serial = %d, want 202", got)
	}
	// A bad file on reload logs an error and keeps the certificate.
	writeFile(t, certFile, []byte("garbage"))
	sendSIGHUP(t)
	waitUntil(t, 10*time.Second, "the failed reload", func() bool { return strings.Contains(srv.logs.String(), "reload failed") })
	if got := servedSerial(t, ca, srv.addr); got != 202 {
		t.Errorf("after a failed reload serial = %d, want 202", got)
	}
	if logs := srv.logs.String(); !strings.Contains(logs, `what="API TLS certificate" error="--tls-cert `+certFile) {
		t.Errorf("the failed reload is not logged with its file:\n%s", logs)
	}
	// The API keeps working.
	_, stderr, code = cli(t, "cluster", "status", "--server", base, "--ca-cert", ca.caFile, "--api-token-file", tokenFile)
	if code != 0 {
		t.Errorf("after the failed reload: exit %d: %s", code, stderr)
	}
	if err := srv.wait(t); err != nil {
		t.Errorf("serve returned %v", err)
	}
}

// TestServeDebugNoCmdline: the debug listener serves the profiles but not
// the command line, which holds --api-token.
func TestServeDebugNoCmdline(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	srv := startServe(t, "--api-token", "debug-secret-token", "--debug-addr", "127.0.0.1:0")
	m := regexpFind(t, srv.logs.String(), `msg="debug listener" debug_addr=(\S+)`)
	base := "http://" + m
	get := func(path string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/pprof/cmdline?x=1", "/debug/pprof/cmdline/"} {
		code, body := get(path)
		if code != http.StatusNotFound || strings.Contains(body, "debug-secret-token") {
			t.Errorf("GET %s = %d %q, want 404 without the token", path, code, body)
		}
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/symbol"} {
		if code, body := get(path); code != http.StatusOK || strings.Contains(body, "debug-secret-token") {
			t.Errorf("GET %s = %d (%d bytes), want 200 without the token", path, code, len(body))
		}
	}
}

// regexpFind returns the first submatch of re in s, or fails the test.
func regexpFind(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, s)
	}
	return m[1]
}
