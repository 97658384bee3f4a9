package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/engine"
)

// The HTTP API (README.md, "The HTTP API"). Where that is silent:
//
//   - Every error is {"error": {"code", "message"}} with one of the codes
//     below; unknown routes are 404 not_found, a known route with another
//     method is 405 method_not_allowed (with an Allow header).
//   - Lists are {"data": [...]}; GET /v1/messages adds "next_cursor", the
//     id to pass as ?after= for the next (older) page, null on the last.
//   - DELETE /v1/endpoints/{id} answers 204 with no body.
//   - POST /v1/endpoints/{id}/ping answers 202 with the ping message; on a
//     disabled endpoint it answers 409 conflict and sends nothing.
//   - POST /v1/messages/{id}/retry and /v1/messages/recover answer
//     200 {"requeued": n}, with "reason" when n is 0: why nothing was
//     re-queued (no failed deliveries, their endpoints disabled, …).
//   - 409 conflict is a request the current state refuses, its message
//     saying what is in the way and what to do: a ping of a disabled
//     endpoint, removing the only voter, adding a node id that is a member
//     at another address or an address another member has. Removing a
//     node that is not a member is 404.
//   - Query parameters are checked like JSON fields: a parameter the route
//     does not take (every /v1 route but the two lists takes none), one
//     given twice, or a malformed query string is 400 invalid_argument
//     naming it. A parameter given empty (?limit=) is a 400 too: only one
//     left out means its default. limit is a whole number from 1 to 250;
//     after is a next_cursor (a message id for messages, a tenant id for
//     tenants), anything else a 400, never an empty page. Routes outside
//     /v1 (JWKS, health, metrics) ignore query strings: they are fetched
//     by tools that may add their own.
//   - POST /v1/signing-keys/rotate answers 200 with the JWKS published
//     after the rotation.
//   - A repeated Idempotency-Key answers 200 with the first message in the
//     creation shape (its current status) and the header
//     Idempotent-Replayed: true.
//   - 503 answers carry Retry-After: 1.
//   - A node too far behind the leader (engine.Engine.CatchingUp: it
//     rejoined after a long absence, or installs a snapshot) answers every
//     /v1 request at once with 503 unavailable, before reading any token,
//     so that clients move on to another node instead of waiting for it to
//     catch up; GET /v1/cluster, this node's own view, is still answered,
//     and /readyz answers not ready.
//   - POST, PUT and PATCH on /v1/* need Content-Type: application/json
//     (parameters such as charset allowed), even with an empty body, or
//     answer 415 unsupported_media_type. A web page cannot send that
//     content type cross-origin without a CORS preflight, which Herald
//     never grants, so a form or text/plain post from a browser (CSRF) is
//     refused. DELETE needs no content type: no route takes a body with
//     it, and a page cannot send it cross-origin without a preflight
//     either.
//   - Every request that is not GET, HEAD or OPTIONS and that a browser
//     marks as cross-origin (Sec-Fetch-Site, or an Origin other than the
//     Host) answers 403 forbidden. Clients other than browsers send
//     neither header and are not affected.
//   - Without an API token (loopback-only mode) a request whose Host is
//     not a loopback name (localhost, 127.0.0.0/8, [::1], with any port)
//     answers 421 misdirected_request, on every path, /healthz and /readyz
//     included (the listener is loopback-only then, so a probe that
//     reaches it dials a loopback address anyway). A web page that
//     rebinds its own DNS name to 127.0.0.1 reaches the port but still
//     sends its own name as Host, so this defeats DNS rebinding. 421
//     (RFC 9110: the server will not answer for that authority) rather
//     than 403, which here means a refused browser request, or 401, which
//     means the token. With a token there is no Host check: a rebinding
//     page does not know the token, and Host is then whatever name
//     clients and probes use.
//
// Tenants:
//
//   - Every /v1/endpoints… and /v1/messages… route is served twice: as
//     written, acting on the tenant "default", and under
//     /v1/tenants/{tenant}, acting on that tenant alone. One handler serves
//     both; it takes the tenant from r.PathValue("tenant"), which is "" (the
//     default tenant) on the routes without one.
//   - GET /v1/tenants lists tenants with their counts, paged like the
//     message list; DELETE /v1/tenants/{tenant} answers 204 (also for a
//     tenant that holds nothing). POST /v1/tenants/{tenant}/tokens
//     {"ttl"} answers 201 with a tenant token; ttl is a Go duration string
//     ("1h", "90m") or a whole number of seconds. DELETE
//     /v1/tenants/{tenant}/tokens revokes every token of the tenant and
//     answers 200 {"revoked": n}.
//   - Who may call what is decided once, in ServeHTTP, from the matched
//     pattern and its {tenant}: the admin token (--api-token) reaches every
//     route; a tenant token (htk_…, known to the engine, which stores it
//     hashed) only the tenantScoped routes of its own tenant, and is
//     answered 403 forbidden anywhere else under /v1 (the tenant list, the
//     token routes, other tenants, the routes without a tenant, cluster,
//     signing keys, backup); an unknown, expired or revoked htk_ token is
//     401. Outside /v1 (JWKS, health, metrics) no token is read at all.
//   - Without an admin token (loopback-only mode) a request that carries no
//     tenant token reaches everything, as before tenants; one that carries
//     a tenant token is held to that tenant exactly as with an admin token
//     set, so a token never grants more than it says, whatever the server.

