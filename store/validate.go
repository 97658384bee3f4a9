package store

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits on what a command may carry. Apply checks every command against
// them before it touches the file (see [Command.Validate]), so that no
// input can make a bbolt write fail, halting every replica at the same
// entry, or grow a record without bound. The engine checks client input
// against the same constants and Check functions, so that what it accepts
// is never rejected once in the log.
const (
	// MaxCommandsPerEntry bounds one log entry's batch (cluster
	// group-commits at most its MaxBatch, 512 by default).
	MaxCommandsPerEntry = 1024
	// MaxBatchMessages bounds an EnqueueBatch.
	MaxBatchMessages = 1000
	// MaxEventTypes bounds an endpoint's event type filter.
	MaxEventTypes = 100
	// MaxURIs bounds a message's override URIs, and the endpoints a ping
	// names.
	MaxURIs = 10
	// MaxIdempotencyKey bounds an idempotency key, in bytes.
	MaxIdempotencyKey = 256
	// MaxNameBytes bounds an endpoint's name, which must be valid UTF-8.
	MaxNameBytes = 256
	// MaxErrorText bounds an attempt's error text, which must be valid
	// UTF-8. Receivers choose much of it, and must not be able to grow the
	// state.
	MaxErrorText = 256
	// MaxEnvelopeBytes bounds a message's envelope: a 1 MiB payload and
	// the wrapper around it.
	MaxEnvelopeBytes = 1<<20 + 4096
	// MaxSecrets bounds an endpoint's secrets. A rotation keeps the newest
	// MaxSecrets and drops older ones.
	MaxSecrets = 10
	// MaxSealedBytes bounds a sealed secret or private key (see [Sealer]).
	MaxSealedBytes = 8 << 10
	// MaxRateLimit bounds an endpoint's attempts per second.
	MaxRateLimit = 100_000
	// MaxSweepLimit bounds the records of each kind one Sweep deletes,
	// the records one DeleteTenant handles, the messages one Requeue of a
	// window examines and the deliveries one EndPending ends, which keeps
	// their write transactions short.
	MaxSweepLimit = 10_000
	// MaxEndOnDisable bounds the pending deliveries that disabling an
	// endpoint ends in the disabling command itself; EndPending commands
	// end the rest.
	MaxEndOnDisable = 1000
	// MaxTenantTokens bounds a tenant's live tokens, so that the
	// replicated state stays bounded (see CreateTenantToken).
	MaxTenantTokens = 100
	// TokenHashBytes is the length of a token's hash: SHA-256.
	TokenHashBytes = 32
)

const (
	maxEventTypeBytes = 256
	maxURLBytes       = 2048
	maxNodeIDBytes    = 64
	maxAddrBytes      = 256
	maxKeyIDBytes     = 64
	minSecretBytes    = 24
	maxSecretBytes    = 64
	minRSABits        = 2048
	maxRSABits        = 4096
	maxRSAKeyBytes    = 4096 // a 4096-bit PKCS #1 key is about 2,350 bytes
	secretPrefix      = "whsec_"
	ulidLen           = 26
)

// Signing key algorithms.
const (
	AlgEd25519 = "ed25519"
	AlgRS256   = "rs256"
)

// InvalidError rejects a command, or a value checked for one, that breaks a
// rule of one of its fields. Apply rejects such a command deterministically
// (in Result.Err) and changes nothing.
type InvalidError struct {
	// Field names the field, for commands as the command's and the
	// field's JSON names: "enqueue.uris", "create_endpoint.endpoint.url".
	// The Check functions name a generic field ("url", "id").
	Field string
	// Msg says what is wrong, without repeating the value.
	Msg string
	// notFound marks a malformed id of the record a command acts on.
	notFound bool
}

// Error returns "store: invalid <field>: <msg>".
func (e *InvalidError) Error() string { return "store: invalid " + e.Field + ": " + e.Msg }

// Unwrap returns ErrNotFound when the field is the id of the record the
// command acts on (UpdateEndpoint, DeleteEndpoint, RotateSecret,
// EndPending, Requeue of a message): a malformed id names no record, and
// callers that answer "not found" for unknown ids need not tell the two
// apart.
func (e *InvalidError) Unwrap() error {
	if e.notFound {
		return ErrNotFound
	}
	return nil
}

func invalid(field, msg string) error { return &InvalidError{Field: field, Msg: msg} }

