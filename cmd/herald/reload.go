package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// reloader is something serve re-reads on SIGHUP without a restart: the
// API's TLS certificate now, more (such as peer TLS) as they come. A
// reload that fails must leave the previous state in use.
type reloader struct {
	what   string // for the log, e.g. "API TLS certificate"
	reload func() error
}

// runReloaders runs every reloader once, in order, and logs each outcome.
func runReloaders(log *slog.Logger, rs []reloader) {
	for _, r := range rs {
		if err := r.reload(); err != nil {
			log.Error("reload failed; keeping the previous one", "what", r.what, "error", err)
			continue
		}
		log.Info("reloaded", "what", r.what)
	}
}

// watchSIGHUP runs the reloaders on every SIGHUP until stop is called.
// Without reloaders it does not touch SIGHUP, whose default action (exit)
// then stays. stop waits for a reload in progress to finish.
func watchSIGHUP(log *slog.Logger, rs []reloader) (stop func()) {
	if len(rs) == 0 {
		return func() {}
	}
	hup := make(chan os.Signal, 1) // signals that arrive during a reload coalesce
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading")
				runReloaders(log, rs)
			case <-done:
				return
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// certReloader serves a certificate and key pair from files that can be
// re-read at any time; handshakes always see a complete pair, the old one
// until a new pair has loaded.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]
}

// newCertReloader loads the pair for the first time.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the files again; on any error the current pair stays.
func (r *certReloader) reload() error {
	c, err := loadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cur.Store(c)
	leaf := c.Leaf
	r.log.Info("TLS certificate loaded", "cert", r.certFile, "subject", leaf.Subject.String(),
		"names", strings.Join(certNames(leaf), ","), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC())
	if now := time.Now(); now.After(leaf.NotAfter) {
		r.log.Warn("the TLS certificate has expired", "cert", r.certFile, "not_after", leaf.NotAfter.UTC())
	} else if now.Before(leaf.NotBefore) {
		r.log.Warn("the TLS certificate is not valid yet", "cert", r.certFile, "not_before", leaf.NotBefore.UTC())
	}
	return nil
}

// getCertificate is the tls.Config hook.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// certificate returns the pair in use.
func (r *certReloader) certificate() *tls.Certificate { return r.cur.Load() }

// serverTLSConfig is the API's TLS configuration: TLS 1.2 or later, with
// the certificate from r.
func serverTLSConfig(r *certReloader) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

// loadKeyPair reads a PEM certificate chain and its private key. Errors
// name the file at fault, in one line.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s: %v", certFile, pathErr(err))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-key %s: %v", keyFile, pathErr(err))
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		switch {
		case strings.Contains(msg, "certificate input"), strings.HasPrefix(msg, "x509:"):
			return nil, fmt.Errorf("--tls-cert %s: %s", certFile, msg)
		case strings.Contains(msg, "key input"), strings.Contains(msg, "parse private key"), strings.Contains(msg, "unknown private key"):
			return nil, fmt.Errorf("--tls-key %s: %s", keyFile, msg)
		}
		return nil, fmt.Errorf("--tls-cert %s and --tls-key %s: %s", certFile, keyFile, msg)
	}
	if c.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %v", certFile, err)
		}
	}
	return &c, nil
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}
