package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The peer port (Config.RaftAddr) carries Raft and the node-to-node HTTP
// API on one listener. Each accepted connection gets its TLS handshake (if
// configured) and its first byte read under a deadline, in its own
// goroutine; the byte picks the protocol: hashicorp/raft opens every RPC
// with a small type byte, HTTP with an uppercase method. The byte is then
// replayed to Raft's transport or to an http.Server.

// peerRouteTimeout bounds the TLS handshake and the wait for the first
// byte. Peers send it at once: they dial only to send a request. A variable
// for tests, read when a node opens.
var peerRouteTimeout = 5 * time.Second

const (
	// maxPendingPeerConns bounds connections not yet routed, and
	// maxPendingPerHost those from one IP address, so one scanner or slow
	// client cannot take every slot from the real peers.
	maxPendingPeerConns = 128
	maxPendingPerHost   = 16
	// maxRaftRPCType is the highest RPC type byte of hashicorp/raft v1.7.3's
	// NetworkTransport (rpcRequestPreVote). Other bytes are not routed to
	// Raft, which would log every unknown one as an error.
	maxRaftRPCType = 4
	// peerMaxPool and peerRaftTimeout are the Raft transport's connection
	// pool per peer and its I/O deadline, as raft.NewTCPTransport had them.
	peerMaxPool     = 3
	peerRaftTimeout = 10 * time.Second
	// peerDialTimeout bounds PeerClient's dial and TLS handshake;
	// peerResponseTimeout its wait for response headers, which must cover
	// a forwarded write waiting for its commit.
	peerDialTimeout     = 5 * time.Second
	peerResponseTimeout = 30 * time.Second
)

// peer is a node's side of node-to-node traffic.
type peer struct {
	tls    *peerTLS // nil: plain TCP
	client *http.Client
	net    *peerNet // nil when Config.Transport is set
}

// openPeer loads the TLS files and, unless cfg.Transport replaces it,
// listens on the peer port.
func openPeer(cfg Config, hlog hclog.Logger) (*peer, error) {
	pt, err := loadPeerTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	p := &peer{tls: pt}
	dial := (&net.Dialer{Timeout: peerDialTimeout}).DialContext
	if cfg.Transport != nil && cfg.PeerDial != nil {
		dial = func(ctx context.Context, _, addr string) (net.Conn, error) { return cfg.PeerDial(ctx, addr) }
	}
	p.client = newPeerClient(dial, pt)
	if cfg.Transport == nil {
		if p.net, err = listenPeer(cfg, pt, hlog); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newPeerClient returns the client for other nodes' peer HTTP API.
func newPeerClient(dial func(ctx context.Context, network, addr string) (net.Conn, error), pt *peerTLS) *http.Client {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	tr := &http.Transport{
		Proxy:                 nil, // never HTTP_PROXY: peers are dialled directly
		DialContext:           dial,
		ResponseHeaderTimeout: peerResponseTimeout,
		// A follower forwards as many writes at once as its clients send
		// (HTTP/1.1: one per connection). Keeping few idle meant closing
		// and re-dialling, with a TLS handshake, under load: with 4, three
		// nodes with peer TLS delivered 24 % less than without; with 64,
		// 5 % less, and without TLS 14 % more than with 4.
		MaxIdleConnsPerHost: 64,
		// Shorter than the server's IdleTimeout, so the client is the one
		// that drops an idle connection rather than reusing one the server
		// is closing.
		IdleConnTimeout: 90 * time.Second,
		Protocols:       &protocols,
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
	}
	if pt != nil {
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, peerDialTimeout)
			defer cancel()
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, pt.clientConfig(tlsHost(addr)))
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, fmt.Errorf("cluster: TLS handshake with peer %s: %w", addr, err)
			}
			return tc, nil
		}
	}
	return &http.Client{
		Transport: tr,
		// A peer never redirects; following one could send a forwarded
		// write elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// PeerClient returns the HTTP client for calling other nodes' peer HTTP API
// (Config.PeerHandler) at PeerURL: HTTP/1.1 only, no proxy, no redirects,
// bounded dial and response-header waits (no overall timeout: use the
// request's context), and the node's certificate when peer TLS is
// configured. With Config.Transport it dials through Config.PeerDial.
func (n *Node) PeerClient() *http.Client { return n.peer.client }

// PeerURL returns the URL of path on the peer HTTP API of the node whose
// Raft address is raftAddr: https:// with peer TLS, else http://.
func (n *Node) PeerURL(raftAddr, path string) string {
	scheme := "http://"
	if n.peer.tls != nil {
		scheme = "https://"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return scheme + raftAddr + path
}

// ReloadTLS re-reads the peer TLS certificate, key and CA files and uses
// them for every handshake from now on, in both directions; connections
// already established keep theirs. On any error it keeps the previous
// material and returns an error naming the file at fault.
func (n *Node) ReloadTLS() error {
	if n.peer.tls == nil {
		return errors.New("cluster: peer TLS is not configured")
	}
	return n.peer.tls.reload()
}

// PeerCertificate returns the peer TLS certificate in use (the one the last
// successful Open or ReloadTLS loaded), for logging its names and expiry;
// nil without peer TLS.
func (n *Node) PeerCertificate() *x509.Certificate {
	if n.peer.tls == nil {
		return nil
	}
	return n.peer.tls.cur.Load().cert.Leaf
}

// close closes the listener and what it feeds, if this peer owns them.
func (p *peer) close() {
	if p.net != nil {
		p.net.close()
	}
	p.client.CloseIdleConnections()
}

// peerNet is the peer port's listener and the two servers behind it.
type peerNet struct {
	ln           net.Listener
	tls          *peerTLS
	routeTimeout time.Duration
	log          *slog.Logger
	stream       *streamLayer
	httpLn       *chanListener
	srv          *http.Server
	trans        *raft.NetworkTransport

	mu      sync.Mutex // guards shut, pending, perHost and wg.Add
	shut    bool
	done    chan struct{}       // closed with shut set
	pending map[net.Conn]string // not yet routed, to their remote host
	perHost map[string]int
	wg      sync.WaitGroup // the accept loop, routing goroutines and the HTTP server
}

func listenPeer(cfg Config, pt *peerTLS, hlog hclog.Logger) (*peerNet, error) {
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen on %s: %w", cfg.RaftAddr, err)
	}
	// As raft's TCP transport did: advertise the resolved address, or the
	// listener's when port 0 picked a free one (tests).
	advertise := ln.Addr()
	if _, port, _ := net.SplitHostPort(cfg.RaftAddr); port != "0" {
		if advertise, err = net.ResolveTCPAddr("tcp", cfg.RaftAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("cluster: raft address %q: %w", cfg.RaftAddr, err)
		}
	}
	if a, ok := advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("cluster: raft address %q is not advertisable: give the address the other nodes dial", cfg.RaftAddr)
	}
	p := &peerNet{ln: ln, tls: pt, routeTimeout: peerRouteTimeout, log: cfg.Logger, pending: map[net.Conn]string{}, perHost: map[string]int{}, done: make(chan struct{})}
	p.stream = &streamLayer{chanListener: newChanListener(advertise), tls: pt, open: map[*trackedConn]struct{}{}}
	p.httpLn = newChanListener(advertise)
	handler := cfg.PeerHandler
	if handler == nil {
		handler = http.NotFoundHandler()
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	p.srv = &http.Server{
		Handler:           withTLSState(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      peerResponseTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		Protocols:         &protocols,
		ConnContext:       stashTLSState,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	p.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  p.stream,
		MaxPool: peerMaxPool,
		Timeout: peerRaftTimeout,
		Logger:  hlog,
	})
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.srv.Serve(p.httpLn) // returns ErrServerClosed at close
	}()
	go p.acceptLoop()
	return p, nil
}