// CheckEventType checks an event type: 1 to 256 ASCII letters, digits, '.',
// '_' or '-'.
func CheckEventType(t string) error { return check("event_type", eventTypeProblem(t)) }

// CheckURL checks a destination URL's syntax: at most 2048 bytes, absolute
// http or https, with a host and without credentials. It neither resolves
// nor judges the host; which addresses may be reached is the engine's call,
// made at every connection.
func CheckURL(u string) error { return check("url", urlProblem(u)) }

// CheckNodeID checks a cluster node id: a letter or digit, then up to 63
// letters, digits, '_', '.' or '-'.
func CheckNodeID(id string) error { return check("node_id", nameProblem(id)) }

// CheckTenant checks a tenant id: a letter or digit, then up to 63
// letters, digits, '_', '.' or '-'.
func CheckTenant(id string) error { return check("tenant", nameProblem(id)) }

// CheckID checks that id is of the form NewID makes for prefix: prefix, '_',
// and 26 upper-case Crockford base32 digits.
func CheckID(prefix, id string) error { return check("id", idProblem(prefix, id)) }

func check(field, problem string) error {
	if problem == "" {
		return nil
	}
	return invalid(field, problem)
}

// Validate checks that exactly one field of c is set and that every field
// of that command keeps to the rules and limits above. It returns an
// *InvalidError or nil. A command that predates tenants may leave its
// tenant empty, which Apply reads as DefaultTenant. The rules depend only on the command (no state, no
// clock, no network), so every replica decides alike; some lean on the
// standard library (url.Parse, x509.ParsePKCS1PrivateKey), so replicas must
// run one build, or builds whose Go versions parse alike. It parses no
// envelope: apply-path CPU matters.
func (c *Command) Validate() error {
	n := 0
	for _, set := range [...]bool{c.Enqueue != nil, c.Outcome != nil, c.CreateEndpoint != nil,
		c.UpdateEndpoint != nil, c.DeleteEndpoint != nil, c.RotateSecret != nil, c.Requeue != nil,
		c.AddSigningKey != nil, c.Sweep != nil, c.PutNode != nil,
		c.DeleteTenant != nil, c.CreateTenantToken != nil, c.RevokeTenantTokens != nil, c.EndPending != nil,
		c.EnqueueBatch != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalid("command", fmt.Sprintf("sets %d commands, not exactly one", n))
	}
	switch {
	case c.Enqueue != nil:
		return c.Enqueue.validate()
	case c.Outcome != nil:
		return c.Outcome.validate()
	case c.CreateEndpoint != nil:
		return c.CreateEndpoint.validate()
	case c.UpdateEndpoint != nil:
		return c.UpdateEndpoint.validate()
	case c.DeleteEndpoint != nil:
		return c.DeleteEndpoint.validate()
	case c.RotateSecret != nil:
		return c.RotateSecret.validate()
	case c.Requeue != nil:
		return c.Requeue.validate()
	case c.AddSigningKey != nil:
		return c.AddSigningKey.validate()
	case c.Sweep != nil:
		return c.Sweep.validate()
	case c.PutNode != nil:
		return c.PutNode.validate()
	case c.DeleteTenant != nil:
		return c.DeleteTenant.validate()
	case c.CreateTenantToken != nil:
		return c.CreateTenantToken.validate()
	case c.EndPending != nil:
		return c.EndPending.validate()
	case c.EnqueueBatch != nil:
		return c.EnqueueBatch.validate()
	default:
		return c.RevokeTenantTokens.validate()
	}
}

// fields collects a command's first problem.
type fields struct {
	cmd string
	err error
}

// check records problem (if any, and if none was recorded) against field.
func (f *fields) check(field, problem string) {
	if problem != "" && f.err == nil {
		f.err = invalid(f.cmd+"."+field, problem)
	}
}

// ref is check for the id of the record the command acts on.
func (f *fields) ref(field, problem string) {
	if problem != "" && f.err == nil {
		f.err = &InvalidError{Field: f.cmd + "." + field, Msg: problem, notFound: true}
	}
}

// tenant checks the tenant of a command that predates tenants: empty (for
// DefaultTenant) or a tenant id.
func (f *fields) tenant(field, t string) {
	if t != "" {
		f.check(field, nameProblem(t))
	}
}

func (f *fields) time(field string, v int64) {
	if v < 0 {
		f.check(field, "must not be negative")
	}
}

