package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/store"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// checkNoGoroutineLeak fails the test if, once every cleanup registered
// after it has run, more goroutines are left than when it was called.
func checkNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines before, %d after closing:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			<-time.After(10 * time.Millisecond)
		}
	})
}

// testPKI is a CA with its files in a temp dir.
type testPKI struct {
	dir           string
	caCert, caKey []byte
	caFile        string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	certPEM, keyPEM, err := NewCA("Herald test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: t.TempDir(), caCert: certPEM, caKey: keyPEM}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writeFile(t, p.caFile, certPEM)
	return p
}

// issue writes a certificate for node id, valid for 127.0.0.1, and returns
// its files.
func (p *testPKI) issue(t *testing.T, id string) *TLSFiles {
	t.Helper()
	f := &TLSFiles{CertFile: filepath.Join(p.dir, id+".pem"), KeyFile: filepath.Join(p.dir, id+"-key.pem"), CAFile: p.caFile}
	p.reissue(t, f, id, []net.IP{net.IPv4(127, 0, 0, 1)})
	return f
}

// reissue overwrites f's certificate and key with new ones.
func (p *testPKI) reissue(t *testing.T, f *TLSFiles, id string, ips []net.IP) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM, err := NewNodeCert(p.caCert, p.caKey, id, ips, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.CertFile, certPEM)
	writeFile(t, f.KeyFile, keyPEM)
	c, _ := parseCertPEM(certPEM)
	return c
}

// clientConfig is a TLS client configuration presenting id's certificate
// from this CA and trusting rootsFrom's CA (nil: no client certificate).
func (p *testPKI) clientConfig(t *testing.T, id string, roots *testPKI) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots.caCert)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if id != "" {
		certPEM, keyPEM, err := NewNodeCert(p.caCert, p.caKey, id, []net.IP{net.IPv4(127, 0, 0, 1)}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// logRecorder is an slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// messages returns the messages logged at level or above since mark, and a
// new mark.
func (l *logRecorder) messages(level slog.Level, mark int) ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs[mark:] {
		if r.Level >= level {
			out = append(out, r.Message)
		}
	}
	return out, len(l.recs)
}

type testNode struct {
	*Node
	st   *store.Store
	logs *logRecorder
}

// openTestNode opens a node on 127.0.0.1 with a free port. Peers that do
// not include id make it wait to be added.
func openTestNode(t *testing.T, id string, peers []Peer, files *TLSFiles, handler http.Handler) *testNode {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	n, err := Open(Config{NodeID: id, RaftAddr: "127.0.0.1:0", Dir: dir, Store: st, Peers: peers,
		TLS: files, PeerHandler: handler, Logger: slog.New(logs)})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close %s: %v", id, err)
		}
		st.Close()
	})
	return &testNode{Node: n, st: st, logs: logs}
}

// echoHandler answers "<node> <path> <peer certificate CN> <its serial>".
func echoHandler(id string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, serial := "-", "-"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peer = r.TLS.PeerCertificates[0].Subject.CommonName
			serial = r.TLS.PeerCertificates[0].SerialNumber.String()
		}
		fmt.Fprintf(w, "%s %s %s %s", id, r.URL.Path, peer, serial)
	})
}

// startCluster starts n1 (bootstrapping alone), then n2 and n3, added as
// voters; files[i] is node i's TLS (nil entries or a nil slice: plain).
func startCluster(t *testing.T, files []*TLSFiles) []*testNode {
	t.Helper()
	tlsOf := func(i int) *TLSFiles {
		if files == nil {
			return nil
		}
		return files[i]
	}
	n1 := openTestNode(t, "n1", nil, tlsOf(0), echoHandler("n1"))
	waitFor(t, "n1 to lead", func() bool { id, _ := n1.Leader(); return id == "n1" })
	nodes := []*testNode{n1}
	for i, id := range []string{"n2", "n3"} {
		n := openTestNode(t, id, []Peer{{ID: "n1", RaftAddr: n1.RaftAddr()}}, tlsOf(i+1), echoHandler(id))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n1.AddVoter(ctx, id, n.RaftAddr())
		cancel()
		if err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		waitFor(t, n.ID()+" to follow n1", func() bool { id, _ := n.Leader(); return id == "n1" && len(n.Status().Servers) == 3 })
	}
	return nodes
}