// Error codes of the API.
const (
	codeInvalidArgument  = "invalid_argument"       // 400
	codeUnauthorized     = "unauthorized"           // 401
	codeForbidden        = "forbidden"              // 403, a cross-origin browser request, or a tenant token outside its tenant
	codeNotFound         = "not_found"              // 404
	codeMethodNotAllowed = "method_not_allowed"     // 405
	codeConflict         = "conflict"               // 409
	codePayloadTooLarge  = "payload_too_large"      // 413
	codeKeyReused        = "idempotency_key_reused" // 422
	codeUnsupportedMedia = "unsupported_media_type" // 415, a write without Content-Type: application/json
	codeMisdirected      = "misdirected_request"    // 421, a non-loopback Host without a token
	codeUnavailable      = "unavailable"            // 503
	codeInternal         = "internal"               // 500
)

// maxBodyBytes bounds every request body but a batch's, which
// maxBatchBodyBytes bounds.
const (
	maxBodyBytes      = engine.MaxPayloadBytes
	maxBatchBodyBytes = engine.MaxBatchBytes
)

// presizeBody is the most decode allocates for a body before reading it.
const presizeBody = 64 << 10

// bodyLimit is the body limit of a route, by its pattern.
func bodyLimit(pattern string) int64 {
	if strings.HasSuffix(pattern, "/messages/batch") {
		return maxBatchBodyBytes
	}
	return maxBodyBytes
}

// requestTimeout bounds the engine work one API call may do.
const requestTimeout = 30 * time.Second

// api serves Herald's HTTP API over one engine.
type api struct {
	e       *engine.Engine
	log     *slog.Logger
	metrics *metrics // nil: no /metrics and no request counting
	token   [sha256.Size]byte
	auth    bool // a token is set; without one, Host must be a loopback name
	mux     *http.ServeMux
	csrf    *http.CrossOriginProtection
	// patterns lists the routes of the public API ("POST /v1/endpoints"),
	// in registration order, for tests that must cover every route.
	patterns []string
	// access says, for each pattern, who may call it.
	access map[string]routeAccess
	// catchingUp is e.CatchingUp; tests replace it.
	catchingUp func() (behind uint64, far bool)
}

// routeAccess says who may call a route.
type routeAccess int