func (f *fields) positive(field string, v int64) {
	if v <= 0 {
		f.check(field, "must be positive")
	}
}

// validate bounds the batch only: Apply validates each message on its own,
// so that one invalid message rejects only itself.
func (b *EnqueueBatch) validate() error {
	if n := len(b.Messages); n == 0 || n > MaxBatchMessages {
		return invalid("enqueue_batch.messages", fmt.Sprintf("%d messages, must be 1 to %d", n, MaxBatchMessages))
	}
	return nil
}

func (e *Enqueue) validate() error {
	f := fields{cmd: "enqueue"}
	f.tenant("tenant", e.Tenant)
	f.check("id", idProblem("msg", e.ID))
	f.check("type", eventTypeProblem(e.Type))
	f.positive("created_at", e.CreatedAt)
	switch {
	case len(e.Envelope) == 0:
		f.check("envelope", "must not be empty")
	case len(e.Envelope) > MaxEnvelopeBytes:
		f.check("envelope", fmt.Sprintf("longer than %d bytes", MaxEnvelopeBytes))
	}
	switch {
	case len(e.IdempotencyKey) > MaxIdempotencyKey:
		f.check("idempotency_key", fmt.Sprintf("longer than %d bytes", MaxIdempotencyKey))
	case e.IdempotencyKey == "" && e.IdempotencyExpiresAt != 0:
		f.check("idempotency_key", "must be set with idempotency_expires_at")
	case e.IdempotencyKey != "" && e.IdempotencyExpiresAt <= e.CreatedAt:
		f.check("idempotency_expires_at", "must be after created_at")
	case len(e.RequestHash) != 0 && (len(e.RequestHash) != sha256.Size || e.IdempotencyKey == ""):
		f.check("request_hash", "must be a SHA-256, with an idempotency key")
	}
	switch {
	case len(e.URIs) > 0 && len(e.EndpointIDs) > 0:
		f.check("endpoint_ids", "must not be set with uris")
	case len(e.URIs) > MaxURIs:
		f.check("uris", fmt.Sprintf("more than %d", MaxURIs))
	case len(e.EndpointIDs) > MaxURIs:
		f.check("endpoint_ids", fmt.Sprintf("more than %d", MaxURIs))
	}
	// The lists are walked only once their length is known to be in
	// bounds: a hostile command must not cost more than a good one.
	for i := 0; f.err == nil && i < len(e.URIs); i++ {
		f.check("uris", item(i, urlProblem(e.URIs[i])))
	}
	for i := 0; f.err == nil && i < len(e.EndpointIDs); i++ {
		f.check("endpoint_ids", item(i, idProblem("ep", e.EndpointIDs[i])))
	}
	return f.err
}

// item prefixes a list element's problem with its index.
func item(i int, problem string) string {
	if problem == "" {
		return ""
	}
	return fmt.Sprintf("#%d %s", i, problem)
}

func (o *Outcome) validate() error {
	f := fields{cmd: "outcome"}
	f.check("delivery_id", deliveryIDProblem(o.DeliveryID))
	if o.Attempt < 1 {
		f.check("attempt", "must be at least 1")
	}
	f.time("at", o.At)
	if o.DurationMS < 0 {
		f.check("duration_ms", "must not be negative")
	}
	if o.StatusCode != 0 && (o.StatusCode < 100 || o.StatusCode > 599) {
		f.check("status_code", "must be 0 or an HTTP status, 100 to 599")
	}
	f.check("error", textProblem(o.Error, MaxErrorText))
	switch o.Result {
	case ResultRetry:
		f.positive("next_attempt_at", o.NextAttemptAt)
	case ResultSucceeded, ResultFailed, ResultGone, ResultCancelled:
		f.time("next_attempt_at", o.NextAttemptAt)
	default:
		f.check("result", "unknown result")
	}
	if (o.OpenBreaker || o.Disable) && !o.failed() {
		f.check("result", "open_breaker and disable come only with a failed attempt: retry, failed or gone")
	}
	return f.err
}

// failed reports whether the attempt failed: the receiver did not take
// the delivery (a cancellation made no attempt).
func (o *Outcome) failed() bool {
	return o.Result == ResultRetry || o.Result == ResultFailed || o.Result == ResultGone
}