// checkReplicates applies a PutNode on the leader and waits for it in every
// node's store.
func checkReplicates(t *testing.T, nodes []*testNode, apiAddr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := store.Command{PutNode: &store.Node{ID: "n1", APIAddr: apiAddr, RaftAddr: nodes[0].RaftAddr()}}
	if _, err := nodes[0].Apply(ctx, cmd); err != nil {
		t.Fatalf("apply on the leader: %v", err)
	}
	for _, n := range nodes {
		waitFor(t, n.ID()+"'s store to have the command", func() bool {
			got, err := n.st.Nodes()
			return err == nil && slices.ContainsFunc(got, func(x store.Node) bool { return x.ID == "n1" && x.APIAddr == apiAddr })
		})
	}
}

// rogueStream is a raft.StreamLayer for a process outside the cluster,
// dialling with TLS when cfg is set.
type rogueStream struct {
	net.Listener
	cfg *tls.Config
}

func (s *rogueStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.cfg == nil {
		return d.Dial("tcp", string(addr))
	}
	return tls.DialWithDialer(d, "tcp", string(addr), s.cfg)
}

// newRogue returns raft's own network transport for an outsider: plain TCP
// (raft.NewTCPTransport) when cfg is nil, else TLS with cfg.
func newRogue(t *testing.T, cfg *tls.Config) *raft.NetworkTransport {
	t.Helper()
	var tr *raft.NetworkTransport
	if cfg == nil {
		var err error
		if tr, err = raft.NewTCPTransport("127.0.0.1:0", nil, 1, 2*time.Second, io.Discard); err != nil {
			t.Fatal(err)
		}
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr = raft.NewNetworkTransport(&rogueStream{Listener: ln, cfg: cfg}, 1, 2*time.Second, io.Discard)
	}
	t.Cleanup(func() {
		tr.CloseStreams()
		tr.Close()
	})
	return tr
}

const forgedID = "forged"

// forge sends target a RequestVote and an AppendEntries of a forged entry
// (a PutNode of node "forged"), both with a much higher term and matching
// target's log, as a rogue leader would. It returns the term used and the
// RPCs' errors.
func forge(t *testing.T, rogue *raft.NetworkTransport, target *testNode) (term uint64, voteErr, appendErr error) {
	t.Helper()
	stats := target.raft.Stats()
	last, lastTerm := statNum(stats, "last_log_index"), statNum(stats, "last_log_term")
	term = statNum(stats, "term") + 100
	data, err := store.EncodeBatch([]store.Command{{PutNode: &store.Node{ID: forgedID, APIAddr: "203.0.113.9:1", RaftAddr: "203.0.113.9:2"}}})
	if err != nil {
		t.Fatal(err)
	}
	header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte(rogue.LocalAddr())}
	addr := raft.ServerAddress(target.RaftAddr())
	var vote raft.RequestVoteResponse
	voteErr = rogue.RequestVote(raft.ServerID(target.ID()), addr, &raft.RequestVoteRequest{
		RPCHeader: header, Term: term, LastLogIndex: last + 1000, LastLogTerm: term,
	}, &vote)
	var resp raft.AppendEntriesResponse
	appendErr = rogue.AppendEntries(raft.ServerID(target.ID()), addr, &raft.AppendEntriesRequest{
		RPCHeader:         header,
		Term:              term,
		PrevLogEntry:      last,
		PrevLogTerm:       lastTerm,
		Entries:           []*raft.Log{{Index: last + 1, Term: term, Type: raft.LogCommand, Data: data}},
		LeaderCommitIndex: last + 1,
	}, &resp)
	return term, voteErr, appendErr
}

