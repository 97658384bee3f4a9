package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

// tlsOneLine checks that a failed command printed exactly one line.
func tlsOneLine(t *testing.T, what, stderr string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "herald: ") {
		t.Errorf("%s: stderr %q, want one herald: line", what, stderr)
	}
}

func TestTLSCommands(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := herald(t, "tls", "ca", "--out-dir", dir, "--days", "30")
	if code != 0 {
		t.Fatalf("tls ca: exit %d, stderr %q", code, stderr)
	}
	caPath, caKeyPath := filepath.Join(dir, "herald-ca.pem"), filepath.Join(dir, "herald-ca-key.pem")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "wrote "+caPath+": ") || !strings.HasPrefix(lines[1], "wrote "+caKeyPath+": ") {
		t.Errorf("tls ca printed %q, want one line per file", stdout)
	}
	checkMode(t, caKeyPath, 0o600)
	ca := readCert(t, caPath)
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 || !strings.HasPrefix(ca.Subject.CommonName, "Herald peer CA ") {
		t.Errorf("CA: IsCA %v, MaxPathLenZero %v, usage %b, CN %q", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage, ca.Subject.CommonName)
	}
	if d := time.Until(ca.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("CA valid for %v, want 30 days", d)
	}

	caBefore, _ := os.ReadFile(caPath)
	_, stderr, code = herald(t, "tls", "ca", "--out-dir", dir)
	if code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("tls ca over existing files: exit %d, stderr %q", code, stderr)
	}
	tlsOneLine(t, "tls ca over existing files", stderr)
	if after, _ := os.ReadFile(caPath); string(after) != string(caBefore) {
		t.Error("tls ca overwrote the CA")
	}

	stdout, stderr, code = herald(t, "tls", "cert", "--node", "n1", "--ip", "10.0.0.1", "--ip", "fd00::1",
		"--dns", "n1.herald.internal", "--ca", caPath, "--ca-key", caKeyPath, "--days", "10", "--out-dir", dir)
	if code != 0 {
		t.Fatalf("tls cert: exit %d, stderr %q", code, stderr)
	}
	certPath, keyPath := filepath.Join(dir, "n1.pem"), filepath.Join(dir, "n1-key.pem")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "wrote "+certPath+": ") || !strings.HasPrefix(lines[1], "wrote "+keyPath+": ") {
		t.Errorf("tls cert printed %q, want one line per file", stdout)
	}
	checkMode(t, keyPath, 0o600)
	leaf := readCert(t, certPath)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("n1.pem does not chain to the CA for %v: %v", usage, err)
		}
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "10.0.0.1", "fd00::1"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs %q, want %q", ips, want)
	}
	if want := []string{"localhost", "n1.herald.internal"}; !slices.Equal(leaf.DNSNames, want) {
		t.Errorf("DNS SANs %q, want %q", leaf.DNSNames, want)
	}
	if leaf.Subject.CommonName != "n1" || leaf.IsCA {
		t.Errorf("CN %q, IsCA %v", leaf.Subject.CommonName, leaf.IsCA)
	}
	if d := time.Until(leaf.NotAfter); d < 9*24*time.Hour || d > 11*24*time.Hour {
		t.Errorf("valid for %v, want 10 days", d)
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Errorf("n1.pem and n1-key.pem are not a pair: %v", err)
	}

	certBefore, _ := os.ReadFile(certPath)
	_, stderr, code = herald(t, "tls", "cert", "--node", "n1", "--ca", caPath, "--ca-key", caKeyPath, "--out-dir", dir)
	if code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("tls cert over existing files: exit %d, stderr %q", code, stderr)
	}
	tlsOneLine(t, "tls cert over existing files", stderr)
	if after, _ := os.ReadFile(certPath); string(after) != string(certBefore) {
		t.Error("tls cert overwrote n1.pem")
	}

	// The defaults: the CA in the working directory, loopback names only.
	t.Chdir(dir)
	if _, stderr, code := herald(t, "tls", "cert", "--node", "n2"); code != 0 {
		t.Fatalf("tls cert with the default CA files: exit %d, stderr %q", code, stderr)
	}
	n2 := readCert(t, filepath.Join(dir, "n2.pem"))
	if len(n2.IPAddresses) != 1 || !n2.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !slices.Equal(n2.DNSNames, []string{"localhost"}) {
		t.Errorf("default SANs %v %q, want 127.0.0.1 and localhost", n2.IPAddresses, n2.DNSNames)
	}
	checkMode(t, filepath.Join(dir, "n2-key.pem"), 0o600)

	// n1 and n2 authenticate each other, n2 dialled as 127.0.0.1.
	pair := func(name string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(name+".pem", name+"-key.pem")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := &tls.Config{Certificates: []tls.Certificate{pair("n2")}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots}
	client := &tls.Config{Certificates: []tls.Certificate{pair("n1")}, RootCAs: roots, ServerName: "127.0.0.1"}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(c2, server)
		err := s.Handshake()
		if err == nil && s.ConnectionState().PeerCertificates[0].Subject.CommonName != "n1" {
			err = os.ErrInvalid
		}
		done <- err
	}()
	if err := tls.Client(c1, client).Handshake(); err != nil {
		t.Errorf("n1 dialling n2: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("n2 accepting n1: %v", err)
	}
}

func TestTLSCommandErrors(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := herald(t, "tls", "ca", "--out-dir", dir); code != 0 {
		t.Fatalf("tls ca: %s", stderr)
	}
	ca, caKey := filepath.Join(dir, "herald-ca.pem"), filepath.Join(dir, "herald-ca-key.pem")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tls", "cert", "--ca", ca, "--ca-key", caKey}, 2, "--node is required"},
		{[]string{"tls", "cert", "--node", "../n1", "--ca", ca, "--ca-key", caKey}, 2, "--node"},
		{[]string{"tls", "cert", "--node", "n1", "--ip", "300.1.1.1", "--ca", ca, "--ca-key", caKey}, 2, "not an IP address"},
		{[]string{"tls", "cert", "--node", "n1", "--dns", "10.0.0.1", "--ca", ca, "--ca-key", caKey}, 2, "use --ip"},
		{[]string{"tls", "cert", "--node", "n1", "--dns", "bad name", "--ca", ca, "--ca-key", caKey}, 2, "not a DNS name"},
		{[]string{"tls", "cert", "--node", "n1", "--days", "0", "--ca", ca, "--ca-key", caKey}, 2, "--days"},
		{[]string{"tls", "cert", "n1"}, 2, "unexpected argument"},
		{[]string{"tls", "cert", "--node", "n1", "--bogus"}, 2, "bogus"},
		{[]string{"tls", "ca", "--days", "-1", "--out-dir", t.TempDir()}, 2, "--days"},
		{[]string{"tls", "cert", "--node", "n1", "--ca", filepath.Join(dir, "none.pem"), "--ca-key", caKey, "--out-dir", t.TempDir()}, 1, "none.pem"},
		{[]string{"tls", "cert", "--node", "n1", "--ca", ca, "--ca-key", ca, "--out-dir", t.TempDir()}, 1, "CA key"},
	} {
		_, stderr, code := herald(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("herald %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(tt.args, " "), code, stderr, tt.code, tt.want)
		}
		tlsOneLine(t, strings.Join(tt.args, " "), stderr)
	}
	if _, stderr, code := herald(t, "tls", "nope"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("tls nope: exit %d, stderr %q", code, stderr)
	}
}
