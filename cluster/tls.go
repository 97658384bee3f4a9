package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// TLSFiles names the PEM files of a node's peer TLS identity.
type TLSFiles struct {
	// CertFile holds this node's certificate, optionally followed by
	// intermediate CA certificates. It must be valid for both server and
	// client authentication and name, as IP or DNS subject alternative
	// names, the hosts other nodes dial it by.
	CertFile string
	// KeyFile holds the certificate's private key.
	KeyFile string
	// CAFile holds the certificate authorities that sign peers'
	// certificates: a peer is any holder of a certificate they signed.
	CAFile string
}

// peerMinTLS is the lowest protocol version either side accepts. Every node
// runs this same binary, so there is no old client to keep working, and TLS
// 1.3 has only AEAD suites with forward secrecy, a shorter handshake and
// encrypted certificates (a passive observer does not learn node names).
const peerMinTLS = tls.VersionTLS13

// tlsMaterial is one loaded generation of the TLS files.
type tlsMaterial struct {
	cert   *tls.Certificate // Leaf is set
	pool   *x509.CertPool
	server *tls.Config // built once per generation, shared by handshakes
}

// peerTLS holds the current TLS material and reloads it from the files.
type peerTLS struct {
	files  TLSFiles
	mu     sync.Mutex // serialises reloads
	cur    atomic.Pointer[tlsMaterial]
	listen *tls.Config // for tls.Server: defers to the current material
}

// loadPeerTLS reads the files; a nil files means plain TCP.
func loadPeerTLS(files *TLSFiles) (*peerTLS, error) {
	if files == nil {
		return nil, nil
	}
	p := &peerTLS{files: *files}
	m, err := loadTLSMaterial(p.files)
	if err != nil {
		return nil, err
	}
	p.cur.Store(m)
	p.listen = &tls.Config{
		MinVersion: peerMinTLS,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return p.cur.Load().server, nil
		},
	}
	return p, nil
}

// reload swaps in the files' current content, or keeps the old material and
// returns why not.
func (p *peerTLS) reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := loadTLSMaterial(p.files)
	if err != nil {
		return err
	}
	p.cur.Store(m)
	return nil
}

// clientConfig returns the configuration for dialling host, with the
// material current at the time of the dial.
func (p *peerTLS) clientConfig(host string) *tls.Config {
	m := p.cur.Load()
	return &tls.Config{
		MinVersion: peerMinTLS,
		RootCAs:    m.pool,
		// An IP address here is checked against the certificate's IP
		// SANs (and not sent as SNI), a name against its DNS SANs.
		ServerName: host,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return m.cert, nil
		},
	}
}

// loadTLSMaterial reads and checks the three files. Every error names the
// file at fault.
func loadTLSMaterial(f TLSFiles) (*tlsMaterial, error) {
	switch {
	case f.CertFile == "":
		return nil, errors.New("cluster: peer TLS: no certificate file given")
	case f.KeyFile == "":
		return nil, errors.New("cluster: peer TLS: no key file given")
	case f.CAFile == "":
		return nil, errors.New("cluster: peer TLS: no CA file given")
	}
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer TLS key: %w", err)
	}
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer TLS CA: %w", err)
	}
	chain, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer TLS certificate %s: %v", f.CertFile, err)
	}
	cas, err := ParseCertificates(caPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer TLS CA %s: %v", f.CAFile, err)
	}
	// The certificate parsed, so whatever X509KeyPair rejects is the key.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster: peer TLS key %s (for certificate %s): %v", f.KeyFile, f.CertFile, err)
	}
	cert.Leaf = chain[0]
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca)
	}
	// Catch a certificate from the wrong CA, expired, or lacking a usage
	// now, with the file's name, rather than as handshake failures on
	// every peer.
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: time.Now()}); err != nil {
			return nil, fmt.Errorf("cluster: peer TLS certificate %s does not verify against CA %s for %s: %v",
				f.CertFile, f.CAFile, usageName(usage), err)
		}
	}
	m := &tlsMaterial{cert: &cert, pool: pool}
	m.server = &tls.Config{
		MinVersion:   peerMinTLS,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// No resumption: a resumed session would skip verifying the client
		// against the CAs loaded now. Peer connections are long-lived, so
		// it saves little.
		SessionTicketsDisabled: true,
	}
	return m, nil
}

func usageName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "server authentication"
	}
	return "client authentication"
}

// tlsHost returns the host part of addr for certificate verification.
func tlsHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
