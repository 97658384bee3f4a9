package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heraldhq/herald/store"
)

// defaultServer is where the client commands send requests by default.
const defaultServer = "http://127.0.0.1:8080"

// clientTimeout bounds one API call from the client commands.
const clientTimeout = 60 * time.Second

// clientFlags are the flags every client command takes.
type clientFlags struct {
	fs        *flag.FlagSet
	server    string
	token     string
	tokenFile string
	caCert    string
	tenant    string // with --tenant registered (addTenantFlag)
	tenanted  bool
}

// addClientFlags registers --server, --api-token, --api-token-file and
// --ca-cert, defaulting to HERALD_SERVER, HERALD_API_TOKEN,
// HERALD_API_TOKEN_FILE and HERALD_CA_CERT. The token's variables are read
// by client, after parsing, so that -h never prints a token as a default.
func addClientFlags(fs *flag.FlagSet) *clientFlags {
	cf := &clientFlags{fs: fs}
	server := defaultServer
	if v := os.Getenv("HERALD_SERVER"); v != "" {
		server = v
	}
	fs.StringVar(&cf.server, "server", server, "Herald API base `URL` (env HERALD_SERVER)")
	fs.StringVar(&cf.token, "api-token", "", "bearer `token` for the API (env HERALD_API_TOKEN)")
	fs.StringVar(&cf.tokenFile, "api-token-file", "", "read the bearer token from this `file`, which only its owner may read (env HERALD_API_TOKEN_FILE)")
	fs.StringVar(&cf.caCert, "ca-cert", os.Getenv("HERALD_CA_CERT"),
		"PEM `file` of the CA certificates that verify an https:// --server, instead of the system's (env HERALD_CA_CERT)")
	return cf
}

// addTenantFlag registers --tenant, defaulting to HERALD_TENANT, on a
// command whose routes exist per tenant (endpoints, messages, send).
func (cf *clientFlags) addTenantFlag() {
	cf.tenanted = true
	cf.fs.StringVar(&cf.tenant, "tenant", os.Getenv("HERALD_TENANT"),
		"act in this `tenant`, through the /v1/tenants/TENANT/… routes (env HERALD_TENANT; default: the routes without one, tenant \"default\")")
}

// client returns an API client for the flags, or a usage error for a bad
// --server, token, CA file or --tenant.
func (cf *clientFlags) client() (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(cf.server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not an http:// or https:// URL", cf.server)
	}
	if cf.tenanted && cf.tenant != "" {
		if err := checkTenantArg("--tenant", cf.tenant); err != nil {
			return nil, err
		}
	}
	set := map[string]bool{}
	if cf.fs != nil {
		cf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	}
	token, err := resolveAPIToken(cf.token, cf.tokenFile, set["api-token"], set["api-token-file"], os.LookupEnv)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: clientTimeout}
	// Like curl --cacert, --ca-cert replaces the system's roots. It is
	// checked even for an http:// --server, so that a mistake shows at once.
	if cf.caCert != "" {
		pool, err := loadCABundle("--ca-cert", cf.caCert)
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	return &apiClient{base: u.String(), token: token, tenant: cf.tenant, http: hc}, nil
}

// checkTenantArg checks a tenant id given on the command line, as the
// server would, so that a mistake is a usage error before any request.
func checkTenantArg(what, tenant string) error {
	var inv *store.InvalidError
	if err := store.CheckTenant(tenant); errors.As(err, &inv) {
		return usagef("%s %q: %s", what, tenant, inv.Msg)
	} else if err != nil {
		return usagef("%s %q: %v", what, tenant, err)
	}
	return nil
}

// apiClient calls the Herald HTTP API.
type apiClient struct {
	base   string // without a trailing slash
	token  string
	tenant string // "": the routes without a tenant
	http   *http.Client
}

// tenantPath turns a /v1/… path of the endpoint and message routes into
// the client's tenant's /v1/tenants/TENANT/…; without a tenant it is left
// alone.
func (c *apiClient) tenantPath(p string) string {
	if c.tenant == "" {
		return p
	}
	return "/v1/tenants/" + pathEscape(c.tenant) + strings.TrimPrefix(p, "/v1")
}

// apiCallError is an error answer from the API.
type apiCallError struct {
	Status  int
	Code    string
	Message string
	Hint    string // what to do about it, unless Message says so already: " (…)"
}

func (e *apiCallError) Error() string { return e.Code + ": " + e.Message + e.Hint }

