package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/store"
)

// rogueTimeout bounds each of a rogue's attempts. The nodes refuse at the
// handshake, so the attempts fail at once; this only keeps a regression
// from hanging the test.
const rogueTimeout = 5 * time.Second

// Forged requests for the node-to-node API (engine/wire.go's request).
var forgedProposals = []string{
	`{"add_node":{"id":"evil","raft_addr":"127.0.0.1:1"}}`,
	`{"create_endpoint":{"url":"http://127.0.0.1:1/x"}}`,
}

// TestPeerMTLSClusterRefusesRogues runs three herald serve processes with
// mutual TLS on their peer ports and attacks every node's peer port as a
// process that reaches it but holds no certificate of the cluster's CA:
// over plain TCP, over TLS with a certificate from another CA, and over TLS
// with no client certificate, it sends Raft RPCs with hashicorp/raft's own
// transport (an AppendEntries of a far higher term carrying a forged
// configuration and a forged command, and a RequestVote impersonating a
// member) and calls the internal API (forged proposals, a read index).
// Every attempt must fail, while the same client with a certificate from
// the cluster's CA gets answers (so the attempts were well formed); then
// the term, the membership and the endpoints must be as they were. Finally
// the cluster must still fail over under load without losing an
// acknowledged message.
func TestPeerMTLSClusterRefusesRogues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, rc, client := startTestClusterConfig(ctx, t, ClusterConfig{Nodes: 3, PeerTLS: true})
	checkKeyModes(t, c)

	lead, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := clusterStatusOf(ctx, t, c, lead)
	forgedTerm := before.Term + 1_000_000

	// The rogue's identity: a CA of its own and a certificate it signed,
	// right in every other respect (node name, SAN 127.0.0.1, both usages).
	otherCA, otherCAKey, err := cluster.NewCA("rogue CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := cluster.NewNodeCert(otherCA, otherCAKey, "evil", []net.IP{net.IPv4(127, 0, 0, 1)}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// A rogue has no reason to check the node's certificate. It sends its
	// own whatever CAs the node asks for (with Certificates, crypto/tls
	// would send none, as the node names only its CA).
	present := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &otherCert, nil }
	rogues := []struct {
		name string
		tls  *tls.Config // nil: plain TCP
	}{
		{"plain TCP", nil},
		{"TLS with another CA's certificate", &tls.Config{InsecureSkipVerify: true, GetClientCertificate: present}},
		{"TLS without a client certificate", &tls.Config{InsecureSkipVerify: true}},
	}
	for _, r := range rogues {
		for i, n := range c.Nodes {
			results := attackPeerPort(t, r.tls, n.RaftAddr, c.Nodes[(i+1)%len(c.Nodes)], before.CommitIndex, forgedTerm)
			for _, what := range slices.Sorted(maps.Keys(results)) {
				res := results[what]
				if res.err == nil {
					t.Errorf("%s: %s on %s got through: %s", r.name, what, n.ID, res.answer)
				} else if i == 0 {
					t.Logf("%s: %s refused: %v", r.name, what, res.err)
				}
			}
		}
	}

	// The positive control: the same client code with a certificate of
	// the cluster's CA gets answers from the leader.
	files, err := c.IssuePeerCert("control")
	if err != nil {
		t.Fatal(err)
	}
	member := memberTLS(t, files)
	var idx struct {
		Index uint64 `json:"index"`
		Error any    `json:"error"`
	}
	status, body, err := peerHTTP(member, http.MethodGet, c.Nodes[lead].RaftAddr, "/internal/v1/read-index", "")
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &idx) != nil || idx.Index == 0 || idx.Error != nil {
		t.Fatalf("control: read index from the leader: %d %s, %v", status, body, err)
	}
	// An empty request reaches the handler, which refuses it: nothing is
	// written, and the route is shown to take the rogues' requests.
	if status, body, err := peerHTTP(member, http.MethodPost, c.Nodes[lead].RaftAddr, "/internal/v1/propose", "{}"); err != nil || status != http.StatusBadRequest {
		t.Fatalf("control: empty proposal: %d %s, %v", status, body, err)
	}
	// A stale AppendEntries is answered with the node's term and changes
	// nothing.
	var resp raft.AppendEntriesResponse
	if err := rogueTransport(t, member).AppendEntries("", raft.ServerAddress(c.Nodes[lead].RaftAddr),
		&raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("control")}, Term: 0},
		&resp); err != nil || resp.Success || resp.Term < before.Term {
		t.Fatalf("control: stale AppendEntries: %+v, %v", resp, err)
	}
	t.Logf("control with a certificate of the cluster's CA: read index %d, AppendEntries answered with term %d", idx.Index, resp.Term)

	// Nothing the rogues sent took effect, on any node.
	for i, n := range c.Nodes {
		st := clusterStatusOf(ctx, t, c, i)
		switch {
		case st.Term >= forgedTerm:
			t.Errorf("%s: term %d: a rogue's term (from %d) was accepted", n.ID, st.Term, forgedTerm)
		case st.Term != before.Term:
			t.Logf("%s: term %d, was %d: a legitimate election meanwhile (the rogues' terms start at %d)", n.ID, st.Term, before.Term, forgedTerm)
		}
		var ids []string
		for _, m := range st.Nodes {
			ids = append(ids, m.ID)
		}
		if len(ids) != len(c.Nodes) || slices.Contains(ids, "evil") {
			t.Errorf("%s: members %v", n.ID, ids)
		}
		var eps struct {
			Data []struct {
				URL string `json:"url"`
			} `json:"data"`
		}
		one := &Client{URLs: []string{n.URL()}, HTTP: client.HTTP}
		if _, err := one.call(ctx, 0, http.MethodGet, "/v1/endpoints", nil, nil, &eps); err != nil {
			t.Fatalf("%s: list endpoints: %v", n.ID, err)
		}
		if len(eps.Data) != 1 || eps.Data[0].URL != rc.URL() {
			t.Errorf("%s: endpoints %+v, want only the receiver's", n.ID, eps.Data)
		}
	}
	if t.Failed() {
		return
	}

	// The cluster still elects, replicates and delivers over mutual TLS.
	killLeaderUnderLoad(t, ctx, c, rc, client, 600, 12)
}

