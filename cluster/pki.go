package cluster

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// clockSkew backdates new certificates, so a peer whose clock runs a little
// behind accepts them at once.
const clockSkew = 5 * time.Minute

// NewCA creates a self-signed certificate authority for peer TLS: an ECDSA
// P-256 key and a certificate valid for validity that can sign node
// certificates but no further CAs. Both are returned PEM-encoded; the key
// (PKCS #8) must stay secret: whoever holds it can make cluster members.
func NewCA(commonName string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("cluster: CA common name is empty")
	}
	if validity <= 0 {
		return nil, nil, errors.New("cluster: CA validity must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true, // node certificates only, no intermediate CAs
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: create CA certificate: %w", err)
	}
	return encodeCertAndKey(der, key)
}

// NewNodeCert issues a certificate for node nodeID, signed by the CA given
// as PEM: an ECDSA P-256 key and a certificate with common name nodeID,
// usable for both server and client authentication (every node dials and is
// dialled), valid for validity but never beyond the CA's own expiry.
//
// The certificate names exactly ips and dnsNames as subject alternative
// names, and at least one is required: peers verify the certificate against
// the host of the address they dial (a --peers or --raft-addr entry, and
// the resolved IP a node advertises). Nothing is added implicitly; the
// herald tls cert command adds 127.0.0.1 and localhost by default.
func NewNodeCert(caCertPEM, caKeyPEM []byte, nodeID string, ips []net.IP, dnsNames []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if nodeID == "" {
		return nil, nil, errors.New("cluster: node id is empty")
	}
	if validity <= 0 {
		return nil, nil, errors.New("cluster: certificate validity must be positive")
	}
	if len(ips) == 0 && len(dnsNames) == 0 {
		return nil, nil, errors.New("cluster: a node certificate needs at least one IP address or DNS name")
	}
	for _, ip := range ips {
		if ip == nil || ip.To16() == nil {
			return nil, nil, fmt.Errorf("cluster: invalid IP address %v", ip)
		}
	}
	ca, err := parseCertPEM(caCertPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: CA certificate: %w", err)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, errors.New("cluster: the CA certificate is not a certificate authority")
	}
	caKey, err := parseKeyPEM(caKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: CA key: %w", err)
	}
	if pub, ok := caKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, errors.New("cluster: the CA key does not match the CA certificate")
	}
	now := time.Now()
	if now.After(ca.NotAfter) {
		return nil, nil, fmt.Errorf("cluster: the CA certificate expired on %s", ca.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: nodeID},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: create node certificate: %w", err)
	}
	return encodeCertAndKey(der, key)
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			return nil, fmt.Errorf("cluster: serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func encodeCertAndKey(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// parseCertPEM parses the first certificate in data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseCertificates parses every CERTIFICATE block of PEM data (a
// certificate, a chain or a CA bundle), skipping other blocks; it fails if
// there is none or one does not parse.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bytes.TrimSpace(data); len(rest) > 0; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// parseKeyPEM parses the first private key block in data: PKCS #8, SEC 1
// (EC PRIVATE KEY) or PKCS #1 (RSA PRIVATE KEY).
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key block found")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", key)
		}
		return signer, nil
	}
}
