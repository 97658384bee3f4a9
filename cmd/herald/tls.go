package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/heraldhq/herald/cluster"
)

func init() {
	commands["tls"] = command{summary: "create a CA and node certificates for the peer port's mutual TLS", run: runTLS,
		subs: tlsCommands, order: tlsOrder}
}

var tlsCommands = map[string]subcommand{
	"ca":   {summary: "create a certificate authority: herald-ca.pem and herald-ca-key.pem", run: runTLSCA},
	"cert": {summary: "create a node's certificate, signed by the CA: ID.pem and ID-key.pem", run: runTLSCert},
}

var tlsOrder = []string{"ca", "cert"}

// Default file names, as herald tls ca writes them and herald tls cert
// reads them.
const (
	tlsCAFile    = "herald-ca.pem"
	tlsCAKeyFile = "herald-ca-key.pem"
	maxTLSDays   = 100 * 365
)

func runTLS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "tls", tlsCommands, tlsOrder, args, stdout, stderr)
}

func runTLSCA(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "[--out-dir DIR] [--days N]\n\n"+
		"Creates the certificate authority that signs every node's peer certificate: "+tlsCAFile+"\n"+
		"(give it to every node as --peer-tls-ca) and "+tlsCAKeyFile+" (keep it secret and off\n"+
		"the nodes: whoever holds it can make cluster members). Existing files are never overwritten.", stderr)
	outDir := fs.String("out-dir", ".", "write the files in this `dir`")
	days := fs.Int("days", 5*365, "validity in `days`")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	if err := checkDays(name, *days); err != nil {
		return err
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	cn := "Herald peer CA " + hex.EncodeToString(suffix) // tells one CA from the next at rotation
	certPEM, keyPEM, err := cluster.NewCA(cn, time.Duration(*days)*24*time.Hour)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(*outDir, tlsCAFile), filepath.Join(*outDir, tlsCAKeyFile)
	if err := writeNewFiles(name, []newFile{{certPath, certPEM, 0o644}, {keyPath, keyPEM, 0o600}}); err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(pemBytes(certPEM))
	fmt.Fprintf(stdout, "wrote %s: CA certificate %q, valid until %s\n", certPath, cn, ca.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "wrote %s: CA private key (keep it secret; needed only to create node certificates)\n", keyPath)
	return nil
}

// nodeIDPattern keeps a node id usable as a file name.
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// dnsNamePattern is a host name: dot-separated labels of letters, digits
// and inner hyphens.
var dnsNamePattern = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func runTLSCert(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "--node ID [--ip IP]... [--dns NAME]... [--ca FILE] [--ca-key FILE] [--days N] [--out-dir DIR]\n\n"+
		"Creates node ID's peer certificate and key, ID.pem and ID-key.pem (for --peer-tls-cert and\n"+
		"--peer-tls-key), valid for server and client authentication. Give every IP address and DNS\n"+
		"name other nodes dial this node by (its --raft-addr and --peers entry); 127.0.0.1 and\n"+
		"localhost are always added. Existing files are never overwritten.", stderr)
	node := fs.String("node", "", "the node's `ID` (its --node-id; required)")
	var ips, dnsNames stringList
	fs.Var(&ips, "ip", "an `IP` address the node is dialled by (repeatable)")
	fs.Var(&dnsNames, "dns", "a DNS `name` the node is dialled by (repeatable)")
	caFile := fs.String("ca", tlsCAFile, "the CA certificate `file`")
	caKeyFile := fs.String("ca-key", tlsCAKeyFile, "the CA key `file`")
	days := fs.Int("days", 365, "validity in `days` (never beyond the CA's)")
	outDir := fs.String("out-dir", ".", "write the files in this `dir`")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs(name, pos); err != nil {
		return err
	}
	switch {
	case *node == "":
		return usagef("%s: --node is required", name)
	case !nodeIDPattern.MatchString(*node):
		return usagef("%s: --node %q must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (it names the files)", name, *node)
	}
	if err := checkDays(name, *days); err != nil {
		return err
	}
	// The loopback names, as consul and nomad add them: a node can then be
	// reached on 127.0.0.1 (a local cluster, a health check) with no flag.
	sanIPs := []net.IP{net.IPv4(127, 0, 0, 1)}
	sanDNS := []string{"localhost"}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return usagef("%s: --ip %q is not an IP address", name, s)
		}
		if !containsIP(sanIPs, ip) {
			sanIPs = append(sanIPs, ip)
		}
	}
	for _, s := range dnsNames {
		d := strings.ToLower(strings.TrimSuffix(s, "."))
		switch {
		case net.ParseIP(d) != nil:
			return usagef("%s: --dns %q is an IP address; use --ip", name, s)
		case len(d) > 253 || !dnsNamePattern.MatchString(d):
			return usagef("%s: --dns %q is not a DNS name", name, s)
		}
		if !containsString(sanDNS, d) {
			sanDNS = append(sanDNS, d)
		}
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("%s: reading the CA certificate: %w (create one with 'herald tls ca')", name, err)
	}
	caKeyPEM, err := os.ReadFile(*caKeyFile)
	if err != nil {
		return fmt.Errorf("%s: reading the CA key: %w", name, err)
	}
	certPEM, keyPEM, err := cluster.NewNodeCert(caPEM, caKeyPEM, *node, sanIPs, sanDNS, time.Duration(*days)*24*time.Hour)
	if err != nil {
		return fmt.Errorf("%s: %s (CA %s, key %s)", name, strings.TrimPrefix(err.Error(), "cluster: "), *caFile, *caKeyFile)
	}
	certPath, keyPath := filepath.Join(*outDir, *node+".pem"), filepath.Join(*outDir, *node+"-key.pem")
	if err := writeNewFiles(name, []newFile{{certPath, certPEM, 0o644}, {keyPath, keyPEM, 0o600}}); err != nil {
		return err
	}
	cert, _ := x509.ParseCertificate(pemBytes(certPEM))
	var sans []string
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	sans = append(sans, cert.DNSNames...)
	fmt.Fprintf(stdout, "wrote %s: certificate for node %s (%s), valid until %s\n", certPath, *node,
		strings.Join(sans, ", "), cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(stdout, "wrote %s: its private key\n", keyPath)
	return nil
}

func checkDays(name string, days int) error {
	if days <= 0 || days > maxTLSDays {
		return usagef("%s: --days must be between 1 and %d, got %d", name, maxTLSDays, days)
	}
	return nil
}

func containsIP(ips []net.IP, ip net.IP) bool {
	for _, x := range ips {
		if x.Equal(ip) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pemBytes returns the DER content of the first PEM block in data.
func pemBytes(data []byte) []byte {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	return block.Bytes
}

// newFile is a file writeNewFiles creates.
type newFile struct {
	path string
	data []byte
	perm os.FileMode
}

// writeNewFiles writes every file or none: it refuses if any exists, and
// removes what it wrote if a later one fails.
func writeNewFiles(name string, files []newFile) error {
	for _, f := range files {
		if _, err := os.Lstat(f.path); err == nil {
			return fmt.Errorf("%s: %s already exists; not overwriting it (move it away or choose another --out-dir)", name, f.path)
		}
	}
	if dir := filepath.Dir(files[0].path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	var written []string
	for _, f := range files {
		err := writeExclusive(f.path, f.data, f.perm)
		if err != nil {
			for _, p := range written {
				os.Remove(p)
			}
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s: %s already exists; not overwriting it", name, f.path)
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		written = append(written, f.path)
	}
	return nil
}

// writeExclusive creates path with perm (whatever the umask leaves of it)
// and writes data, failing if path exists.
func writeExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