func (p *peerNet) acceptLoop() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			shut := p.shut
			p.mu.Unlock()
			if shut || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("peer port: accept failed", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-p.done:
				return
			}
			continue
		}
		delay = 0
		if !p.admit(c) {
			p.log.Debug("peer port: too many connections pending, closing one", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		go p.route(c)
	}
}

// admit counts c as pending, unless closed or over the limits.
func (p *peerNet) admit(c net.Conn) bool {
	host := tlsHost(c.RemoteAddr().String())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut || len(p.pending) >= maxPendingPeerConns || p.perHost[host] >= maxPendingPerHost {
		return false
	}
	p.pending[c] = host
	p.perHost[host]++
	p.wg.Add(1)
	return true
}

func (p *peerNet) release(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	host := p.pending[c]
	delete(p.pending, c)
	if p.perHost[host]--; p.perHost[host] <= 0 {
		delete(p.perHost, host)
	}
}

// route completes the TLS handshake, reads the first byte and hands the
// connection to Raft or to the HTTP server. Failures are a peer's (or a
// scanner's) problem, logged at debug level only.
func (p *peerNet) route(c net.Conn) {
	defer p.wg.Done()
	remote := c.RemoteAddr().String()
	c.SetDeadline(time.Now().Add(p.routeTimeout))
	conn := c
	if p.tls != nil {
		tc := tls.Server(c, p.tls.listen)
		if err := tc.Handshake(); err != nil {
			p.release(c)
			c.Close()
			p.log.Debug("peer port: TLS handshake failed", "remote", remote, "error", err)
			return
		}
		conn = tc
	}
	var first [1]byte
	_, err := io.ReadFull(conn, first[:])
	p.release(c)
	if err != nil {
		conn.Close()
		p.log.Debug("peer port: no request", "remote", remote, "error", err)
		return
	}
	if err := c.SetDeadline(time.Time{}); err != nil { // closed meanwhile
		conn.Close()
		return
	}
	pc := &peekedConn{Conn: conn, first: first[0], pending: true}
	switch b := first[0]; {
	case b <= maxRaftRPCType:
		p.stream.deliver(pc)
	case 'A' <= b && b <= 'Z':
		p.httpLn.deliver(pc)
	default:
		conn.Close()
		p.log.Debug("peer port: neither Raft nor HTTP", "remote", remote, "first_byte", b)
	}
}

