package store

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"testing"
)

// sealedLen returns a sealed value of exactly n bytes (n >= 45, n%4 == 1).
func sealedLen(t testing.TB, n int) []byte {
	t.Helper()
	plainLen := (n-len(sealMagic))/4*3 - sealNonceSize - sealTagSize
	b := testSealer.Seal(make([]byte, plainLen), "x")
	if len(b) != n {
		t.Fatalf("sealed %d bytes, want %d", len(b), n)
	}
	return b
}

// validCommands are one valid command of every kind, each with a name.
// They act on the state validationStore makes.
func validCommands(t testing.TB, m, newMsg string) map[string]Command {
	return map[string]Command{
		"enqueue":         withKey(fanOut(newMsg, "x", t0), "K", t0+1),
		"enqueue uris":    override(newMsg, "x", t0, "https://o.example/a"),
		"enqueue ping":    ping(newMsg, t0, epID("a")),
		"outcome":         outcome(DeliveryID(m, 0), 1, t0+1, ResultRetry, 500, t0+5),
		"create_endpoint": createEndpoint(epID("new"), "https://n.example", t0, "x"),
		"update_endpoint": {UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: t0}},
		"delete_endpoint": {DeleteEndpoint: &DeleteEndpoint{ID: epID("a"), At: t0}},
		"rotate_secret":   {RotateSecret: &RotateSecret{EndpointID: epID("a"), Secret: testSecret("new"), At: t0, RevokeAt: t0}},
		"requeue message": {Requeue: &Requeue{MessageID: m, At: t0}},
		"requeue window":  {Requeue: &Requeue{Since: t0, Until: t0 + 1, At: t0}},
		"add_signing_key": signingKey("k2", AlgEd25519, t0),
		"add rs256 key":   signingKey("k3", AlgRS256, t0),
		"sweep":           {Sweep: &Sweep{At: t0, RetainSince: t0, KeysRetiredBefore: t0, Limit: 1}},
		"put_node":        {PutNode: &Node{ID: "n1", APIAddr: "127.0.0.1:8080", RaftAddr: "127.0.0.1:8090"}},
		"delete_tenant":   {DeleteTenant: &DeleteTenant{Tenant: DefaultTenant, At: t0, Limit: 1}},
		"create_token":    createToken("t", "tok", t0, t0+1),
		"revoke_tokens":   {RevokeTenantTokens: &RevokeTenantTokens{Tenant: "t"}},
	}
}

// validationStore holds an endpoint, a pending message to it and a signing
// key, so that the valid commands would each change something.
func validationStore(t *testing.T) (s *Store, m, newMsg string) {
	s = openTest(t)
	g := newIDs(70)
	m, newMsg = g.next(t, "msg", t0), g.next(t, "msg", t0+1)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0), fanOut(m, "x", t0), signingKey("k1", AlgEd25519, t0))
	return s, m, newMsg
}

