package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/heraldhq/herald/engine"
)

func init() {
	commands["serve"] = command{summary: "run a Herald node (API, Raft, delivery)", run: runServe}
}

// serveConfig is what the serve command's flags and environment produce.
type serveConfig struct {
	dataDir           string
	httpAddr          string
	raftAddr          string
	nodeID            string
	peers             []engine.Peer
	apiToken          string
	allowPrivate      bool
	retrySchedule     []time.Duration
	attemptTimeout    time.Duration
	maxInflight       int
	breakerFailures   int
	breakerPeriod     time.Duration
	disableAfter      time.Duration
	overrideSignature string
	publicURL         string
	logFormat         string
	logLevel          slog.Level
	debugAddr         string
	metricsTop        int    // endpoints with their own failure series
	tlsCert           string // with tlsKey: serve the API over HTTPS
	tlsKey            string
	peerTLS           *engine.TLSFiles // nil: plain TCP between nodes (loopback only)
	sealKey           []byte           // nil: secrets stored in the clear
}

// Environment variables that serve reads when the matching flag is absent.
// The API token's two variables (HERALD_API_TOKEN, HERALD_API_TOKEN_FILE)
// are read by resolveAPIToken.
var serveEnv = map[string]string{
	"data-dir":      "HERALD_DATA_DIR",
	"http-addr":     "HERALD_HTTP_ADDR",
	"raft-addr":     "HERALD_RAFT_ADDR",
	"node-id":       "HERALD_NODE_ID",
	"peers":         "HERALD_PEERS",
	"tls-cert":      "HERALD_TLS_CERT",
	"tls-key":       "HERALD_TLS_KEY",
	"peer-tls-cert": "HERALD_PEER_TLS_CERT",
	"peer-tls-key":  "HERALD_PEER_TLS_KEY",
	"peer-tls-ca":   "HERALD_PEER_TLS_CA",
	"seal-key-file": "HERALD_SEAL_KEY_FILE",
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stderr)
}

