package bench

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/heraldhq/herald/cluster"
)

// pkiValidity is how long the harness's CA and certificates are valid: far
// longer than any run.
const pkiValidity = 7 * 24 * time.Hour

// CAFiles names the PEM files of a certificate authority.
type CAFiles struct {
	CertFile string
	// KeyFile is the CA's private key (mode 0600): whoever holds it can
	// make cluster members.
	KeyFile string
}

// pkiDir is where a cluster's CA and certificates live, inside Dir.
func pkiDir(dir string) string { return filepath.Join(dir, "pki") }

// newCA creates the cluster's peer CA in dir's pki directory.
func newCA(dir string) (*CAFiles, error) {
	if dir == "" {
		return nil, fmt.Errorf("bench: ClusterConfig.Dir is required for PeerTLS")
	}
	if err := os.MkdirAll(pkiDir(dir), 0o700); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := cluster.NewCA("herald bench CA", pkiValidity)
	if err != nil {
		return nil, err
	}
	ca := &CAFiles{CertFile: filepath.Join(pkiDir(dir), "ca.pem"), KeyFile: filepath.Join(pkiDir(dir), "ca-key.pem")}
	if err := writeNew(ca.KeyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(ca.CertFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// IssuePeerCert issues a certificate for name (its common name; SAN
// 127.0.0.1) signed by the cluster's peer CA, writes it and its key (mode
// 0600) into Dir, and returns the files as a node would be given them. The
// holder is a peer like any node: tests use it to call the peer port as a
// legitimate member would. A name must not be issued twice.
func (c *Cluster) IssuePeerCert(name string) (*cluster.TLSFiles, error) {
	if c.PeerCA == nil {
		return nil, fmt.Errorf("bench: the cluster runs without PeerTLS")
	}
	caCert, err := os.ReadFile(c.PeerCA.CertFile)
	if err != nil {
		return nil, err
	}
	caKey, err := os.ReadFile(c.PeerCA.KeyFile)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := cluster.NewNodeCert(caCert, caKey, name, []net.IP{net.IPv4(127, 0, 0, 1)}, nil, pkiValidity)
	if err != nil {
		return nil, err
	}
	f := &cluster.TLSFiles{
		CertFile: filepath.Join(pkiDir(c.cfg.Dir), name+".pem"),
		KeyFile:  filepath.Join(pkiDir(c.cfg.Dir), name+"-key.pem"),
		CAFile:   c.PeerCA.CertFile,
	}
	if err := writeNew(f.KeyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(f.CertFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	return f, nil
}

// writeNew writes data to a file that must not exist yet, with mode perm
// from its creation on (a key is never readable by others, not even
// briefly).
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("bench: %w", err)
	}
	return f.Close()
}