// checkUntouched checks that nodes hold no forged entry and never took
// the forged term.
func checkUntouched(t *testing.T, nodes []*testNode, forgedTerm uint64) {
	t.Helper()
	for _, n := range nodes {
		stats := n.raft.Stats()
		if term, lastTerm := statNum(stats, "term"), statNum(stats, "last_log_term"); term >= forgedTerm || lastTerm >= forgedTerm {
			t.Errorf("%s: term %d, last log term %d: it took the rogue's term %d", n.ID(), term, lastTerm, forgedTerm)
		}
		got, err := n.st.Nodes()
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(got, func(x store.Node) bool { return x.ID == forgedID }) {
			t.Errorf("%s: the forged entry reached the store", n.ID())
		}
	}
}

// peerGet GETs url with c and returns the body and the response.
func peerGet(c *http.Client, url string) (string, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp, err
}

// tlsHTTPClient is a plain HTTP/1.1 client with cfg, closed at cleanup.
func tlsHTTPClient(t *testing.T, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestPeerMTLSCluster runs a three-node cluster on 127.0.0.1 with mutual
// TLS on the peer ports and attacks it from outside.
func TestPeerMTLSCluster(t *testing.T) {
	checkNoGoroutineLeak(t)
	pki := newTestPKI(t)
	files := []*TLSFiles{pki.issue(t, "n1"), pki.issue(t, "n2"), pki.issue(t, "n3")}
	nodes := startCluster(t, files)
	n1, n2 := nodes[0], nodes[1]

	t.Run("replicates", func(t *testing.T) {
		checkReplicates(t, nodes, "127.0.0.1:1")
	})

	// A member's certificate does get through: the RPCs below are well
	// formed, and fail in the next subtests for want of one.
	t.Run("member certificate passes", func(t *testing.T) {
		rogue := newRogue(t, pki.clientConfig(t, "n9", pki))
		var resp raft.RequestVoteResponse
		err := rogue.RequestVote("n2", raft.ServerAddress(n2.RaftAddr()), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n9"), Addr: []byte(rogue.LocalAddr())},
		}, &resp)
		if err != nil || resp.Granted {
			t.Fatalf("a stale vote request with a CA-signed certificate: err %v, granted %v; want an answer, not granted", err, resp.Granted)
		}
	})

	otherCA := newTestPKI(t)
	for _, tt := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"plain TCP", nil},
		{"certificate from another CA", otherCA.clientConfig(t, "n1", pki)},
		{"no client certificate", pki.clientConfig(t, "", pki)},
	} {
		t.Run("rogue with "+tt.name+" cannot append", func(t *testing.T) {
			_, mark := n2.logs.messages(slog.LevelDebug, 0)
			rogue := newRogue(t, tt.cfg)
			term, voteErr, appendErr := forge(t, rogue, n2)
			if voteErr == nil || appendErr == nil {
				t.Fatalf("RequestVote error %v, AppendEntries error %v: want both to fail", voteErr, appendErr)
			}
			t.Logf("refused: RequestVote: %v; AppendEntries: %v", voteErr, appendErr)
			checkUntouched(t, nodes, term)
			if errs, _ := n2.logs.messages(slog.LevelWarn, mark); len(errs) > 0 {
				t.Errorf("a rejected connection logged at warn or above: %q", errs)
			}
			if debug, _ := n2.logs.messages(slog.LevelDebug, mark); !slices.ContainsFunc(debug, func(m string) bool { return strings.Contains(m, "handshake failed") }) {
				t.Errorf("no debug record of the failed handshake, got %q", debug)
			}
		})
	}
	// Everything refused above leaves the cluster working.
	checkReplicates(t, nodes, "127.0.0.1:2")

	t.Run("peer HTTP", func(t *testing.T) {
		url := n1.PeerURL(n2.RaftAddr(), "/internal/echo")
		if want := "https://" + n2.RaftAddr() + "/internal/echo"; url != want {
			t.Fatalf("PeerURL %q, want %q", url, want)
		}
		body, resp, err := peerGet(n1.PeerClient(), url)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(body, "n2 /internal/echo n1 ") || resp.StatusCode != 200 {
			t.Errorf("status %d, body %q: want n2's handler seeing n1's certificate", resp.StatusCode, body)
		}
		if resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "n2" {
			t.Errorf("proto %s, TLS %v: want HTTP/1.1 to n2's certificate", resp.Proto, resp.TLS != nil)
		}
		for name, c := range map[string]*http.Client{
			"no client certificate":       tlsHTTPClient(t, pki.clientConfig(t, "", pki)),
			"certificate from another CA": tlsHTTPClient(t, otherCA.clientConfig(t, "n1", pki)),
		} {
			if body, _, err := peerGet(c, url); err == nil {
				t.Errorf("a client with %s got %q", name, body)
			}
		}
		if body, _, err := peerGet(tlsHTTPClient(t, nil), "http://"+n2.RaftAddr()+"/internal/echo"); err == nil {
			t.Errorf("plain HTTP got %q", body)
		}
	})

	t.Run("ReloadTLS", func(t *testing.T) {
		// n1 gets a new certificate from the same CA.
		newCert := pki.reissue(t, files[0], "n1", []net.IP{net.IPv4(127, 0, 0, 1)})
		if err := n1.ReloadTLS(); err != nil {
			t.Fatal(err)
		}
		checkServes(t, n1, pki, newCert.SerialNumber)
		checkPresents(t, n1, n2, newCert.SerialNumber)
		if got := n1.PeerCertificate(); got == nil || got.SerialNumber.Cmp(newCert.SerialNumber) != 0 {
			t.Errorf("PeerCertificate %v, want serial %v", got, newCert.SerialNumber)
		}

		// Bad files: an error naming the file, and the new certificate
		// stays in use.
		keyPEM, _ := os.ReadFile(files[0].KeyFile)
		certPEM, _ := os.ReadFile(files[0].CertFile)
		_, otherKey, _ := NewNodeCert(pki.caCert, pki.caKey, "n1", []net.IP{net.IPv4(127, 0, 0, 1)}, nil, time.Hour)
		for _, bad := range []struct {
			what, file string
			data       []byte
		}{
			{"a key of another certificate", files[0].KeyFile, otherKey},
			{"a garbage certificate", files[0].CertFile, []byte("not PEM")},
			{"a garbage CA", files[0].CAFile, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
		} {
			old, _ := os.ReadFile(bad.file)
			writeFile(t, bad.file, bad.data)
			err := n1.ReloadTLS()
			if err == nil || !strings.Contains(err.Error(), bad.file) {
				t.Errorf("reload with %s: error %v, want one naming %s", bad.what, err, bad.file)
			}
			writeFile(t, bad.file, old)
			checkServes(t, n1, pki, newCert.SerialNumber)
		}
		if err := os.Remove(files[0].KeyFile); err != nil {
			t.Fatal(err)
		}
		if err := n1.ReloadTLS(); err == nil || !strings.Contains(err.Error(), files[0].KeyFile) {
			t.Errorf("reload with the key file missing: error %v, want one naming it", err)
		}
		writeFile(t, files[0].KeyFile, keyPEM)
		writeFile(t, files[0].CertFile, certPEM)
		checkPresents(t, n1, n2, newCert.SerialNumber)
		// Raft still works, also over connections dialled from now on.
		n1.peer.net.trans.CloseStreams()
		checkReplicates(t, nodes, "127.0.0.1:3")
	})
}