// parseServeFlags reads the serve flags; a flag beats its environment
// variable, which beats the default. Every mistake is a usage error, and so
// is a token file that cannot be used (it is read here, so that the token
// rule below sees the token).
func parseServeFlags(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*serveConfig, error) {
	fs := newFlagSet("serve", "[flags]\n\nRuns one Herald node. With no flags: a single-node deployment with data in\n"+
		"./herald-data, the API on 127.0.0.1:8080 and Raft on 127.0.0.1:8090.", stderr)
	dataDir := fs.String("data-dir", "./"+engine.DefaultDataDir, "`dir` for the state machine, Raft log and snapshots (env HERALD_DATA_DIR)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "API listen `address` (env HERALD_HTTP_ADDR)")
	raftAddr := fs.String("raft-addr", engine.DefaultRaftAddr, "Raft listen and advertise `address` (env HERALD_RAFT_ADDR)")
	nodeID := fs.String("node-id", engine.DefaultNodeID, "this node's Raft server `ID` (env HERALD_NODE_ID)")
	peers := fs.String("peers", "", "initial voters `id=addr,...`, the same on every node; used only to bootstrap (env HERALD_PEERS; default: this node alone)")
	apiToken := fs.String("api-token", "", "the admin bearer `token`, required on /v1/* (env HERALD_API_TOKEN; tenants get theirs from herald tenants token); without one only a loopback --http-addr is allowed")
	apiTokenFile := fs.String("api-token-file", "", "read the --api-token from this `file`, which only its owner may read (env HERALD_API_TOKEN_FILE)")
	tlsCert := fs.String("tls-cert", "", "serve the API over HTTPS with this PEM certificate chain `file`, re-read on SIGHUP; needs --tls-key (env HERALD_TLS_CERT)")
	tlsKey := fs.String("tls-key", "", "the PEM private key `file` of --tls-cert (env HERALD_TLS_KEY)")
	peerCert := fs.String("peer-tls-cert", "", "put the peer port (--raft-addr) under mutual TLS with this node's PEM certificate `file` (herald tls cert), re-read on SIGHUP; needs --peer-tls-key and --peer-tls-ca (env HERALD_PEER_TLS_CERT)")
	peerKey := fs.String("peer-tls-key", "", "the PEM private key `file` of --peer-tls-cert (env HERALD_PEER_TLS_KEY)")
	peerCA := fs.String("peer-tls-ca", "", "the PEM `file` of the CA that signs every node's certificate (herald tls ca) (env HERALD_PEER_TLS_CA)")
	sealKeyFile := fs.String("seal-key-file", "", "seal endpoint secrets and signing keys (AES-256-GCM) with the 32-byte key in this `file`, the same on every node (herald keygen seal) (env HERALD_SEAL_KEY_FILE)")
	allowPrivate := fs.Bool("allow-private-networks", false, "let endpoints resolve to loopback, private and link-local addresses")
	retrySchedule := fs.String("retry-schedule", "", "comma-separated `delays` between attempts, e.g. 1s,2s,5s (default: growing delays over 24h with jitter)")
	attemptTimeout := fs.Duration("attempt-timeout", engine.DefaultAttemptTimeout, "per-attempt HTTP `timeout`")
	maxInflight := fs.Int("max-inflight", engine.DefaultMaxInflight, "at most `N` attempts in flight on this node, shared round-robin between destinations")
	breakerFailures := fs.Int("breaker-failures", engine.DefaultBreakerFailures, "open an endpoint's circuit breaker after `N` failed attempts in a row, over at least --breaker-period")
	breakerPeriod := fs.Duration("breaker-period", engine.DefaultBreakerPeriod, "the least `time` an endpoint's attempts must all fail before its breaker opens")
	disableAfter := fs.Duration("disable-after", engine.DefaultDisableAfter, "disable an endpoint whose every attempt has failed for this `long`, e.g. 120h")
	overrideSig := fs.String("override-signature", engine.SignatureEd25519, "how override deliveries are signed: `v1a` (Ed25519) or jwt (RS256)")
	publicURL := fs.String("public-url", "", "this deployment's public base `URL`, the JWT iss (default http:// + --http-addr; https:// with --tls-cert)")
	logFormat := fs.String("log-format", "text", "log `format` on stderr: text or json")
	logLevel := fs.String("log-level", "info", "the least `level` logged: debug, info, warn or error")
	debugAddr := fs.String("debug-addr", "", "serve Go's pprof profiles on this loopback `address` (default: off)")
	metricsTop := fs.Int("metrics-top-endpoints", defaultTopEndpoints, "give the `N` endpoints with the most failed attempts their own metric series (0: none)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usagef("serve takes no arguments, got %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, env := range serveEnv {
		if set[name] {
			continue
		}
		if v, ok := lookupEnv(env); ok && v != "" {
			fs.Lookup(name).Value.Set(v) // string flags: Set cannot fail
		}
	}

	cfg := &serveConfig{
		dataDir: *dataDir, httpAddr: *httpAddr, raftAddr: *raftAddr, nodeID: *nodeID,
		allowPrivate: *allowPrivate, attemptTimeout: *attemptTimeout, overrideSignature: *overrideSig,
		maxInflight: *maxInflight, breakerFailures: *breakerFailures, breakerPeriod: *breakerPeriod, disableAfter: *disableAfter,
		publicURL: *publicURL, logFormat: *logFormat, debugAddr: *debugAddr, tlsCert: *tlsCert, tlsKey: *tlsKey,
		metricsTop: *metricsTop,
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together (env HERALD_TLS_CERT, HERALD_TLS_KEY); give both or neither")
	}
	switch n := countSet(*peerCert, *peerKey, *peerCA); n {
	case 3:
		cfg.peerTLS = &engine.TLSFiles{CertFile: *peerCert, KeyFile: *peerKey, CAFile: *peerCA}
	case 0:
	default:
		return nil, usagef("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together; give all three or none")
	}
	if cfg.debugAddr != "" && !isLoopback(cfg.debugAddr) {
		return nil, usagef("--debug-addr must be a loopback address, got %q", cfg.debugAddr)
	}
	// Empty means the default to the engine; on the command line it is a
	// mistake.
	if cfg.dataDir == "" {
		return nil, usagef("--data-dir must not be empty")
	}
	if cfg.nodeID == "" {
		return nil, usagef("--node-id must not be empty")
	}
	if _, _, err := net.SplitHostPort(cfg.httpAddr); err != nil {
		return nil, usagef("--http-addr %q is not host:port", cfg.httpAddr)
	}
	if _, _, err := net.SplitHostPort(cfg.raftAddr); err != nil {
		return nil, usagef("--raft-addr %q is not host:port", cfg.raftAddr)
	}
	// The peer rule: whoever reaches the peer port controls the cluster
	// unless it is under mutual TLS, so plain TCP stays on loopback.
	if cfg.peerTLS == nil && !isLoopback(cfg.raftAddr) {
		return nil, usagef("refusing to serve the peer port on %s without mutual TLS: give --peer-tls-cert, --peer-tls-key and --peer-tls-ca (see herald tls), or use a loopback --raft-addr", cfg.raftAddr)
	}
	if *peers != "" {
		p, err := engine.ParsePeers(*peers)
		if err != nil {
			return nil, usagef("--peers: %s", strings.TrimPrefix(err.Error(), "engine: "))
		}
		cfg.peers = p
	}
	if *retrySchedule != "" {
		for _, s := range strings.Split(*retrySchedule, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return nil, usagef("--retry-schedule: %q is not a duration like 5s or 1m", strings.TrimSpace(s))
			}
			cfg.retrySchedule = append(cfg.retrySchedule, d)
		}
	}
	if cfg.attemptTimeout <= 0 {
		return nil, usagef("--attempt-timeout must be positive")
	}
	if cfg.metricsTop < 0 || cfg.metricsTop > maxTopEndpoints {
		return nil, usagef("--metrics-top-endpoints must be between 0 and %d, got %d", maxTopEndpoints, cfg.metricsTop)
	}
	if err := checkHealthFlags(cfg); err != nil {
		return nil, err
	}
	if err := cfg.engineConfig().Validate(); err != nil {
		return nil, flagError(err)
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		return nil, usagef("--log-format must be text or json, got %q", cfg.logFormat)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*logLevel)); err != nil || strings.ContainsAny(*logLevel, "+-") {
		return nil, usagef("--log-level must be debug, info, warn or error, got %q", *logLevel)
	}
	if *sealKeyFile != "" {
		key, err := readSealKey("--seal-key-file", *sealKeyFile)
		if err != nil {
			return nil, err
		}
		cfg.sealKey = key
	}
	token, err := resolveAPIToken(*apiToken, *apiTokenFile, set["api-token"], set["api-token-file"], lookupEnv)
	if err != nil {
		return nil, err
	}
	cfg.apiToken = token
	// The token rule: an API without a token may only listen on loopback.
	if cfg.apiToken == "" && !isLoopback(cfg.httpAddr) {
		return nil, usagef("refusing to serve the API on %s without --api-token (or --api-token-file, HERALD_API_TOKEN, HERALD_API_TOKEN_FILE); set a token or use a loopback --http-addr", cfg.httpAddr)
	}
	return cfg, nil
}