const (
	// adminOnly routes need the admin token (or nothing, without one).
	adminOnly routeAccess = iota
	// defaultTenant routes are /v1/endpoints… and /v1/messages…, the
	// tenant "default"'s: admin only too, even for that tenant's tokens.
	defaultTenant
	// tenantScoped routes, /v1/tenants/{tenant}/endpoints… and
	// /v1/tenants/{tenant}/messages…, also take a token of that tenant.
	tenantScoped
	// public routes are outside /v1, where no token is read.
	public
)

// tenantTokenPrefix starts every tenant token (engine.CreateTenantToken).
const tenantTokenPrefix = "htk_"

// newAPI returns the API handler. A non-empty token is the admin token,
// required as a bearer token on every /v1/ route unless a tenant token is
// given instead (for that tenant's routes); m may be nil.
func newAPI(e *engine.Engine, token string, log *slog.Logger, m *metrics) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &api{e: e, log: log, metrics: m, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection(),
		access: map[string]routeAccess{}, catchingUp: e.CatchingUp}
	if token != "" {
		a.auth, a.token = true, sha256.Sum256([]byte(token))
	}
	a.routes()
	return a
}

func (a *api) routes() {
	type handler = func(http.ResponseWriter, *http.Request) error
	// params are the query parameters the route takes; any other is a 400
	// on every /v1 route.
	handle := func(pattern string, access routeAccess, h handler, params ...string) {
		a.mux.Handle(pattern, a.wrap(h, access != public, params))
		a.patterns = append(a.patterns, pattern)
		a.access[pattern] = access
	}
	// One tenant's endpoints and messages, each route served as written
	// for the default tenant and under /v1/tenants/{tenant} for that one.
	tenantRoutes := []struct {
		method, path string
		h            handler
		params       []string
	}{
		{"POST", "/endpoints", a.createEndpoint, nil},
		{"GET", "/endpoints", a.listEndpoints, nil},
		{"GET", "/endpoints/{id}", a.getEndpoint, nil},
		{"PATCH", "/endpoints/{id}", a.updateEndpoint, nil},
		{"DELETE", "/endpoints/{id}", a.deleteEndpoint, nil},
		{"POST", "/endpoints/{id}/rotate-secret", a.rotateSecret, nil},
		{"POST", "/endpoints/{id}/ping", a.pingEndpoint, nil},

		{"POST", "/messages", a.createMessage, nil},
		{"POST", "/messages/batch", a.createMessageBatch, nil},
		{"GET", "/messages", a.listMessages, []string{"status", "type", "limit", "after"}},
		{"GET", "/messages/{id}", a.getMessage, nil},
		{"POST", "/messages/{id}/retry", a.retryMessage, nil},
		{"POST", "/messages/recover", a.recoverMessages, nil},
	}
	for _, rt := range tenantRoutes {
		handle(rt.method+" /v1"+rt.path, defaultTenant, rt.h, rt.params...)
	}
	for _, rt := range tenantRoutes {
		handle(rt.method+" /v1/tenants/{tenant}"+rt.path, tenantScoped, rt.h, rt.params...)
	}

	handle("GET /v1/tenants", adminOnly, a.listTenants, "limit", "after")
	handle("DELETE /v1/tenants/{tenant}", adminOnly, a.deleteTenant)
	handle("POST /v1/tenants/{tenant}/tokens", adminOnly, a.createTenantToken)
	handle("DELETE /v1/tenants/{tenant}/tokens", adminOnly, a.revokeTenantTokens)

	handle("POST /v1/signing-keys/rotate", adminOnly, a.rotateSigningKey)
	handle("GET /v1/cluster", adminOnly, a.clusterStatus)
	handle("POST /v1/cluster/nodes", adminOnly, a.addNode)
	handle("DELETE /v1/cluster/nodes/{id}", adminOnly, a.removeNode)

	handle("GET /v1/backup", adminOnly, a.backup)

	handle("GET /.well-known/jwks.json", public, a.jwks)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a.e.Ready() {
			writeText(w, http.StatusOK, "ok")
			return
		}
		w.Header().Set("Retry-After", "1")
		writeText(w, http.StatusServiceUnavailable, "not ready")
	})
	if a.metrics != nil {
		a.mux.Handle("GET /metrics", a.metrics.handler())
	}
	a.mux.Handle("/ui/", newConsole(a)) // the web console, not part of the public API
}