func (c *CreateEndpoint) validate() error {
	ep := &c.Endpoint
	f := fields{cmd: "create_endpoint.endpoint"}
	f.check("id", idProblem("ep", ep.ID))
	f.tenant("tenant", ep.Tenant)
	f.check("url", urlProblem(ep.URL))
	f.check("name", textProblem(ep.Name, MaxNameBytes))
	f.check("event_types", eventTypesProblem(ep.EventTypes))
	switch ep.State {
	case StateEnabled, StateDisabled, StateDisabledFailing:
	default:
		f.check("state", "unknown state")
	}
	f.check("rate_limit_per_s", rateLimitProblem(ep.RateLimitPerS))
	if len(ep.Secrets) == 0 || len(ep.Secrets) > MaxSecrets {
		f.check("secrets", fmt.Sprintf("must hold 1 to %d secrets", MaxSecrets))
	}
	for i := 0; f.err == nil && i < len(ep.Secrets); i++ {
		f.check("secrets", item(i, secretProblem(ep.Secrets[i].Key)))
		if ep.Secrets[i].ExpiresAt < 0 {
			f.check("secrets", item(i, "expires_at must not be negative"))
		}
	}
	f.time("created_at", ep.CreatedAt)
	f.time("updated_at", ep.UpdatedAt)
	return f.err
}

// validate allows the states an operator sets. The failing state records
// that the receiver answered 410 Gone, which only an Outcome can say.
func (u *UpdateEndpoint) validate() error {
	f := fields{cmd: "update_endpoint"}
	f.tenant("tenant", u.Tenant)
	f.ref("id", idProblem("ep", u.ID))
	f.time("at", u.At)
	if u.URL != nil {
		f.check("url", urlProblem(*u.URL))
	}
	if u.Name != nil {
		f.check("name", textProblem(*u.Name, MaxNameBytes))
	}
	if u.EventTypes != nil {
		f.check("event_types", eventTypesProblem(*u.EventTypes))
	}
	if u.State != nil && *u.State != StateEnabled && *u.State != StateDisabled {
		f.check("state", "must be enabled or disabled")
	}
	if u.RateLimitPerS != nil {
		f.check("rate_limit_per_s", rateLimitProblem(*u.RateLimitPerS))
	}
	return f.err
}

func (d *DeleteEndpoint) validate() error {
	f := fields{cmd: "delete_endpoint"}
	f.tenant("tenant", d.Tenant)
	f.ref("id", idProblem("ep", d.ID))
	f.time("at", d.At)
	return f.err
}

func (r *RotateSecret) validate() error {
	f := fields{cmd: "rotate_secret"}
	f.tenant("tenant", r.Tenant)
	f.ref("endpoint_id", idProblem("ep", r.EndpointID))
	f.check("secret", secretProblem(r.Secret))
	f.time("at", r.At)
	if r.RevokeAt < r.At {
		f.check("revoke_at", "must not be before at")
	}
	return f.err
}

func (r *Requeue) validate() error {
	f := fields{cmd: "requeue"}
	f.tenant("tenant", r.Tenant)
	if r.MessageID != "" {
		f.ref("message_id", idProblem("msg", r.MessageID))
		if r.Since != 0 || r.Until != 0 || r.After != "" || r.Limit != 0 {
			f.check("message_id", "must not be set with since, until, after or limit")
		}
	} else {
		f.time("since", r.Since)
		if r.Until != 0 && r.Until <= r.Since {
			f.check("until", "must be 0 or after since")
		}
		if r.After != "" {
			f.check("after", idProblem("msg", r.After))
		}
		if r.Limit < 0 || r.Limit > MaxSweepLimit {
			f.check("limit", fmt.Sprintf("must be 0 (none) to %d", MaxSweepLimit))
		}
	}
	if r.EndpointID != "" {
		f.check("endpoint_id", idProblem("ep", r.EndpointID))
	}
	f.positive("at", r.At)
	return f.err
}

func (e *EndPending) validate() error {
	f := fields{cmd: "end_pending"}
	f.check("tenant", nameProblem(e.Tenant))
	f.ref("endpoint_id", idProblem("ep", e.EndpointID))
	if e.Status != StatusCancelled && e.Status != StatusFailed {
		f.check("status", "must be cancelled or failed")
	}
	if e.Reason == "" {
		f.check("reason", "is required")
	}
	f.check("reason", textProblem(e.Reason, MaxErrorText))
	if e.Limit < 1 || e.Limit > MaxSweepLimit {
		f.check("limit", fmt.Sprintf("must be 1 to %d", MaxSweepLimit))
	}
	return f.err
}