// checkServes checks that a new handshake with n gets serial.
func checkServes(t *testing.T, n *testNode, pki *testPKI, serial *big.Int) {
	t.Helper()
	conn, err := tls.Dial("tcp", n.RaftAddr(), pki.clientConfig(t, "n9", pki))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(serial) != 0 {
		t.Errorf("%s serves serial %v, want %v", n.ID(), got, serial)
	}
}

// checkPresents checks that from's new connections present serial.
func checkPresents(t *testing.T, from, to *testNode, serial *big.Int) {
	t.Helper()
	from.PeerClient().CloseIdleConnections()
	body, _, err := peerGet(from.PeerClient(), from.PeerURL(to.RaftAddr(), "/serial"))
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(body); len(f) != 4 || f[3] != serial.String() {
		t.Errorf("%s saw %q from %s, want serial %v", to.ID(), body, from.ID(), serial)
	}
}

// TestPeerTLSVerifiesDialledHost: a peer's certificate must name the host
// it is dialled by, for Raft and for HTTP.
func TestPeerTLSVerifiesDialledHost(t *testing.T) {
	checkNoGoroutineLeak(t)
	pki := newTestPKI(t)
	n1 := openTestNode(t, "n1", nil, pki.issue(t, "n1"), echoHandler("n1"))
	wrong := pki.issue(t, "n2")
	pki.reissue(t, wrong, "n2", []net.IP{net.IPv4(127, 0, 0, 2)}) // not the 127.0.0.1 it listens on
	n2 := openTestNode(t, "n2", nil, wrong, echoHandler("n2"))

	var hostErr x509.HostnameError
	if _, _, err := peerGet(n1.PeerClient(), n1.PeerURL(n2.RaftAddr(), "/")); !errors.As(err, &hostErr) {
		t.Errorf("HTTP to a peer whose certificate names another host: %v, want a hostname error", err)
	}
	if c, err := n1.peer.net.stream.Dial(raft.ServerAddress(n2.RaftAddr()), 5*time.Second); !errors.As(err, &hostErr) {
		if c != nil {
			c.Close()
		}
		t.Errorf("Raft dial to a peer whose certificate names another host: %v, want a hostname error", err)
	}
	// The other way round works: n1's certificate names 127.0.0.1.
	if body, _, err := peerGet(n2.PeerClient(), n2.PeerURL(n1.RaftAddr(), "/x")); err != nil || !strings.HasPrefix(body, "n1 /x n2 ") {
		t.Errorf("n2 to n1: %q, %v", body, err)
	}
}