// errorHint says what to do about an error answer, in the words of the
// command line, when the server's message does not: which flags carry the
// token, that a 503 is worth retrying, where a 500's details are.
func errorHint(status int, code, msg string, tokenSent bool, retryAfter string, herald bool) string {
	lower := strings.ToLower(msg)
	switch {
	case status == http.StatusUnauthorized:
		if strings.Contains(msg, "--api-token") {
			return ""
		}
		if !tokenSent {
			return " (no token was sent: pass the API token with --api-token, --api-token-file or HERALD_API_TOKEN)"
		}
		return " (the token was refused: check --api-token, --api-token-file or HERALD_API_TOKEN)"
	case status == http.StatusServiceUnavailable:
		if strings.Contains(lower, "retry") {
			return ""
		}
		wait := "in a moment"
		if s, err := strconv.Atoi(retryAfter); err == nil && s > 0 {
			wait = fmt.Sprintf("in %ds", s)
		}
		return " (retry " + wait + ", on this or any other node; writes with the same --idempotency-key are safe to repeat)"
	case status >= 500 && herald && code == "internal":
		if strings.Contains(lower, "log") {
			return ""
		}
		return " (the details are in the server's log)"
	case strings.Contains(msg, "HTTP request to an HTTPS server"):
		return " (the server speaks HTTPS: use an https:// --server)"
	case !herald && (status == http.StatusNotFound || status == http.StatusMethodNotAllowed):
		return " (not an answer of Herald's API: is --server the URL of a herald serve?)"
	}
	return ""
}

// reachHint says what to do when the server cannot be reached.
func reachHint(err error) string {
	cause := unwrapNetErr(err).Error()
	switch {
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "it speaks plain HTTP: use an http:// --server"
	case cause == "timed out":
		return fmt.Sprintf("no answer within %v; check --server or HERALD_SERVER", clientTimeout)
	}
	return "is herald serve running there? set --server or HERALD_SERVER to its URL"
}

// do sends one request (body, if not nil, as JSON) and returns the answer's
// body for a 2xx, or an *apiCallError.
func (c *apiClient) do(ctx context.Context, method, path string, body any, header http.Header) ([]byte, error) {
	resp, err := c.send(ctx, method, path, body, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer from %s: %w", c.base, unwrapNetErr(err))
	}
	return data, nil
}

// download GETs path and copies the answer's body to w, however large it
// is and however long it takes, as long as data keeps coming: a server
// silent for clientTimeout is given up on. A body cut short (the server
// declares its length) is an error.
func (c *apiClient) download(ctx context.Context, path string, w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(clientTimeout, cancel)
	defer idle.Stop()
	hc := *c.http
	hc.Timeout = 0
	stream := *c
	stream.http = &hc
	resp, err := stream.send(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, readerFunc(func(p []byte) (int, error) {
		idle.Reset(clientTimeout)
		return resp.Body.Read(p)
	}))
	if err != nil {
		if ctx.Err() != nil && !idle.Stop() {
			return n, fmt.Errorf("reading the answer from %s: no data for %v", c.base, clientTimeout)
		}
		return n, fmt.Errorf("reading the answer from %s: %w", c.base, unwrapNetErr(err))
	}
	return n, nil
}

// readerFunc is an io.Reader from a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// send sends one request and returns the response for a 2xx, whose body
// the caller closes, or an *apiCallError.
func (c *apiClient) send(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	// The API requires the JSON content type on every write, body or not.
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "herald-cli")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var uae x509.UnknownAuthorityError
		if errors.As(err, &uae) {
			return nil, fmt.Errorf("cannot reach %s: its TLS certificate is not signed by a trusted CA (give the CA's certificate with --ca-cert or HERALD_CA_CERT)", c.base)
		}
		return nil, fmt.Errorf("cannot reach %s: %w (%s)", c.base, unwrapNetErr(err), reachHint(err))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	retryAfter := resp.Header.Get("Retry-After")
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		msg := strings.Join(strings.Fields(eb.Error.Message), " ") // one line, whatever it holds
		return nil, &apiCallError{Status: resp.StatusCode, Code: eb.Error.Code, Message: msg,
			Hint: errorHint(resp.StatusCode, eb.Error.Code, msg, c.token != "", retryAfter, true)}
	}
	msg := strings.TrimSpace(firstLine(string(data)))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	code := fmt.Sprintf("HTTP %d", resp.StatusCode)
	return nil, &apiCallError{Status: resp.StatusCode, Code: code, Message: msg,
		Hint: errorHint(resp.StatusCode, code, msg, c.token != "", retryAfter, false)}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	return line
}

// unwrapNetErr reduces a network error to its cause, e.g. "connection
// refused", without Go's layers of operation and address.
func unwrapNetErr(err error) error {
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("connection reset")
	case errors.Is(err, syscall.EADDRINUSE):
		return errors.New("address already in use")
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return errors.New("address not available")
	case errors.Is(err, syscall.EACCES):
		return errors.New("permission denied")
	case errors.As(err, &dnsErr):
		return dnsErr
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("timed out")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		err = se.Err
	}
	return err
}

// printJSON writes a JSON answer indented, with a final newline.
func printJSON(w io.Writer, data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(data), "", "  "); err != nil {
		// Not JSON: print it as it came.
		buf.Reset()
		buf.Write(bytes.TrimSpace(data))
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("messages get ID --server U") and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// A "--" ends the flags: everything after it is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// exactArgs checks the number of positional arguments.
func exactArgs(cmd string, got []string, names ...string) error {
	if len(got) == len(names) {
		return nil
	}
	if len(got) < len(names) {
		return usagef("%s: missing %s", cmd, strings.Join(names[len(got):], " "))
	}
	return usagef("%s: unexpected argument %q", cmd, got[len(names)])
}

// pathEscape escapes an id for use as one path segment.
func pathEscape(id string) string { return url.PathEscape(id) }