// close stops accepting, closes the HTTP server and the Raft transport and
// every connection they hold, and waits for the goroutines that serve them.
func (p *peerNet) close() {
	p.mu.Lock()
	p.shut = true
	close(p.done)
	p.ln.Close()
	for c := range p.pending {
		c.Close()
	}
	p.mu.Unlock()

	// Handlers see the node closed (Apply returns ErrClosed), so a short
	// grace suffices; then whatever is left is cut.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		p.srv.Close()
	}
	p.trans.CloseStreams() // releases pooled outgoing connections
	p.trans.Close()        // closes the stream layer and so every Raft connection
	p.wg.Wait()
	p.stream.waitHandlers(2 * time.Second)
}

// chanListener is a net.Listener fed with connections by route.
type chanListener struct {
	addr      net.Addr
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver hands c to Accept, or closes it if the listener is closed.
func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

// Accept implements net.Listener.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr implements net.Listener: the advertised peer address.
func (l *chanListener) Addr() net.Addr { return l.addr }

// streamLayer is the raft.StreamLayer of the peer port. Unlike raft's TCP
// stream layer it closes the connections it handed out when it is closed,
// so Raft's per-connection goroutines end with the node.
type streamLayer struct {
	*chanListener
	tls *peerTLS

	mu       sync.Mutex // guards shut and open
	shut     bool
	open     map[*trackedConn]struct{}
	handlers sync.WaitGroup // accepted connections Raft has not closed yet
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// Dial implements raft.StreamLayer, with TLS when configured: the peer's
// certificate must be signed by the CA and name address's host.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addr := string(address)
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		tc := tls.Client(c, s.tls.clientConfig(tlsHost(addr)))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("cluster: TLS handshake with peer %s: %w", addr, err)
		}
		c = tc
	}
	return s.track(c, false)
}

// deliver hands an accepted connection to Raft.
func (s *streamLayer) deliver(c net.Conn) {
	tc, err := s.track(c, true)
	if err != nil {
		return
	}
	s.chanListener.deliver(tc)
}

func (s *streamLayer) track(c net.Conn, accepted bool) (*trackedConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		c.Close()
		return nil, raft.ErrTransportShutdown
	}
	tc := &trackedConn{Conn: c, s: s, accepted: accepted}
	s.open[tc] = struct{}{}
	if accepted {
		s.handlers.Add(1)
	}
	return tc, nil
}

// Close implements raft.StreamLayer; NetworkTransport.Close calls it.
func (s *streamLayer) Close() error {
	s.chanListener.Close()
	s.mu.Lock()
	s.shut = true
	open := make([]*trackedConn, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.shutdown.Store(true)
		c.Close()
	}
	return nil
}

// waitHandlers waits, at most d, until Raft has closed every connection it
// accepted, which its per-connection goroutine does on its way out.
func (s *streamLayer) waitHandlers(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// trackedConn is a Raft connection the stream layer closes at shutdown.
type trackedConn struct {
	net.Conn
	s        *streamLayer
	accepted bool
	shutdown atomic.Bool
	once     sync.Once
}

// Read reports a read cut by the stream layer's shutdown as EOF, which Raft
// takes as a normal end of the connection instead of logging an error.
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.shutdown.Load() {
		err = io.EOF
	}
	return n, err
}

// Close implements net.Conn.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.open, c)
		c.s.mu.Unlock()
		if c.accepted {
			c.s.handlers.Done()
		}
	})
	return c.Conn.Close()
}

// peekedConn replays the byte route read before handing the connection on.
// Only the first Read can see pending, and reads on a connection are
// sequential, so it needs no lock.
type peekedConn struct {
	net.Conn
	first   byte
	pending bool
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.pending && len(p) > 0 {
		p[0] = c.first
		c.pending = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

type tlsStateKey struct{}

// stashTLSState keeps the connection's TLS state in its context: the HTTP
// server sees a peekedConn, not a *tls.Conn, and would leave Request.TLS nil.
func stashTLSState(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*peekedConn); ok {
		if tc, ok := pc.Conn.(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
	}
	return ctx
}

// withTLSState sets Request.TLS from the stashed state, so PeerHandler can
// read the peer's verified certificate (r.TLS.PeerCertificates[0]).
func withTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok && r.TLS == nil {
			r = r.WithContext(r.Context()) // a shallow copy
			r.TLS = st
		}
		h.ServeHTTP(w, r)
	})
}