// TestOpenBadTLSFiles: Open fails with one error naming the bad file.
func TestOpenBadTLSFiles(t *testing.T) {
	pki := newTestPKI(t)
	good := pki.issue(t, "n1")
	other := newTestPKI(t).issue(t, "n1")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("hello"))
	missing := filepath.Join(dir, "missing.pem")
	for name, tt := range map[string]struct {
		files TLSFiles
		want  string
	}{
		"missing certificate":  {TLSFiles{missing, good.KeyFile, good.CAFile}, missing},
		"missing key":          {TLSFiles{good.CertFile, missing, good.CAFile}, missing},
		"missing CA":           {TLSFiles{good.CertFile, good.KeyFile, missing}, missing},
		"garbage certificate":  {TLSFiles{garbage, good.KeyFile, good.CAFile}, garbage},
		"garbage key":          {TLSFiles{good.CertFile, garbage, good.CAFile}, garbage},
		"garbage CA":           {TLSFiles{good.CertFile, good.KeyFile, garbage}, garbage},
		"key of another":       {TLSFiles{good.CertFile, other.KeyFile, good.CAFile}, other.KeyFile},
		"certificate of other": {TLSFiles{other.CertFile, other.KeyFile, good.CAFile}, other.CertFile},
		"no CA file":           {TLSFiles{good.CertFile, good.KeyFile, ""}, "no CA file"},
	} {
		st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		n, err := Open(Config{NodeID: "n1", RaftAddr: "127.0.0.1:0", Dir: t.TempDir(), Store: st, TLS: &tt.files})
		if err == nil {
			n.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "cluster: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q, want one line naming %q", name, err, tt.want)
		}
		st.Close()
	}
}