// attempt is how one of a rogue's attempts ended: refused with err, or,
// if err is nil, answered.
type attempt struct {
	err    error
	answer string
}

// attackPeerPort makes every attempt of a rogue on the peer port at addr
// (with tlsConf, or plain TCP if nil) and returns how each ended. The
// RequestVote impersonates the member as, whose vote a node would grant.
func attackPeerPort(t *testing.T, tlsConf *tls.Config, addr string, as *Node, commitIndex, forgedTerm uint64) map[string]attempt {
	t.Helper()
	tr := rogueTransport(t, tlsConf)
	// A configuration that makes the rogue a voter, and a command, as the
	// leader would write them.
	conf := raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: "evil", Address: tr.LocalAddr()},
	}})
	cmd, err := store.EncodeBatch([]store.Command{{CreateEndpoint: &store.CreateEndpoint{Endpoint: store.Endpoint{
		ID: "ep_evil", URL: "http://127.0.0.1:1/x", State: "enabled", EventTypes: []string{}}}}})
	if err != nil {
		t.Fatal(err)
	}
	header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("evil"), Addr: []byte(tr.LocalAddr())}
	out := map[string]attempt{}
	var ae raft.AppendEntriesResponse
	err = tr.AppendEntries("", raft.ServerAddress(addr), &raft.AppendEntriesRequest{
		RPCHeader: header, Term: forgedTerm, PrevLogEntry: commitIndex, PrevLogTerm: 0,
		Entries: []*raft.Log{
			{Index: commitIndex + 1, Term: forgedTerm, Type: raft.LogConfiguration, Data: conf},
			{Index: commitIndex + 2, Term: forgedTerm, Type: raft.LogCommand, Data: cmd},
		},
		LeaderCommitIndex: commitIndex + 2,
	}, &ae)
	out["Raft AppendEntries"] = attempt{err, fmt.Sprintf("%+v", ae)}
	var rv raft.RequestVoteResponse
	err = tr.RequestVote("", raft.ServerAddress(addr), &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(as.ID), Addr: []byte(as.RaftAddr)},
		Term:      forgedTerm, LastLogIndex: commitIndex + 1_000_000, LastLogTerm: forgedTerm, LeadershipTransfer: true,
	}, &rv)
	out["Raft RequestVote as "+as.ID] = attempt{err, fmt.Sprintf("%+v", rv)}
	for _, p := range forgedProposals {
		status, body, err := peerHTTP(tlsConf, http.MethodPost, addr, "/internal/v1/propose", p)
		out["POST /internal/v1/propose "+p] = attempt{err, fmt.Sprintf("%d %s", status, bytes.TrimSpace(body))}
	}
	status, body, err := peerHTTP(tlsConf, http.MethodGet, addr, "/internal/v1/read-index", "")
	out["GET /internal/v1/read-index"] = attempt{err, fmt.Sprintf("%d %s", status, bytes.TrimSpace(body))}
	return out
}