func (a *AddSigningKey) validate() error {
	k := &a.Key
	f := fields{cmd: "add_signing_key.key"}
	f.check("id", keyIDProblem(k.ID))
	if k.Alg != AlgEd25519 && k.Alg != AlgRS256 {
		f.check("alg", "must be ed25519 or rs256")
	} else {
		f.check("private", privateKeyProblem(k.Alg, k.Private))
	}
	f.positive("created_at", k.CreatedAt)
	if k.RetiredAt != 0 {
		f.check("retired_at", "must be 0: a new key is live")
	}
	return f.err
}

func (s *Sweep) validate() error {
	f := fields{cmd: "sweep"}
	f.time("at", s.At)
	f.time("retain_since", s.RetainSince)
	f.time("keys_retired_before", s.KeysRetiredBefore)
	if s.Limit < 1 || s.Limit > MaxSweepLimit {
		f.check("limit", fmt.Sprintf("must be 1 to %d", MaxSweepLimit))
	}
	return f.err
}

func (n *Node) validate() error {
	f := fields{cmd: "put_node"}
	f.check("id", nameProblem(n.ID))
	f.check("api_addr", addrProblem(n.APIAddr))
	f.check("raft_addr", addrProblem(n.RaftAddr))
	return f.err
}

func (d *DeleteTenant) validate() error {
	f := fields{cmd: "delete_tenant"}
	f.check("tenant", nameProblem(d.Tenant))
	f.time("at", d.At)
	if d.Limit < 1 || d.Limit > MaxSweepLimit {
		f.check("limit", fmt.Sprintf("must be 1 to %d", MaxSweepLimit))
	}
	return f.err
}

func (c *CreateTenantToken) validate() error {
	f := fields{cmd: "create_tenant_token"}
	f.check("tenant", nameProblem(c.Tenant))
	if len(c.Hash) != TokenHashBytes {
		f.check("hash", fmt.Sprintf("must be %d bytes (SHA-256)", TokenHashBytes))
	}
	f.positive("created_at", c.CreatedAt)
	if c.ExpiresAt <= c.CreatedAt {
		f.check("expires_at", "must be after created_at")
	}
	return f.err
}

func (r *RevokeTenantTokens) validate() error {
	f := fields{cmd: "revoke_tenant_tokens"}
	f.check("tenant", nameProblem(r.Tenant))
	return f.err
}

// The problem functions return "" for a good value, else what is wrong.

// crockfordDigit marks the digits NewID writes.
var crockfordDigit = func() (t [256]bool) {
	for i := range len(crockford) {
		t[crockford[i]] = true
	}
	return t
}()

// badULID reports whether s is not Crockford digits whose first carries
// 3 bits, as NewID (and DeliveryID after it) writes them.
func badULID(s string) bool {
	for i := range len(s) {
		if !crockfordDigit[s[i]] {
			return true
		}
	}
	return len(s) == 0 || s[0] > '7'
}

func idProblem(prefix, id string) string {
	if len(id) != len(prefix)+1+ulidLen || id[:len(prefix)] != prefix || id[len(prefix)] != '_' ||
		badULID(id[len(prefix)+1:]) {
		return "must be " + prefix + "_ and 26 Crockford base32 digits"
	}
	return ""
}

// deliveryIDProblem checks the form DeliveryID makes: dlv_, the message's
// 26 digits and a 4-digit counter.
func deliveryIDProblem(id string) string {
	const prefix = "dlv_"
	if len(id) != len(prefix)+ulidLen+4 || id[:len(prefix)] != prefix || badULID(id[len(prefix):]) {
		return "must be dlv_ and 30 Crockford base32 digits"
	}
	return ""
}

func eventTypeProblem(t string) string {
	if len(t) == 0 || len(t) > maxEventTypeBytes {
		return "must be 1 to 256 letters, digits, '.', '_' or '-'"
	}
	for i := range len(t) {
		switch c := t[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return "must be 1 to 256 letters, digits, '.', '_' or '-'"
		}
	}
	return ""
}

func eventTypesProblem(types []string) string {
	if len(types) > MaxEventTypes {
		return fmt.Sprintf("more than %d", MaxEventTypes)
	}
	for i, t := range types {
		if p := eventTypeProblem(t); p != "" {
			return item(i, p)
		}
	}
	return ""
}