// ServeHTTP checks the Host (without a token) and the request's origin,
// authenticates /v1/ requests, routes them, turns the mux's own 404 and 405
// answers into JSON errors, requires JSON on writes and counts every
// request.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	h, pattern := a.mux.Handler(r)
	defer func() {
		if a.metrics != nil {
			a.metrics.observeRequest(r.Method, pattern, sw.status(), time.Since(start))
		}
	}()
	if !a.auth && !isLoopbackHost(r.Host) {
		writeError(sw, http.StatusMisdirectedRequest, codeMisdirected,
			"without an API token this server answers only requests addressed to localhost, 127.0.0.1 or [::1]")
		return
	}
	if err := a.csrf.Check(r); err != nil {
		writeError(sw, http.StatusForbidden, codeForbidden, "cross-origin requests from browsers are not allowed")
		return
	}
	if needsAuth(r.URL.Path) && pattern != "GET /v1/cluster" {
		// Before authenticating: a tenant token created a moment ago is
		// not known to a node that has not applied it yet.
		if behind, far := a.catchingUp(); far {
			a.writeErr(sw, r, &engine.CatchingUpError{Behind: behind})
			return
		}
	}
	if needsAuth(r.URL.Path) {
		p, ok := a.authenticate(sw, r)
		if !ok {
			return
		}
		if p.tenant != "" && !a.tenantMay(p.tenant, pattern, r) {
			msg := fmt.Sprintf("a token of tenant %q reaches only /v1/tenants/%s/endpoints… and /v1/tenants/%s/messages…",
				p.tenant, p.tenant, p.tenant)
			if acc := a.access[pattern]; pattern != "" && (acc == defaultTenant || acc == tenantScoped) {
				msg += fmt.Sprintf(" (herald commands: --tenant %s)", p.tenant)
			} else {
				msg += "; the rest needs the admin token"
			}
			writeError(sw, http.StatusForbidden, codeForbidden, msg)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	}
	if pattern == "" {
		a.unrouted(sw, r, h)
		return
	}
	if needsJSON(r) {
		if msg := checkJSONContentType(r.Header.Values("Content-Type")); msg != "" {
			writeError(sw, http.StatusUnsupportedMediaType, codeUnsupportedMedia, msg)
			return
		}
	}
	a.mux.ServeHTTP(sw, r)
}

// needsJSON reports whether a routed request must declare a JSON body: a
// POST, PUT or PATCH on the public API.
func needsJSON(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return strings.HasPrefix(r.URL.Path, "/v1/")
	}
	return false
}

// checkJSONContentType returns why the Content-Type header values are not
// one application/json media type, or "" if they are.
func checkJSONContentType(values []string) string {
	const want = "send Content-Type: application/json"
	switch len(values) {
	case 0:
		return "missing Content-Type; " + want
	case 1:
	default:
		return "more than one Content-Type; " + want
	}
	mt, _, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return fmt.Sprintf("Content-Type %q is not supported; %s", firstLine(values[0]), want)
	}
	return ""
}