// TestPeerPortRouting: silent, slow and garbage connections neither block
// peers nor log above debug, and the byte read to route a connection
// reaches Raft and HTTP intact (the other tests exercise both).
func TestPeerPortRouting(t *testing.T) {
	checkNoGoroutineLeak(t)
	defer func(d time.Duration) { peerRouteTimeout = d }(peerRouteTimeout)
	peerRouteTimeout = 300 * time.Millisecond
	pki := newTestPKI(t)
	n1 := openTestNode(t, "n1", nil, pki.issue(t, "n1"), echoHandler("n1"))
	n2 := openTestNode(t, "n2", nil, pki.issue(t, "n2"), echoHandler("n2"))
	_, mark := n1.logs.messages(slog.LevelDebug, 0)

	dial := func() net.Conn {
		c, err := net.Dial("tcp", n1.RaftAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Silent connections, up to the per-host limit, do not keep a peer out.
	silent := []net.Conn{}
	for range maxPendingPerHost - 1 {
		silent = append(silent, dial())
	}
	n2.PeerClient().CloseIdleConnections()
	if body, _, err := peerGet(n2.PeerClient(), n2.PeerURL(n1.RaftAddr(), "/a")); err != nil || !strings.HasPrefix(body, "n1 /a n2 ") {
		t.Fatalf("with silent connections open: %q, %v", body, err)
	}
	// ... and are closed at the deadline.
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a silent connection: %v, want EOF when the server gives up", err)
		}
	}
	// Garbage, plain HTTP and a TLS client that stops after its handshake.
	for _, junk := range []string{"\x00\x01\x02", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x16\x03\x01\x00\x05hello", "SSH-2.0-scanner\r\n"} {
		c := dial()
		c.Write([]byte(junk))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("after %q: %v, want the server to close", junk, err)
		}
	}
	tc, err := tls.Dial("tcp", n1.RaftAddr(), pki.clientConfig(t, "n9", pki))
	if err != nil {
		t.Fatal(err)
	}
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a TLS client sending nothing: %v, want EOF at the deadline", err)
	}
	tc.Close()
	// A first byte that is neither Raft nor HTTP is dropped.
	tc, err = tls.Dial("tcp", n1.RaftAddr(), pki.clientConfig(t, "n9", pki))
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0x7f})
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after byte 0x7f: %v, want EOF", err)
	}
	tc.Close()
	if msgs, _ := n1.logs.messages(slog.LevelWarn, mark); len(msgs) > 0 {
		t.Errorf("scanner traffic logged above debug: %q", msgs)
	}

	// Past the per-host limit a connection is closed at once.
	n1.peer.net.mu.Lock()
	pending := len(n1.peer.net.pending)
	n1.peer.net.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d connections pending after all were answered", pending)
	}
	peerRouteTimeout = 10 * time.Second
	n3 := openTestNode(t, "n3", nil, pki.issue(t, "n3"), echoHandler("n3"))
	var conns []net.Conn
	for range maxPendingPerHost {
		c, err := net.Dial("tcp", n3.RaftAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitFor(t, "the connections to be pending", func() bool {
		n3.peer.net.mu.Lock()
		defer n3.peer.net.mu.Unlock()
		return len(n3.peer.net.pending) == maxPendingPerHost
	})
	over, err := net.Dial("tcp", n3.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a connection over the per-host limit: %v, want EOF at once", err)
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestPlainPeerPort: without TLS the peer port works as before, for Raft
// and HTTP, and is open to anyone, which is what peer TLS is for.
func TestPlainPeerPort(t *testing.T) {
	checkNoGoroutineLeak(t)
	nodes := startCluster(t, nil)
	n1, n2 := nodes[0], nodes[1]
	checkReplicates(t, nodes, "127.0.0.1:1")

	url := n1.PeerURL(n2.RaftAddr(), "internal/echo")
	if want := "http://" + n2.RaftAddr() + "/internal/echo"; url != want {
		t.Fatalf("PeerURL %q, want %q", url, want)
	}
	body, resp, err := peerGet(n1.PeerClient(), url)
	if err != nil || body != "n2 /internal/echo - -" || resp.ProtoMajor != 1 {
		t.Fatalf("peer HTTP: %q, %v", body, err)
	}
	if err := n1.ReloadTLS(); err == nil {
		t.Error("ReloadTLS without TLS succeeded")
	}
	if c := n1.PeerCertificate(); c != nil {
		t.Errorf("PeerCertificate without TLS: %v", c.Subject)
	}

	// The attack the TLS tests repel succeeds here: a rogue leader's entry
	// reaches n2's store.
	term, voteErr, appendErr := forge(t, newRogue(t, nil), n2)
	if voteErr != nil || appendErr != nil {
		t.Fatalf("rogue RPCs on a plain port: %v, %v", voteErr, appendErr)
	}
	waitFor(t, "the forged entry in n2's store", func() bool {
		got, err := n2.st.Nodes()
		return err == nil && slices.ContainsFunc(got, func(x store.Node) bool { return x.ID == forgedID })
	})
	if got := statNum(n2.raft.Stats(), "term"); got < term {
		t.Errorf("n2's term %d, want the rogue's %d", got, term)
	}
}

// TestPeerDialWithTransport: with Config.Transport there is no listener,
// and PeerClient dials through PeerDial.
func TestPeerDialWithTransport(t *testing.T) {
	checkNoGoroutineLeak(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: echoHandler("mem2")}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, trans := raft.NewInmemTransport("mem1")
	var mu sync.Mutex
	var dialled []string
	n, err := Open(Config{NodeID: "mem1", Dir: dir, Store: st, Transport: trans,
		PeerDial: func(ctx context.Context, addr string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			dialled = append(dialled, addr)
			return (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.peer.net != nil {
		t.Error("a node with Config.Transport listens")
	}
	body, _, err := peerGet(n.PeerClient(), n.PeerURL("mem2", "/x"))
	if err != nil || body != "mem2 /x - -" {
		t.Fatalf("PeerClient through PeerDial: %q, %v", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(dialled, []string{"mem2:80"}) {
		t.Errorf("PeerDial got %q, want mem2:80", dialled)
	}
	n.PeerClient().CloseIdleConnections()
}

// TestCloseEndsPeerGoroutines: Close ends the goroutines serving the peer
// port even when the clients keep their connections open: a Raft
// connection, an idle HTTP keep-alive one and one still in its handshake.
func TestCloseEndsPeerGoroutines(t *testing.T) {
	pki := newTestPKI(t)
	n1 := openTestNode(t, "n1", nil, pki.issue(t, "n1"), echoHandler("n1"))
	waitFor(t, "n1 to lead", func() bool { id, _ := n1.Leader(); return id == "n1" })

	rogue := newRogue(t, pki.clientConfig(t, "n9", pki))
	var resp raft.RequestVoteResponse
	if err := rogue.RequestVote("n1", raft.ServerAddress(n1.RaftAddr()), &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n9"), Addr: []byte(rogue.LocalAddr())},
	}, &resp); err != nil {
		t.Fatal(err)
	}
	client := tlsHTTPClient(t, pki.clientConfig(t, "n9", pki))
	if _, _, err := peerGet(client, n1.PeerURL(n1.RaftAddr(), "/")); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", n1.RaftAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "the silent connection to be pending", func() bool {
		n1.peer.net.mu.Lock()
		defer n1.peer.net.mu.Unlock()
		return len(n1.peer.net.pending) == 1
	})

	_, mark := n1.logs.messages(slog.LevelDebug, 0)
	start := time.Now()
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if msgs, _ := n1.logs.messages(slog.LevelWarn, mark); len(msgs) > 0 {
		t.Errorf("Close logged %q", msgs)
	}
	serving := []string{"raft.(*NetworkTransport).handleConn", "net/http.(*conn).serve", "herald/cluster.(*peerNet)"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		i := slices.IndexFunc(serving, func(s string) bool { return strings.Contains(stacks, s) })
		if i < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Close, %s still runs:\n%s", serving[i], stacks)
		}
		<-time.After(10 * time.Millisecond)
	}
}