func urlProblem(raw string) string {
	if len(raw) > maxURLBytes {
		return fmt.Sprintf("longer than %d bytes", maxURLBytes)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "does not parse as a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https"
	case u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "must not contain credentials"
	}
	return ""
}

// nameProblem checks the names callers choose (node and tenant ids): a
// letter or digit, then up to 63 letters, digits, '.', '_' or '-'. None
// holds a 0 byte, which separates them from the rest of index keys.
func nameProblem(id string) string {
	if len(id) == 0 || len(id) > maxNodeIDBytes {
		return "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
		}
	}
	return ""
}

// keyIDProblem checks a signing key id: an RFC 7638 thumbprint, base64url
// without padding.
func keyIDProblem(id string) string {
	if len(id) == 0 || len(id) > maxKeyIDBytes {
		return "must be 1 to 64 base64url characters"
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return "must be 1 to 64 base64url characters"
		}
	}
	return ""
}

// textProblem checks free text: valid UTF-8 of at most max bytes.
func textProblem(s string, max int) string {
	switch {
	case len(s) > max:
		return fmt.Sprintf("longer than %d bytes", max)
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	}
	return ""
}

func rateLimitProblem(r int) string {
	if r < 0 || r > MaxRateLimit {
		return fmt.Sprintf("must be 0 (none) to %d", MaxRateLimit)
	}
	return ""
}

func addrProblem(a string) string {
	if a == "" {
		return ""
	}
	if len(a) > maxAddrBytes {
		return fmt.Sprintf("longer than %d bytes", maxAddrBytes)
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return "must be empty or host:port"
	}
	return ""
}

// strictBase64 is the one spelling of each value: padded, no line breaks
// (which the decoder would skip), zero padding bits.
var strictBase64 = base64.StdEncoding.Strict()

// canonicalBase64 decodes s if it is canonical standard base64, returning
// the decoded length.
func canonicalBase64[T string | []byte](s T) (int, bool) {
	if len(s)%4 != 0 {
		return 0, false
	}
	for i := range len(s) {
		if s[i] == '\r' || s[i] == '\n' {
			return 0, false
		}
	}
	buf := make([]byte, strictBase64.DecodedLen(len(s)))
	n, err := strictBase64.Decode(buf, []byte(s))
	return n, err == nil
}

// secretProblem checks an endpoint secret: whsec_ and the canonical base64
// of 24 to 64 bytes (what signer.GenerateHMACSecret makes), or a sealed
// value.
func secretProblem(s string) string {
	if strings.HasPrefix(s, sealMagic) {
		return sealedProblem([]byte(s))
	}
	b64, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return "must be whsec_ and base64, or a sealed value"
	}
	if len(b64) > base64.StdEncoding.EncodedLen(maxSecretBytes) {
		return "must hold 24 to 64 bytes"
	}
	n, ok := canonicalBase64(b64)
	switch {
	case !ok:
		return "must be whsec_ and padded standard base64"
	case n < minSecretBytes || n > maxSecretBytes:
		return "must hold 24 to 64 bytes"
	}
	return ""
}

func sealedProblem(b []byte) string {
	switch {
	case len(b) > MaxSealedBytes:
		return fmt.Sprintf("sealed value longer than %d bytes", MaxSealedBytes)
	case !IsSealed(b):
		return "malformed sealed value"
	}
	return ""
}

// privateKeyProblem checks a signing key's private part: sealed, or in the
// clear what the engine's keyring loads: a 32-byte Ed25519 seed, or a PKCS
// #1 RSA key of 2048 to 4096 bits. A seed is never mistaken for a sealed
// value, which is longer.
func privateKeyProblem(alg string, p []byte) string {
	if bytes.HasPrefix(p, []byte(sealMagic)) && len(p) != ed25519.SeedSize {
		return sealedProblem(p)
	}
	if alg == AlgEd25519 {
		if len(p) != ed25519.SeedSize {
			return "must be a 32-byte Ed25519 seed or a sealed value"
		}
		return ""
	}
	if len(p) > maxRSAKeyBytes {
		return "must be a PKCS #1 RSA key of 2048 to 4096 bits or a sealed value"
	}
	// Parsed as the keyring will, so that a key the store accepts always
	// loads.
	k, err := x509.ParsePKCS1PrivateKey(p)
	if err != nil || k.N.BitLen() < minRSABits || k.N.BitLen() > maxRSABits {
		return "must be a PKCS #1 RSA key of 2048 to 4096 bits or a sealed value"
	}
	return ""
}