// isLoopbackHost reports whether a Host header names this machine's
// loopback interface: localhost (also with a trailing dot), an address in
// 127.0.0.0/8 or ::1 (bracketed), with or without a port. Subdomains of
// localhost are not accepted: nothing needs them, and not every resolver
// keeps them on loopback.
func isLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // "[::1]" without a port
	} else if strings.Contains(host, ":") {
		return false // a bare IPv6 address or garbage: Host brackets IPv6
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	if strings.Contains(host, "%") { // a zone: fe80::1%lo is not loopback anyway
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// needsAuth reports whether a path requires the bearer token: the API.
// (Nodes call each other on the peer port, not here.)
func needsAuth(path string) bool {
	return strings.HasPrefix(path, "/v1/") || path == "/v1"
}

// unrouted answers a request that matched no route. The mux's handler for
// it is run against a recorder to learn whether it is a 404, a 405 (and
// which methods are allowed) or a redirect to the canonical path.
func (a *api) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.code {
	case http.StatusNotFound:
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
	default:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		w.Write(rec.body.Bytes())
	}
}

// principal is who a /v1/ request acts as: the admin (tenant empty), or a
// tenant token's tenant.
type principal struct {
	tenant string
}

// principalKey keys the request's principal in its context.
type principalKey struct{}

// authenticate finds who a /v1/ request acts as. The admin token is
// compared in constant time (over hashes, so the comparison does not reveal
// the token's length either); a tenant token is looked up by the engine,
// which stores only its hash. Without an admin token, a request without a
// tenant token is the admin, as before tenants. A request that is neither
// is answered 401 (or 503, if the token store cannot be read) and ok is
// false.
func (a *api) authenticate(w http.ResponseWriter, r *http.Request) (p principal, ok bool) {
	token, bearer := bearerToken(r)
	if bearer && a.auth {
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], a.token[:]) == 1 {
			return principal{}, true
		}
	}
	if bearer && strings.HasPrefix(token, tenantTokenPrefix) {
		tenant, live, err := a.e.TokenTenant(token)
		switch {
		case err != nil:
			a.writeErr(w, r, err)
			return principal{}, false
		case live:
			return principal{tenant: tenant}, true
		}
		unauthorized(w, "unknown, expired or revoked tenant token (herald commands send it from --api-token, --api-token-file or HERALD_API_TOKEN)")
		return principal{}, false
	}
	if !a.auth {
		return principal{}, true
	}
	unauthorized(w, "missing or invalid bearer token (herald commands send it from --api-token, --api-token-file or HERALD_API_TOKEN)")
	return principal{}, false
}

// bearerToken returns the request's bearer token, if it has one.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
	writeError(w, http.StatusUnauthorized, codeUnauthorized, msg)
}

// tenantMay reports whether a token of tenant may make the request, routed
// to pattern ("" for none): a tenantScoped route whose {tenant} is that
// tenant. A request that matches no route is let through (to its 404 or
// 405) only below /v1/tenants/{tenant}/ of that tenant.
func (a *api) tenantMay(tenant, pattern string, r *http.Request) bool {
	in, below := pathTenant(r)
	if in != tenant {
		return false
	}
	if pattern == "" {
		return below
	}
	return a.access[pattern] == tenantScoped
}

// pathTenant returns the tenant segment of a /v1/tenants/{tenant}… path as
// the mux reads it (from the cleaned escaped path, that one segment
// unescaped) and whether more segments follow it; "" for another path.
func pathTenant(r *http.Request) (tenant string, below bool) {
	segs := strings.SplitN(path.Clean(r.URL.EscapedPath()), "/", 5) // "", v1, tenants, {tenant}, rest
	if len(segs) < 4 || segs[0] != "" || segs[1] != "v1" || segs[2] != "tenants" {
		return "", false
	}
	tenant, err := url.PathUnescape(segs[3])
	if err != nil {
		return "", false
	}
	return tenant, len(segs) == 5
}

// wrap adapts a handler that returns an error: the error becomes the JSON
// error answer, and a panic becomes a 500 without leaking its details.
// With checkQuery, a query parameter other than params is refused first.
func (a *api) wrap(h func(http.ResponseWriter, *http.Request) error, checkQuery bool, params []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.Error("panic in API handler", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
			}
		}()
		// ServeHTTP let a tenant token through for the tenant it read from
		// the path; the handler acts on the one the mux matched. They are
		// the same, and this makes sure of it.
		if p, ok := r.Context().Value(principalKey{}).(principal); ok && p.tenant != "" && r.PathValue("tenant") != p.tenant {
			writeError(w, http.StatusForbidden, codeForbidden, "a tenant token reaches only its own tenant's routes")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, bodyLimit(r.Pattern))
		}
		if checkQuery {
			if err := queryTakes(r, params); err != nil {
				a.writeErr(w, r, err)
				return
			}
		}
		if err := h(w, r); err != nil {
			a.writeErr(w, r, err)
		}
	})
}