// TestValidateRejects applies one command per rule broken, each a valid
// command with one field spoilt: each must be rejected with an
// *InvalidError naming that field, and change nothing but the applied
// index.
func TestValidateRejects(t *testing.T) {
	s, m, newMsg := validationStore(t)
	valid := validCommands(t, m, newMsg)
	for name, c := range valid {
		if err := c.Validate(); err != nil {
			t.Fatalf("valid command %s: %v", name, err)
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 40_000) // past bbolt's 32 KiB key limit
	n257 := strings.Repeat("n", 257)
	t65 := strings.Repeat("t", 65)

	tests := []struct {
		base  string // a key of valid; "" starts from an empty command
		field string
		spoil func(c *Command)
		// notFound: the id of the record acted on, so the error also
		// matches ErrNotFound.
		notFound bool
	}{
		{"", "command", func(c *Command) {}, false},
		{"outcome", "command", func(c *Command) { c.Sweep = &Sweep{At: t0, Limit: 1} }, false},

		{"enqueue", "enqueue.tenant", func(c *Command) { c.Enqueue.Tenant = "a b" }, false},
		{"enqueue", "enqueue.tenant", func(c *Command) { c.Enqueue.Tenant = t65 }, false},
		{"enqueue", "enqueue.tenant", func(c *Command) { c.Enqueue.Tenant = "_t" }, false},
		{"enqueue", "enqueue.tenant", func(c *Command) { c.Enqueue.Tenant = "t\x00" }, false},
		{"enqueue", "enqueue.tenant", func(c *Command) { c.Enqueue.Tenant = allTypes }, false},
		{"enqueue", "enqueue.id", func(c *Command) { c.Enqueue.ID = "msg_x" }, false},
		{"enqueue", "enqueue.id", func(c *Command) { c.Enqueue.ID = long }, false},
		{"enqueue", "enqueue.id", func(c *Command) { c.Enqueue.ID = strings.ToLower(c.Enqueue.ID) }, false},
		{"enqueue", "enqueue.id", func(c *Command) { c.Enqueue.ID = "msg_8" + c.Enqueue.ID[5:] }, false}, // past 128 bits
		{"enqueue", "enqueue.type", func(c *Command) { c.Enqueue.Type = "" }, false},
		{"enqueue", "enqueue.type", func(c *Command) { c.Enqueue.Type = "batch succeeded" }, false},
		{"enqueue", "enqueue.type", func(c *Command) { c.Enqueue.Type = n257 }, false},
		{"enqueue", "enqueue.type", func(c *Command) { c.Enqueue.Type = "caf\xc3\xa9" }, false},
		{"enqueue", "enqueue.created_at", func(c *Command) { c.Enqueue.CreatedAt = 0 }, false},
		{"enqueue", "enqueue.created_at", func(c *Command) { c.Enqueue.CreatedAt = math.MinInt64 }, false},
		{"enqueue", "enqueue.envelope", func(c *Command) { c.Enqueue.Envelope = nil }, false},
		{"enqueue", "enqueue.envelope", func(c *Command) { c.Enqueue.Envelope = make([]byte, MaxEnvelopeBytes+1) }, false},
		{"enqueue", "enqueue.idempotency_key", func(c *Command) { c.Enqueue.IdempotencyKey = n257 }, false},
		{"enqueue", "enqueue.idempotency_key", func(c *Command) { c.Enqueue.IdempotencyKey = long }, false},
		{"enqueue", "enqueue.idempotency_key", func(c *Command) { c.Enqueue.IdempotencyKey = "" }, false},
		{"enqueue", "enqueue.idempotency_expires_at", func(c *Command) { c.Enqueue.IdempotencyExpiresAt = t0 }, false},
		{"enqueue uris", "enqueue.uris", func(c *Command) { c.Enqueue.URIs = make([]string, MaxURIs+1) }, false},
		{"enqueue uris", "enqueue.uris", func(c *Command) { c.Enqueue.URIs[0] = "ftp://o.example" }, false},
		{"enqueue uris", "enqueue.uris", func(c *Command) { c.Enqueue.URIs[0] = "https://user:pw@o.example" }, false},
		{"enqueue uris", "enqueue.uris", func(c *Command) { c.Enqueue.URIs[0] = "/relative" }, false},
		{"enqueue uris", "enqueue.uris", func(c *Command) { c.Enqueue.URIs[0] = "https://o.example/" + strings.Repeat("p", 2048) }, false},
		{"enqueue uris", "enqueue.endpoint_ids", func(c *Command) { c.Enqueue.EndpointIDs = []string{epID("a")} }, false},
		{"enqueue ping", "enqueue.endpoint_ids", func(c *Command) { c.Enqueue.EndpointIDs = make([]string, MaxURIs+1) }, false},
		{"enqueue ping", "enqueue.endpoint_ids", func(c *Command) { c.Enqueue.EndpointIDs[0] = "ep_a" }, false},

		{"outcome", "outcome.delivery_id", func(c *Command) { c.Outcome.DeliveryID = m }, false},
		{"outcome", "outcome.delivery_id", func(c *Command) { c.Outcome.DeliveryID = long }, false},
		{"outcome", "outcome.attempt", func(c *Command) { c.Outcome.Attempt = 0 }, false},
		{"outcome", "outcome.at", func(c *Command) { c.Outcome.At = -1 }, false},
		{"outcome", "outcome.duration_ms", func(c *Command) { c.Outcome.DurationMS = -1 }, false},
		{"outcome", "outcome.status_code", func(c *Command) { c.Outcome.StatusCode = 99 }, false},
		{"outcome", "outcome.status_code", func(c *Command) { c.Outcome.StatusCode = 600 }, false},
		{"outcome", "outcome.error", func(c *Command) { c.Outcome.Error = strings.Repeat("e", MaxErrorText+1) }, false},
		{"outcome", "outcome.error", func(c *Command) { c.Outcome.Error = "bad \xff" }, false},
		{"outcome", "outcome.result", func(c *Command) { c.Outcome.Result = "exploded" }, false},
		{"outcome", "outcome.next_attempt_at", func(c *Command) { c.Outcome.NextAttemptAt = 0 }, false},
		{"outcome", "outcome.next_attempt_at", func(c *Command) { c.Outcome.Result, c.Outcome.NextAttemptAt = ResultFailed, -1 }, false},

		{"create_endpoint", "create_endpoint.endpoint.id", func(c *Command) { c.CreateEndpoint.Endpoint.ID = "ep_a" }, false},
		{"create_endpoint", "create_endpoint.endpoint.id", func(c *Command) { c.CreateEndpoint.Endpoint.ID = long }, false},
		{"create_endpoint", "create_endpoint.endpoint.tenant", func(c *Command) { c.CreateEndpoint.Endpoint.Tenant = "é" }, false},
		{"create_endpoint", "create_endpoint.endpoint.url", func(c *Command) { c.CreateEndpoint.Endpoint.URL = "" }, false},
		{"create_endpoint", "create_endpoint.endpoint.url", func(c *Command) { c.CreateEndpoint.Endpoint.URL = "https://" }, false},
		{"create_endpoint", "create_endpoint.endpoint.url", func(c *Command) { c.CreateEndpoint.Endpoint.URL = "javascript:alert(1)" }, false},
		{"create_endpoint", "create_endpoint.endpoint.url", func(c *Command) { c.CreateEndpoint.Endpoint.URL = "https://a b.example" }, false},
		{"create_endpoint", "create_endpoint.endpoint.name", func(c *Command) { c.CreateEndpoint.Endpoint.Name = n257 }, false},
		{"create_endpoint", "create_endpoint.endpoint.name", func(c *Command) { c.CreateEndpoint.Endpoint.Name = "\xc3" }, false},
		{"create_endpoint", "create_endpoint.endpoint.event_types", func(c *Command) {
			c.CreateEndpoint.Endpoint.EventTypes = make([]string, MaxEventTypes+1)
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.event_types", func(c *Command) { c.CreateEndpoint.Endpoint.EventTypes = []string{"x", ""} }, false},
		{"create_endpoint", "create_endpoint.endpoint.state", func(c *Command) { c.CreateEndpoint.Endpoint.State = "paused" }, false},
		{"create_endpoint", "create_endpoint.endpoint.state", func(c *Command) { c.CreateEndpoint.Endpoint.State = "" }, false},
		{"create_endpoint", "create_endpoint.endpoint.rate_limit_per_s", func(c *Command) { c.CreateEndpoint.Endpoint.RateLimitPerS = -1 }, false},
		{"create_endpoint", "create_endpoint.endpoint.rate_limit_per_s", func(c *Command) {
			c.CreateEndpoint.Endpoint.RateLimitPerS = MaxRateLimit + 1
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) { c.CreateEndpoint.Endpoint.Secrets = nil }, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) {
			c.CreateEndpoint.Endpoint.Secrets = make([]Secret, MaxSecrets+1)
			for i := range c.CreateEndpoint.Endpoint.Secrets {
				c.CreateEndpoint.Endpoint.Secrets[i].Key = testSecret("s")
			}
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) { c.CreateEndpoint.Endpoint.Secrets[0].Key = "whsec_2" }, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) { c.CreateEndpoint.Endpoint.Secrets[0].Key = "whsec_" }, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) {
			c.CreateEndpoint.Endpoint.Secrets[0].Key = "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, minSecretBytes-1))
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) {
			c.CreateEndpoint.Endpoint.Secrets[0].Key = "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, maxSecretBytes+1))
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) {
			c.CreateEndpoint.Endpoint.Secrets[0].Key = "whsec_" + strings.Repeat("A", 31) + "B=" // padding bits set
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) {
			c.CreateEndpoint.Endpoint.Secrets[0].Key = strings.TrimPrefix(testSecret("s"), "whsec_")
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) {
			k := testSecret("s")
			c.CreateEndpoint.Endpoint.Secrets[0].Key = k[:20] + "\n" + k[20:]
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) { c.CreateEndpoint.Endpoint.Secrets[0].Key = "hsl1_garbage" }, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) {
			c.CreateEndpoint.Endpoint.Secrets[0].Key = string(sealedLen(t, MaxSealedBytes+5))
		}, false},
		{"create_endpoint", "create_endpoint.endpoint.secrets", func(c *Command) { c.CreateEndpoint.Endpoint.Secrets[0].ExpiresAt = -1 }, false},
		{"create_endpoint", "create_endpoint.endpoint.created_at", func(c *Command) { c.CreateEndpoint.Endpoint.CreatedAt = -1 }, false},
		{"create_endpoint", "create_endpoint.endpoint.updated_at", func(c *Command) { c.CreateEndpoint.Endpoint.UpdatedAt = -1 }, false},

		{"update_endpoint", "update_endpoint.tenant", func(c *Command) { c.UpdateEndpoint.Tenant = "-" }, false},
		{"update_endpoint", "update_endpoint.id", func(c *Command) { c.UpdateEndpoint.ID = "ep_a" }, true},
		{"update_endpoint", "update_endpoint.id", func(c *Command) { c.UpdateEndpoint.ID = long }, true},
		{"update_endpoint", "update_endpoint.at", func(c *Command) { c.UpdateEndpoint.At = -1 }, false},
		{"update_endpoint", "update_endpoint.url", func(c *Command) { c.UpdateEndpoint.URL = ptr("") }, false},
		{"update_endpoint", "update_endpoint.name", func(c *Command) { c.UpdateEndpoint.Name = ptr(n257) }, false},
		{"update_endpoint", "update_endpoint.event_types", func(c *Command) { c.UpdateEndpoint.EventTypes = ptr([]string{"a/b"}) }, false},
		{"update_endpoint", "update_endpoint.state", func(c *Command) { c.UpdateEndpoint.State = ptr(StateDisabledFailing) }, false},
		{"update_endpoint", "update_endpoint.state", func(c *Command) { c.UpdateEndpoint.State = ptr("") }, false},
		{"update_endpoint", "update_endpoint.rate_limit_per_s", func(c *Command) { c.UpdateEndpoint.RateLimitPerS = ptr(-5) }, false},

		{"delete_endpoint", "delete_endpoint.tenant", func(c *Command) { c.DeleteEndpoint.Tenant = t65 }, false},
		{"delete_endpoint", "delete_endpoint.id", func(c *Command) { c.DeleteEndpoint.ID = "" }, true},
		{"delete_endpoint", "delete_endpoint.at", func(c *Command) { c.DeleteEndpoint.At = -1 }, false},

		{"rotate_secret", "rotate_secret.tenant", func(c *Command) { c.RotateSecret.Tenant = "a/b" }, false},
		{"rotate_secret", "rotate_secret.endpoint_id", func(c *Command) { c.RotateSecret.EndpointID = m }, true},
		{"rotate_secret", "rotate_secret.secret", func(c *Command) { c.RotateSecret.Secret = "x" }, false},
		{"rotate_secret", "rotate_secret.secret", func(c *Command) { c.RotateSecret.Secret = "whsec_" + long }, false},
		{"rotate_secret", "rotate_secret.at", func(c *Command) { c.RotateSecret.At, c.RotateSecret.RevokeAt = -2, -1 }, false},
		{"rotate_secret", "rotate_secret.revoke_at", func(c *Command) { c.RotateSecret.RevokeAt = t0 - 1 }, false},

		{"requeue message", "requeue.tenant", func(c *Command) { c.Requeue.Tenant = " " }, false},
		{"requeue window", "requeue.tenant", func(c *Command) { c.Requeue.Tenant = "." }, false},
		{"requeue message", "requeue.message_id", func(c *Command) { c.Requeue.MessageID = "msg_nope" }, true},
		{"requeue message", "requeue.message_id", func(c *Command) { c.Requeue.Since = t0 }, false},
		{"requeue message", "requeue.at", func(c *Command) { c.Requeue.At = 0 }, false},
		{"requeue window", "requeue.since", func(c *Command) { c.Requeue.Since = -1 }, false},
		{"requeue window", "requeue.until", func(c *Command) { c.Requeue.Until = t0 }, false},
		{"requeue window", "requeue.until", func(c *Command) { c.Requeue.Until = -1 }, false},

		{"add_signing_key", "add_signing_key.key.id", func(c *Command) { c.AddSigningKey.Key.ID = "k 2" }, false},
		{"add_signing_key", "add_signing_key.key.id", func(c *Command) { c.AddSigningKey.Key.ID = strings.Repeat("k", 65) }, false},
		{"add_signing_key", "add_signing_key.key.id", func(c *Command) { c.AddSigningKey.Key.ID = "k2=" }, false},
		{"add_signing_key", "add_signing_key.key.alg", func(c *Command) { c.AddSigningKey.Key.Alg = "hs256" }, false},
		{"add_signing_key", "add_signing_key.key.private", func(c *Command) { c.AddSigningKey.Key.Private = nil }, false},
		{"add_signing_key", "add_signing_key.key.private", func(c *Command) { c.AddSigningKey.Key.Private = make([]byte, 64) }, false},
		{"add_signing_key", "add_signing_key.key.private", func(c *Command) { c.AddSigningKey.Key.Private = []byte("hsl1_AAAA") }, false},
		{"add_signing_key", "add_signing_key.key.private", func(c *Command) { c.AddSigningKey.Key.Private = sealedLen(t, MaxSealedBytes+5) }, false},
		{"add rs256 key", "add_signing_key.key.private", func(c *Command) { c.AddSigningKey.Key.Private = testPrivate(AlgEd25519) }, false},
		{"add rs256 key", "add_signing_key.key.private", func(c *Command) {
			c.AddSigningKey.Key.Private = x509.MarshalPKCS1PrivateKey(small)
		}, false},
		{"add rs256 key", "add_signing_key.key.private", func(c *Command) {
			c.AddSigningKey.Key.Private = append(bytes.Clone(testRSAKey), 0)
		}, false},
		{"add_signing_key", "add_signing_key.key.created_at", func(c *Command) { c.AddSigningKey.Key.CreatedAt = 0 }, false},
		{"add_signing_key", "add_signing_key.key.retired_at", func(c *Command) { c.AddSigningKey.Key.RetiredAt = t0 }, false},

		{"sweep", "sweep.at", func(c *Command) { c.Sweep.At = -1 }, false},
		{"sweep", "sweep.retain_since", func(c *Command) { c.Sweep.RetainSince = math.MinInt64 }, false},
		{"sweep", "sweep.keys_retired_before", func(c *Command) { c.Sweep.KeysRetiredBefore = -1 }, false},
		{"sweep", "sweep.limit", func(c *Command) { c.Sweep.Limit = 0 }, false},
		{"sweep", "sweep.limit", func(c *Command) { c.Sweep.Limit = MaxSweepLimit + 1 }, false},

		{"put_node", "put_node.id", func(c *Command) { c.PutNode.ID = "" }, false},
		{"put_node", "put_node.id", func(c *Command) { c.PutNode.ID = "-n1" }, false},
		{"put_node", "put_node.id", func(c *Command) { c.PutNode.ID = "n 1" }, false},
		{"put_node", "put_node.id", func(c *Command) { c.PutNode.ID = strings.Repeat("n", 65) }, false},
		{"put_node", "put_node.api_addr", func(c *Command) { c.PutNode.APIAddr = "localhost" }, false},
		{"put_node", "put_node.api_addr", func(c *Command) { c.PutNode.APIAddr = strings.Repeat("h", 256) + ":80" }, false},
		{"put_node", "put_node.raft_addr", func(c *Command) { c.PutNode.RaftAddr = "a:b:c" }, false},

		{"delete_tenant", "delete_tenant.tenant", func(c *Command) { c.DeleteTenant.Tenant = "" }, false},
		{"delete_tenant", "delete_tenant.tenant", func(c *Command) { c.DeleteTenant.Tenant = t65 }, false},
		{"delete_tenant", "delete_tenant.at", func(c *Command) { c.DeleteTenant.At = -1 }, false},
		{"delete_tenant", "delete_tenant.limit", func(c *Command) { c.DeleteTenant.Limit = 0 }, false},
		{"delete_tenant", "delete_tenant.limit", func(c *Command) { c.DeleteTenant.Limit = MaxSweepLimit + 1 }, false},
		{"create_token", "create_tenant_token.tenant", func(c *Command) { c.CreateTenantToken.Tenant = "" }, false},
		{"create_token", "create_tenant_token.tenant", func(c *Command) { c.CreateTenantToken.Tenant = "t t" }, false},
		{"create_token", "create_tenant_token.hash", func(c *Command) { c.CreateTenantToken.Hash = nil }, false},
		{"create_token", "create_tenant_token.hash", func(c *Command) { c.CreateTenantToken.Hash = make([]byte, 31) }, false},
		{"create_token", "create_tenant_token.hash", func(c *Command) { c.CreateTenantToken.Hash = make([]byte, 33) }, false},
		{"create_token", "create_tenant_token.created_at", func(c *Command) { c.CreateTenantToken.CreatedAt = 0 }, false},
		{"create_token", "create_tenant_token.expires_at", func(c *Command) { c.CreateTenantToken.ExpiresAt = t0 }, false},
		{"create_token", "create_tenant_token.expires_at", func(c *Command) { c.CreateTenantToken.ExpiresAt = math.MinInt64 }, false},
		{"revoke_tokens", "revoke_tenant_tokens.tenant", func(c *Command) { c.RevokeTenantTokens.Tenant = "" }, false},
		{"revoke_tokens", "revoke_tenant_tokens.tenant", func(c *Command) { c.RevokeTenantTokens.Tenant = "t\n" }, false},
	}
	before := mustDump(t, s)
	delete(before, "meta")
	for _, tc := range tests {
		var c Command
		if tc.base != "" {
			c = cloneCommand(t, valid[tc.base])
		}
		tc.spoil(&c)
		res := run(t, s, c)
		var inv *InvalidError
		if !errors.As(res[0].Err, &inv) || inv.Field != tc.field {
			t.Errorf("%s with %s spoilt: %v, want an invalid %s", tc.base, tc.field, res[0].Err, tc.field)
			continue
		}
		if got := errors.Is(res[0].Err, ErrNotFound); got != tc.notFound {
			t.Errorf("%s with %s spoilt: errors.Is(%v, ErrNotFound) = %v", tc.base, tc.field, res[0].Err, got)
		}
		if want := "store: invalid " + tc.field + ": "; !strings.HasPrefix(res[0].Err.Error(), want) || len(res[0].Err.Error()) > 200 {
			t.Errorf("error text %q: want %q and a short message", res[0].Err, want)
		}
		if err := c.Validate(); err == nil || err.Error() != res[0].Err.Error() {
			t.Errorf("Validate() = %v, Apply rejected with %v", err, res[0].Err)
		}
		after := mustDump(t, s)
		delete(after, "meta")
		if d := diffDumps(before, after); d != "" {
			t.Fatalf("%s with %s spoilt changed the state:\n%s", tc.base, tc.field, d)
		}
	}
}