// maxCount bounds --max-inflight and --breaker-failures.
const maxCount = 1_000_000

// checkHealthFlags checks the flags of the node-wide cap on attempts, the
// circuit breaker and auto-disable: 0 would mean the engine's default, a
// surprise on the command line.
func checkHealthFlags(cfg *serveConfig) error {
	switch {
	case cfg.maxInflight < 1 || cfg.maxInflight > maxCount:
		return usagef("--max-inflight must be between 1 and %d, got %d", maxCount, cfg.maxInflight)
	case cfg.breakerFailures < 1 || cfg.breakerFailures > maxCount:
		return usagef("--breaker-failures must be between 1 and %d, got %d", maxCount, cfg.breakerFailures)
	case cfg.breakerPeriod <= 0:
		return usagef("--breaker-period must be positive, got %s", cfg.breakerPeriod)
	case cfg.disableAfter <= 0:
		return usagef("--disable-after must be positive, got %s", cfg.disableAfter)
	}
	return nil
}

// countSet counts the non-empty values.
func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

// engineConfig is the engine's configuration from the flags, without what
// only a running serve knows (its API address, logger and metrics). The
// JWT issuer defaults to the API's URL.
func (c *serveConfig) engineConfig() engine.Config {
	publicURL := c.publicURL
	if publicURL == "" {
		scheme := "http://"
		if c.tlsCert != "" {
			scheme = "https://"
		}
		publicURL = scheme + c.httpAddr
	}
	return engine.Config{
		DataDir:              c.dataDir,
		NodeID:               c.nodeID,
		RaftAddr:             c.raftAddr,
		PeerTLS:              c.peerTLS,
		SealKey:              c.sealKey,
		Peers:                c.peers,
		AllowPrivateNetworks: c.allowPrivate,
		RetrySchedule:        c.retrySchedule,
		AttemptTimeout:       c.attemptTimeout,
		MaxInflight:          c.maxInflight,
		BreakerFailures:      c.breakerFailures,
		BreakerPeriod:        c.breakerPeriod,
		DisableAfter:         c.disableAfter,
		OverrideSignature:    c.overrideSignature,
		PublicURL:            publicURL,
	}
}