// apiError is an error with its HTTP answer already decided.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: codeInvalidArgument, msg: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) error {
	return &apiError{status: http.StatusNotFound, code: codeNotFound, msg: fmt.Sprintf("%s %q not found", what, id)}
}

// writeErr maps an error to its JSON answer. Unexpected errors are logged
// and answered with a generic 500.
func (a *api) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var ie *engine.InvalidError
	var ce *engine.ConflictError
	var mbe *http.MaxBytesError
	var cue *engine.CatchingUpError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.status, ae.code, ae.msg)
	case errors.As(err, &ce):
		writeError(w, http.StatusConflict, codeConflict, ce.Msg)
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, codePayloadTooLarge,
			fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, codeInvalidArgument, ie.Field+": "+ie.Msg)
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "not found")
	case errors.Is(err, engine.ErrIdempotencyKeyReused):
		writeError(w, http.StatusUnprocessableEntity, codeKeyReused,
			"this Idempotency-Key was used in the last 24 hours for a different request (type, data or webhook_config); nothing was created: use a new key")
	case errors.As(err, &cue):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable,
			fmt.Sprintf("this node is catching up with the leader (%d entries behind); retry on another node", cue.Behind))
	case errors.Is(err, engine.ErrNotLeader):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "no leader is reachable right now; retry, on any node")
	case errors.Is(err, engine.ErrUncertain):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable,
			"the write may or may not have committed; retry (with the same Idempotency-Key)")
	case errors.Is(err, engine.ErrClosed):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the server is shutting down")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "timed out; retry")
	default:
		a.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
	}
}

// queryTakes checks a request's query string against the parameters its
// route takes, as decode checks a body's fields: a malformed query, an
// unknown parameter or one given twice is a 400 naming it.
func queryTakes(r *http.Request, params []string) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("query string: %s", clip(err.Error()))
	}
	names := slices.Sorted(maps.Keys(q))
	for _, name := range names {
		if !slices.Contains(params, name) {
			if len(params) == 0 {
				return badRequest("unknown query parameter %q: this route takes none", clip(name))
			}
			return badRequest("unknown query parameter %q: this route takes %s", clip(name), strings.Join(params, ", "))
		}
		if n := len(q[name]); n > 1 {
			return badRequest("query parameter %q: given %d times; give it once", name, n)
		}
	}
	return nil
}

// param returns a query parameter and whether it was given. Given empty
// ("?after=") it is an error: only a parameter left out means its default.
func param(r *http.Request, name string) (string, bool, error) {
	vs, ok := r.URL.Query()[name]
	if !ok || len(vs) == 0 {
		return "", false, nil
	}
	if vs[0] == "" {
		return "", false, badRequest("%s: is empty; give a value, or leave the parameter out", name)
	}
	return vs[0], true, nil
}

// clip shortens text from a request for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return nil
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, s+"\n")
}

// decode reads a JSON request body into v: exactly one JSON value, no
// unknown fields. An empty body is an error unless optional is set.
func decode(r *http.Request, v any, optional bool) error {
	// Sized from Content-Length, so a common body is read into one
	// buffer rather than one grown by doubling; only up to presizeBody,
	// so a client claiming a large body makes no large allocation before
	// it sends one.
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 {
		buf.Grow(int(min(n, presizeBody)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return err // a *http.MaxBytesError becomes 413
	}
	body := buf.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return badRequest("request body: a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("request body: unexpected data after the JSON object")
	}
	return nil
}

// jsonProblem describes a decoding error without Go type names.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se.Error())
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: cannot be a JSON %s", te.Field, te.Value)
		}
		return fmt.Sprintf("must be a JSON object, not %s", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recorder captures a response in memory.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