// cloneCommand deep-copies c through the log encoding, so spoiling the copy
// leaves the original valid.
func cloneCommand(t testing.TB, c Command) Command {
	t.Helper()
	data, err := EncodeBatch([]Command{c})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	return cmds[0]
}

// TestValidateAcceptsLimits: values at every limit are accepted, and so
// are sealed secrets and keys.
func TestValidateAcceptsLimits(t *testing.T) {
	g := newIDs(71)
	m := g.next(t, "msg", t0)
	types := make([]string, MaxEventTypes)
	for i := range types {
		types[i] = strings.Repeat("t", 256)
	}
	secrets := make([]Secret, MaxSecrets)
	for i := range secrets {
		secrets[i].Key = testSecret("s")
	}
	secrets[1].Key = "whsec_" + strings.Repeat("A", 32)          // 24 bytes
	secrets[2].Key = "whsec_" + strings.Repeat("A", 84) + "AA==" // 64 bytes
	secrets[3].Key = string(testSealer.Seal([]byte(testSecret("s")), epID("a")))
	secrets[4].Key = string(sealedLen(t, MaxSealedBytes-3))
	uris := make([]string, MaxURIs)
	for i := range uris {
		uris[i] = "https://o.example/" + strings.Repeat("p", 2048-len("https://o.example/"))
	}
	big := override(m, strings.Repeat("t", 256), math.MaxInt64, uris...)
	big.Enqueue.Envelope = make([]byte, MaxEnvelopeBytes)
	big = withKey(big, strings.Repeat("\xff", MaxIdempotencyKey), math.MaxInt64)
	big.Enqueue.IdempotencyExpiresAt = math.MaxInt64
	big.Enqueue.CreatedAt = math.MaxInt64 - 1
	ep := createEndpoint(epID("a"), "http://[::1]:8080/h?q=1#f", math.MaxInt64, types...)
	ep.CreateEndpoint.Endpoint.Name = strings.Repeat("é", MaxNameBytes/2)
	ep.CreateEndpoint.Endpoint.RateLimitPerS = MaxRateLimit
	ep.CreateEndpoint.Endpoint.Secrets = secrets
	ep.CreateEndpoint.Endpoint.State = StateDisabledFailing

	for name, c := range map[string]Command{
		"enqueue at the limits": big,
		"ping to MaxURIs": ping(m, 1, epID("a"), epID("b"), epID("c"), epID("d"), epID("e"),
			epID("f"), epID("g"), epID("h"), epID("i"), epID("j")),
		"outcome at the limits": {Outcome: &Outcome{DeliveryID: DeliveryID(m, maxDeliveries-1), Attempt: math.MaxInt, At: math.MaxInt64,
			DurationMS: math.MaxInt64, StatusCode: 599, Error: strings.Repeat("€", MaxErrorText/3), Result: ResultRetry, NextAttemptAt: 1}},
		"outcome 100":        outcome(DeliveryID(m, 0), 1, 0, ResultSucceeded, 100, 0),
		"endpoint at limits": ep,
		"update to nothing": {UpdateEndpoint: &UpdateEndpoint{ID: epID("a"), At: 0, URL: ptr("https://x"), Name: ptr(""),
			EventTypes: ptr([]string{}), State: ptr(StateDisabled), RateLimitPerS: ptr(0)}},
		"rotate to sealed": {RotateSecret: &RotateSecret{EndpointID: epID("a"),
			Secret: string(testSealer.Seal([]byte(testSecret("s")), epID("a"))), At: 0, RevokeAt: math.MaxInt64}},
		"requeue everything": {Requeue: &Requeue{At: 1}},
		"requeue to the end": {Requeue: &Requeue{Since: math.MaxInt64 - 1, Until: math.MaxInt64, At: math.MaxInt64}},
		"sealed ed25519": {AddSigningKey: &AddSigningKey{Key: SigningKey{ID: strings.Repeat("-", 64), Alg: AlgEd25519,
			Private: testSealer.Seal(testPrivate(AlgEd25519), "k"), CreatedAt: 1}}},
		"sealed rs256": {AddSigningKey: &AddSigningKey{Key: SigningKey{ID: "_", Alg: AlgRS256,
			Private: testSealer.Seal(testRSAKey, "k"), CreatedAt: 1}}},
		"seed that looks sealed": {AddSigningKey: &AddSigningKey{Key: SigningKey{ID: "k", Alg: AlgEd25519,
			Private: []byte("hsl1_" + strings.Repeat("A", 27)), CreatedAt: 1}}},
		"sweep at the limits":         {Sweep: &Sweep{At: math.MaxInt64, RetainSince: math.MaxInt64, KeysRetiredBefore: math.MaxInt64, Limit: MaxSweepLimit}},
		"node without addresses":      {PutNode: &Node{ID: "N" + strings.Repeat("._-", 21)}},
		"longest tenant":              inTenant("9"+strings.Repeat("._-", 21), override(m, "x", 1, "https://o.example")),
		"tenant delete at the limits": {DeleteTenant: &DeleteTenant{Tenant: "T", At: math.MaxInt64, Limit: MaxSweepLimit}},
		"token at the limits":         {CreateTenantToken: &CreateTenantToken{Tenant: "T", Hash: make([]byte, 32), CreatedAt: math.MaxInt64 - 1, ExpiresAt: math.MaxInt64}},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestApplyRejectsLongBatch: an entry of more commands than a batch may
// hold is rejected whole, with one result per command, and applies none.
func TestApplyRejectsLongBatch(t *testing.T) {
	s := openTest(t)
	g := newIDs(72)
	cmds := make([]Command, MaxCommandsPerEntry+1)
	for i := range cmds {
		cmds[i] = override(g.next(t, "msg", t0), "x", t0, "https://o.example")
	}
	if _, err := EncodeBatch(cmds); err == nil {
		t.Fatal("EncodeBatch of a batch too long to apply succeeded")
	}
	body, err := encode(cmds)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Apply([]Entry{{Index: 1, Data: append([]byte{entryVersion}, body...)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res[0]) != len(cmds) {
		t.Fatalf("%d results for %d commands", len(res[0]), len(cmds))
	}
	for i, r := range res[0] {
		if invalidField(r.Err) != "batch" || r.Index != 1 {
			t.Fatalf("command %d: %+v, want an invalid batch", i, r)
		}
	}
	if d := mustDump(t, s); len(d["messages"]) != 0 {
		t.Fatalf("%d messages applied from a rejected batch", len(d["messages"]))
	}
	if idx, _ := s.AppliedIndex(); idx != 1 {
		t.Fatalf("AppliedIndex = %d, want 1: a rejected entry is still applied", idx)
	}
	// The longest batch allowed applies.
	runOK(t, s, cmds[:MaxCommandsPerEntry]...)
}

func TestCheckFunctions(t *testing.T) {
	id := newIDs(73).next(t, "ep", t0)
	tests := []struct {
		name  string
		check func(string) error
		good  []string
		bad   []string
	}{
		{"CheckEventType", CheckEventType,
			[]string{"a", "batch.succeeded", "A-Z_0.9", strings.Repeat("x", 256)},
			[]string{"", " ", "a b", "a/b", "ü", strings.Repeat("x", 257), "a\x00"}},
		{"CheckURL", CheckURL,
			[]string{"http://a", "https://a.example/p?q#f", "https://[::1]:443/", "HTTPS://A.EXAMPLE", "https://a.example/" + strings.Repeat("p", 2048-18)},
			[]string{"", "a.example", "//a.example", "ftp://a.example", "https://", "https://:443", "https://u@a.example",
				"https://u:p@a.example", "https://a.example/\x7f", "https://a.example/" + strings.Repeat("p", 2048-17), "mailto:a@b"}},
		{"CheckNodeID", CheckNodeID,
			[]string{"n", "node1", "Node-1.a_b", "9" + strings.Repeat("x", 63)},
			[]string{"", "-n", ".n", "_n", "n 1", "n/1", "é", "9" + strings.Repeat("x", 64)}},
		{"CheckTenant", CheckTenant,
			[]string{"default", "a", "Acme-Corp.eu_1", "9" + strings.Repeat("x", 63)},
			[]string{"", "-a", ".a", "_a", "a b", "a/b", "a\x00b", "*", "é", "9" + strings.Repeat("x", 64)}},
		{"CheckID(ep)", func(s string) error { return CheckID("ep", s) },
			[]string{id, "ep_" + strings.Repeat("0", 26), "ep_7" + strings.Repeat("Z", 25)},
			[]string{"", "ep_", "ep", id[3:], "msg_" + id[3:], id + "0", id[:len(id)-1], "ep_8" + id[4:],
				"ep_" + strings.ToLower(id[3:]), "ep_" + strings.Repeat("U", 26), "ep_" + strings.Repeat("I", 26), "EP_" + id[3:]}},
	}
	for _, tt := range tests {
		for _, v := range tt.good {
			if err := tt.check(v); err != nil {
				t.Errorf("%s(%q) = %v", tt.name, v, err)
			}
		}
		for _, v := range tt.bad {
			err := tt.check(v)
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.HasPrefix(err.Error(), "store: invalid ") {
				t.Errorf("%s(%q) = %v, want an *InvalidError", tt.name, v, err)
			}
		}
	}
}
