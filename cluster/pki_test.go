package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	certPEM, keyPEM, err := NewCA("Herald test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(*ecdsa.PublicKey).Equal(ca.PublicKey) {
		t.Error("the key does not match the certificate")
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", ca.PublicKey)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("IsCA %v, MaxPathLen %d (zero %v): want a CA that signs leaves only", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Errorf("key usage %b lacks cert or CRL signing", ca.KeyUsage)
	}
	if ca.Subject.CommonName != "Herald test CA" {
		t.Errorf("CN %q", ca.Subject.CommonName)
	}
	if bits := ca.SerialNumber.BitLen(); bits < 100 || bits > 128 {
		t.Errorf("serial has %d bits, want a random 128-bit one", bits)
	}
	if d := time.Until(ca.NotAfter); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("valid for another %v, want 24h", d)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	other, _, _ := NewCA("Herald test CA", 24*time.Hour)
	if o, _ := parseCertPEM(other); o.SerialNumber.Cmp(ca.SerialNumber) == 0 {
		t.Error("two CAs share a serial number")
	}
	if _, _, err := NewCA("", time.Hour); err == nil {
		t.Error("empty common name accepted")
	}
}

func TestNewNodeCert(t *testing.T) {
	caPEM, caKeyPEM, err := NewCA("Herald test CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ips := []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")}
	certPEM, keyPEM, err := NewNodeCert(caPEM, caKeyPEM, "n1", ips, []string{"n1.herald.internal"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := parseCertPEM(caPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("does not chain to the CA for usage %v: %v", usage, err)
		}
	}
	for _, host := range []string{"10.0.0.1", "fd00::1", "n1.herald.internal"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("not valid for %s: %v", host, err)
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost", "10.0.0.2"} {
		if leaf.VerifyHostname(host) == nil {
			t.Errorf("valid for %s, which was not asked for", host)
		}
	}
	if leaf.Subject.CommonName != "n1" || leaf.IsCA {
		t.Errorf("CN %q, IsCA %v", leaf.Subject.CommonName, leaf.IsCA)
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("ext key usage %v, want server and client auth", leaf.ExtKeyUsage)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		t.Error("the key does not match the certificate")
	}

	// Never valid beyond the CA.
	long, _, err := NewNodeCert(caPEM, caKeyPEM, "n2", ips, nil, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := parseCertPEM(long); l.NotAfter.After(ca.NotAfter) {
		t.Errorf("node certificate outlives its CA: %v > %v", l.NotAfter, ca.NotAfter)
	}

	otherCA, otherKey, _ := NewCA("other", time.Hour)
	for name, tt := range map[string]struct {
		ca, key []byte
		id      string
		ips     []net.IP
		dns     []string
		want    string
	}{
		"no SAN":         {caPEM, caKeyPEM, "n1", nil, nil, "at least one IP address or DNS name"},
		"no id":          {caPEM, caKeyPEM, "", ips, nil, "node id is empty"},
		"key of another": {caPEM, otherKey, "n1", ips, nil, "does not match"},
		"leaf as CA":     {certPEM, keyPEM, "n1", ips, nil, "not a certificate authority"},
		"garbage CA":     {[]byte("junk"), caKeyPEM, "n1", ips, nil, "CA certificate"},
		"garbage key":    {otherCA, []byte("junk"), "n1", ips, nil, "CA key"},
	} {
		_, _, err := NewNodeCert(tt.ca, tt.key, tt.id, tt.ips, tt.dns, time.Hour)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tt.want)
		}
	}
}