// rogueTransport returns hashicorp/raft's network transport on a loopback
// port: raft.NewTCPTransport for plain TCP, else the same transport over a
// TLS stream layer. It is closed when the test ends.
func rogueTransport(t *testing.T, tlsConf *tls.Config) *raft.NetworkTransport {
	t.Helper()
	var tr *raft.NetworkTransport
	if tlsConf == nil {
		var err error
		if tr, err = raft.NewTCPTransport("127.0.0.1:0", nil, 1, rogueTimeout, io.Discard); err != nil {
			t.Fatal(err)
		}
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr = raft.NewNetworkTransport(&tlsStream{Listener: ln, conf: tlsConf}, 1, rogueTimeout, io.Discard)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// tlsStream is a raft.StreamLayer that dials over TLS.
type tlsStream struct {
	net.Listener
	conf *tls.Config
}

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.conf)
}

// peerHTTP calls path on the peer port at addr, over TLS with tlsConf, or
// plain HTTP if nil, and returns the answer's status and body.
func peerHTTP(tlsConf *tls.Config, method, addr, path, body string) (int, []byte, error) {
	scheme := "https://"
	if tlsConf == nil {
		scheme = "http://"
	}
	hc := &http.Client{Timeout: rogueTimeout, Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: nil}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(method, scheme+addr+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// memberTLS returns the client configuration of a holder of files, a
// certificate of the cluster's CA, that checks the node's certificate.
func memberTLS(t *testing.T, files *cluster.TLSFiles) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(files.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in", files.CAFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{cert}}
}

// checkKeyModes checks that the harness wrote every private key for its
// owner only.
func checkKeyModes(t *testing.T, c *Cluster) {
	t.Helper()
	keys := []string{c.PeerCA.KeyFile}
	for _, n := range c.Nodes {
		keys = append(keys, n.PeerTLS.KeyFile)
	}
	for _, k := range keys {
		fi, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", k, fi.Mode().Perm())
		}
	}
}

// clusterView is the part of GET /v1/cluster the tests read.
type clusterView struct {
	Leader      string `json:"leader"`
	Term        uint64 `json:"term"`
	CommitIndex uint64 `json:"commit_index"`
	Nodes       []struct {
		ID string `json:"id"`
	} `json:"nodes"`
}

// clusterStatusOf returns node i's view of the cluster.
func clusterStatusOf(ctx context.Context, t *testing.T, c *Cluster, i int) clusterView {
	t.Helper()
	var st clusterView
	if err := getJSON(ctx, c.Nodes[i].URL()+"/v1/cluster", c.cfg.Token, &st); err != nil {
		t.Fatalf("%s: %v", c.Nodes[i].ID, err)
	}
	return st
}