// configFlags names the flag behind each engine.Config field serve sets.
var configFlags = map[string]string{
	"DataDir": "--data-dir", "NodeID": "--node-id", "RaftAddr": "--raft-addr", "Peers": "--peers",
	"RetrySchedule": "--retry-schedule", "AttemptTimeout": "--attempt-timeout", "MaxInflight": "--max-inflight",
	"BreakerFailures": "--breaker-failures", "BreakerPeriod": "--breaker-period", "DisableAfter": "--disable-after",
	"OverrideSignature": "--override-signature", "PublicURL": "--public-url",
}

// flagError turns the engine's verdict on the configuration into a usage
// error that names the flag.
func flagError(err error) error {
	var ce *engine.ConfigError
	if errors.As(err, &ce) {
		if flag, ok := configFlags[ce.Field]; ok {
			return usagef("%s: %s", flag, ce.Msg)
		}
	}
	return usagef("%s", strings.TrimPrefix(err.Error(), "engine: "))
}

func hasPeer(peers []engine.Peer, id string) bool {
	for _, p := range peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// isLoopback reports whether addr (host:port) listens only on loopback. An
// empty host listens on every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(format string, level slog.Level, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs a node until ctx ends, then shuts it down gracefully: the API
// stops accepting, attempts in flight finish or time out, and leadership
// is handed over.
func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) error {
	log := newLogger(cfg.logFormat, cfg.logLevel, stderr)

	// What SIGHUP re-reads: reloaders are collected while the node starts
	// and watched once it runs (see watchSIGHUP); each one keeps its
	// previous state when its reload fails. The files are read once here,
	// so that a bad one stops serve before anything is opened.
	var reloaders []reloader
	var certs *certReloader
	if cfg.tlsCert != "" {
		var err error
		if certs, err = newCertReloader(cfg.tlsCert, cfg.tlsKey, log); err != nil {
			return &usageError{msg: err.Error()} // a bad file named on the command line
		}
		reloaders = append(reloaders, reloader{what: "API TLS certificate", reload: certs.reload})
	}

	// Listen first, so the engine can publish the real address (also with
	// port 0) and a taken port fails before anything is opened.
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on --http-addr %s: %w", cfg.httpAddr, unwrapNetErr(err))
	}
	defer ln.Close()
	apiAddr := advertisedAPIAddr(ln.Addr().String(), cfg.raftAddr)
	// With TLS the public URL, the JWT issuer, defaults to https:// (the
	// engine's own default is http:// + APIAddr). APIAddr itself stays
	// host:port: it is what the cluster status shows.
	publicURL := cfg.publicURL
	if publicURL == "" { // the API's real address (its port may have been 0)
		publicURL = "http://" + apiAddr
		if certs != nil {
			publicURL = "https://" + apiAddr
		}
	}

	m := newMetrics()
	m.failures.top = cfg.metricsTop
	ecfg := cfg.engineConfig()
	ecfg.APIAddr, ecfg.Logger, ecfg.OnAttempt = apiAddr, log, m.observeAttempt
	ecfg.PublicURL = publicURL
	e, err := engine.Open(ctx, ecfg)
	if err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	m.watch(e)
	if cfg.peerTLS != nil {
		reloaders = append(reloaders, reloader{what: "peer TLS certificate", reload: e.ReloadTLS})
	}
	stopReloads := watchSIGHUP(log, reloaders)
	defer stopReloads()
	if cfg.debugAddr != "" {
		stopDebug, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			e.Close()
			return err
		}
		defer stopDebug()
	}

	srv := &http.Server{
		Handler:           newAPI(e, cfg.apiToken, log, m),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      requestTimeout + 15*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	if certs != nil {
		srv.TLSConfig = serverTLSConfig(certs)
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
	log.Info("listening", "http_addr", apiAddr, "raft_addr", raftAddrOf(ctx, e, cfg), "node_id", cfg.nodeID,
		"data_dir", cfg.dataDir, "auth", cfg.apiToken != "", "tls", certs != nil, "peer_tls", cfg.peerTLS != nil,
		"sealed", cfg.sealKey != nil, "version", readBuildInfo().Version)
	if len(cfg.peers) > 0 && !hasPeer(cfg.peers, cfg.nodeID) {
		log.Info("this node is not among --peers: it does not bootstrap, and waits to be added with `herald cluster join`",
			"node_id", cfg.nodeID)
	}

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-served:
		log.Error("API server failed", "error", serveErr)
	}

	// Let requests in flight and attempts in flight finish, within a bound.
	grace := cfg.attemptTimeout + 5*time.Second
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("API shutdown incomplete", "error", err)
		srv.Close()
	}
	ectx, cancel2 := context.WithTimeout(context.Background(), grace)
	defer cancel2()
	if err := e.Stop(ectx); err != nil && serveErr == nil {
		return fmt.Errorf("stopping the engine: %w", err)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("API server: %w", serveErr)
	}
	log.Info("stopped")
	return nil
}

// raftAddrOf returns the Raft address this node advertises, which differs
// from the flag when it asked for port 0.
func raftAddrOf(ctx context.Context, e *engine.Engine, cfg *serveConfig) string {
	st, err := e.ClusterStatus(ctx)
	if err == nil {
		for _, n := range st.Nodes {
			if n.ID == cfg.nodeID && n.RaftAddr != "" {
				return n.RaftAddr
			}
		}
	}
	return cfg.raftAddr
}

// advertisedAPIAddr is the API address the cluster status shows. A
// wildcard listen address (0.0.0.0, ::) is not dialable, so the host of the
// Raft address, which the peers already reach, stands in for it.
func advertisedAPIAddr(listen, raftAddr string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return listen
	}
	if rhost, _, err := net.SplitHostPort(raftAddr); err == nil && rhost != "" {
		return net.JoinHostPort(rhost, port)
	}
	return listen
}
