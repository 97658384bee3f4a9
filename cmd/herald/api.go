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
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/heraldhq/herald/engine"
)

// The HTTP API (CONTRACT §2). Where the contract is silent:
//
//   - Every error is {"error": {"code", "message"}} with one of the codes
//     below; unknown routes are 404 not_found, a known route with another
//     method is 405 method_not_allowed (with an Allow header).
//   - Lists are {"data": [...]}; GET /v1/messages adds "next_cursor", the
//     id to pass as ?after= for the next (older) page, null on the last.
//   - DELETE /v1/endpoints/{id} answers 204 with no body.
//   - POST /v1/endpoints/{id}/ping answers 202 with the ping message.
//   - POST /v1/messages/{id}/retry and /v1/messages/recover answer
//     200 {"requeued": n}.
//   - POST /v1/signing-keys/rotate answers 200 with the JWKS published
//     after the rotation.
//   - A repeated Idempotency-Key answers 200 with the first message in the
//     creation shape (its current status) and the header
//     Idempotent-Replayed: true.
//   - 503 answers carry Retry-After: 1.
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

// Error codes of the API.
const (
	codeInvalidArgument  = "invalid_argument"       // 400
	codeUnauthorized     = "unauthorized"           // 401
	codeForbidden        = "forbidden"              // 403, a cross-origin browser request
	codeNotFound         = "not_found"              // 404
	codeMethodNotAllowed = "method_not_allowed"     // 405
	codeConflict         = "conflict"               // 409
	codePayloadTooLarge  = "payload_too_large"      // 413
	codeUnsupportedMedia = "unsupported_media_type" // 415, a write without Content-Type: application/json
	codeMisdirected      = "misdirected_request"    // 421, a non-loopback Host without a token
	codeRateLimited      = "rate_limited"           // 429
	codeUnavailable      = "unavailable"            // 503
	codeInternal         = "internal"               // 500
)

// maxBodyBytes bounds every request body.
const maxBodyBytes = engine.MaxPayloadBytes

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
}

// newAPI returns the API handler. A non-empty token is required as a bearer
// token on every /v1/ route; m may be nil.
func newAPI(e *engine.Engine, token string, log *slog.Logger, m *metrics) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &api{e: e, log: log, metrics: m, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
	if token != "" {
		a.auth, a.token = true, sha256.Sum256([]byte(token))
	}
	a.routes()
	return a
}

func (a *api) routes() {
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		a.mux.Handle(pattern, a.wrap(h))
		a.patterns = append(a.patterns, pattern)
	}
	handle("POST /v1/endpoints", a.createEndpoint)
	handle("GET /v1/endpoints", a.listEndpoints)
	handle("GET /v1/endpoints/{id}", a.getEndpoint)
	handle("PATCH /v1/endpoints/{id}", a.updateEndpoint)
	handle("DELETE /v1/endpoints/{id}", a.deleteEndpoint)
	handle("POST /v1/endpoints/{id}/rotate-secret", a.rotateSecret)
	handle("POST /v1/endpoints/{id}/ping", a.pingEndpoint)

	handle("POST /v1/messages", a.createMessage)
	handle("GET /v1/messages", a.listMessages)
	handle("GET /v1/messages/{id}", a.getMessage)
	handle("POST /v1/messages/{id}/retry", a.retryMessage)
	handle("POST /v1/messages/recover", a.recoverMessages)

	handle("POST /v1/signing-keys/rotate", a.rotateSigningKey)
	handle("GET /v1/cluster", a.clusterStatus)
	handle("POST /v1/cluster/nodes", a.addNode)
	handle("DELETE /v1/cluster/nodes/{id}", a.removeNode)

	handle("GET /v1/backup", a.backup)

	handle("GET /.well-known/jwks.json", a.jwks)
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
	if needsAuth(r.URL.Path) && !a.authorized(r) {
		sw.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
		writeError(sw, http.StatusUnauthorized, codeUnauthorized, "missing or invalid bearer token")
		return
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

// authorized compares the bearer token in constant time (over hashes, so
// the comparison does not reveal the token's length either).
func (a *api) authorized(r *http.Request) bool {
	if !a.auth {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], a.token[:]) == 1
}

// wrap adapts a handler that returns an error: the error becomes the JSON
// error answer, and a panic becomes a 500 without leaking its details.
func (a *api) wrap(h func(http.ResponseWriter, *http.Request) error) http.Handler {
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
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
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
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.status, ae.code, ae.msg)
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, codePayloadTooLarge,
			fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, codeInvalidArgument, ie.Field+": "+ie.Msg)
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "not found")
	case errors.Is(err, engine.ErrNotLeader):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "no leader can accept the write right now; retry")
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
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err // a *http.MaxBytesError becomes 413
	}
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
