package engine

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/signer/jwks"
)

// Deliveries to per-message URIs (webhook_config.uris) are signed with the
// cluster's key, whose public half the JWKS publishes.

// jwksOf parses the engine's current JWKS and returns it with its kids.
func jwksOf(t *testing.T, e *Engine) (*jwks.Set, []string) {
	t.Helper()
	doc, err := e.JWKS()
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	set, err := jwks.Parse(doc)
	if err != nil {
		t.Fatalf("jwks.Parse(%s): %v", doc, err)
	}
	var raw struct {
		Keys []struct {
			Kid string `json:"kid"`
			Kty string `json:"kty"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range raw.Keys {
		if k.Kid == "" {
			t.Fatalf("JWKS key without kid: %s", doc)
		}
		kids = append(kids, k.Kid)
	}
	return set, kids
}

// verifyWith checks a request against a JWKS, as a receiver would.
func verifyWith(set *jwks.Set, r received, audience string) error {
	return set.Verify(r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"),
		r.Body, jwks.VerifyConfig{Audience: audience})
}

// sendOverride enqueues a message to url only and returns the request the
// receiver got for it.
func sendOverride(t *testing.T, e *Engine, rc *receiver, metadata string) (*Message, received) {
	t.Helper()
	in := MessageInput{Type: "video.rendered", Data: json.RawMessage(`{"video":"v1"}`), URIs: []string{rc.URL}}
	if metadata != "" {
		in.UserMetadata = json.RawMessage(metadata)
	}
	msg := mustEnqueue(t, e, in)
	m := waitStatus(t, e, msg.ID, "succeeded")
	if len(m.Deliveries) != 1 || m.Deliveries[0].EndpointID != "" || m.Deliveries[0].URL != rc.URL {
		t.Fatalf("override deliveries = %+v, want one to %s without an endpoint", m.Deliveries, rc.URL)
	}
	for _, r := range rc.requests() {
		if r.Header.Get("webhook-id") == msg.ID {
			return m, r
		}
	}
	t.Fatalf("receiver has no request for %s", msg.ID)
	return nil, received{}
}

func TestOverrideURIsAreSignedV1aWithTheJWKSKey(t *testing.T) {
	t.Parallel()
	e := openEngine(t, withSchedule(50*time.Millisecond))
	rc := newReceiver(t, nil)
	registered := newReceiver(t, nil)
	mustCreateEndpoint(t, e, EndpointInput{URL: registered.URL})

	_, r := sendOverride(t, e, rc, `{"request_id":"r-42","tier":2}`)
	sig := r.Header.Get("webhook-signature")
	if !strings.HasPrefix(sig, "v1a,") || strings.Contains(sig, " ") {
		t.Fatalf("webhook-signature = %q, want one v1a token", sig)
	}
	set, kids := jwksOf(t, e)
	if len(set.Ed25519Keys()) != 1 || len(kids) != 1 {
		t.Fatalf("JWKS has %d Ed25519 keys (kids %v), want 1", len(set.Ed25519Keys()), kids)
	}
	if err := verifyWith(set, r, ""); err != nil {
		t.Fatalf("v1a signature does not verify against the JWKS: %v", err)
	}
	v, err := signer.NewVerifier(signer.VerifierConfig{PublicKeys: set.Ed25519Keys()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r.Header, r.Body); err != nil {
		t.Fatalf("signer.Verifier rejects the v1a signature: %v", err)
	}
	tampered := r
	tampered.Body = []byte(strings.Replace(string(r.Body), "r-42", "r-43", 1))
	if err := verifyWith(set, tampered, ""); !errors.Is(err, signer.ErrNoMatchingSignature) {
		t.Fatalf("tampered body verifies: %v", err)
	}
	var env struct {
		Type         string          `json:"type"`
		Version      string          `json:"version"`
		Timestamp    time.Time       `json:"timestamp"`
		Data         json.RawMessage `json:"data"`
		UserMetadata json.RawMessage `json:"user_metadata"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "video.rendered" || env.Version != "v1" || env.Timestamp.IsZero() ||
		string(env.Data) != `{"video":"v1"}` || string(env.UserMetadata) != `{"request_id":"r-42","tier":2}` {
		t.Fatalf("envelope = %s", r.Body)
	}
	if n := registered.count(); n != 0 {
		t.Fatalf("a message with URIs also went to %d registered endpoint(s)", n)
	}

	// Without metadata the envelope has no user_metadata member.
	_, r = sendOverride(t, e, rc, "")
	if strings.Contains(string(r.Body), "user_metadata") {
		t.Fatalf("envelope without metadata = %s", r.Body)
	}

	// 410 from an override URI has no endpoint to disable: it is retried
	// like any failure.
	gone := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	msg := mustEnqueue(t, e, MessageInput{Type: "video.rendered", URIs: []string{gone.URL}})
	m := waitStatus(t, e, msg.ID, "failed")
	if d := m.Deliveries[0]; d.AttemptCount != 2 || d.LastStatusCode != 410 {
		t.Fatalf("override answering 410 = %+v, want retried per the schedule", d)
	}
}

// jwtParts decodes a compact JWT's header and claims without verifying it.
func jwtParts(t *testing.T, token string) (header map[string]any, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", token)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	return header, claims
}

func TestOverrideJWTModeVerifiesAgainstJWKS(t *testing.T) {
	t.Parallel()
	const issuer = "https://herald.example"
	e := openEngine(t, func(c *Config) {
		c.OverrideSignature = SignatureJWT
		c.PublicURL = issuer
	})
	rc := newReceiver(t, nil)
	msg, r := sendOverride(t, e, rc, `{"k":"v"}`)

	token := r.Header.Get("webhook-signature")
	header, claims := jwtParts(t, token)
	set, kids := jwksOf(t, e)
	if kid, _ := header["kid"].(string); header["alg"] != "RS256" || !slices.Contains(kids, kid) {
		t.Fatalf("JWT header = %v, want RS256 with a kid from the JWKS %v", header, kids)
	}
	sum := sha256.Sum256(r.Body)
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if claims["iss"] != issuer || claims["aud"] != rc.URL || claims["jti"] != msg.ID ||
		claims["body_sha256"] != base64.RawURLEncoding.EncodeToString(sum[:]) ||
		iat == 0 || exp <= iat || exp-iat > (5*time.Minute).Seconds() {
		t.Fatalf("JWT claims = %v", claims)
	}
	if err := verifyWith(set, r, rc.URL); err != nil {
		t.Fatalf("JWT does not verify against the JWKS with aud = the URL: %v", err)
	}
	if err := verifyWith(set, r, rc.URL+"/elsewhere"); err == nil {
		t.Fatal("JWT verifies for another audience")
	}
	tampered := r
	tampered.Body = append([]byte(nil), r.Body...)
	tampered.Body[len(tampered.Body)-2] ^= 1
	if err := verifyWith(set, tampered, rc.URL); !errors.Is(err, jwks.ErrInvalidJWT) {
		t.Fatalf("JWT verifies a tampered body: %v", err)
	}
}

func TestRotateSigningKey(t *testing.T) {
	t.Parallel()
	t.Run("jwt", func(t *testing.T) {
		t.Parallel()
		e := openEngine(t, func(c *Config) {
			c.OverrideSignature = SignatureJWT
			c.PublicURL = "https://herald.example"
		})
		rc := newReceiver(t, nil)
		_, before := sendOverride(t, e, rc, "")
		oldHeader, _ := jwtParts(t, before.Header.Get("webhook-signature"))
		_, oldKids := jwksOf(t, e)

		if err := e.RotateSigningKey(ctxb); err != nil {
			t.Fatal(err)
		}
		_, after := sendOverride(t, e, rc, "")
		newHeader, _ := jwtParts(t, after.Header.Get("webhook-signature"))
		set, kids := jwksOf(t, e)
		if newHeader["kid"] == oldHeader["kid"] {
			t.Fatalf("kid %v unchanged after rotation", newHeader["kid"])
		}
		if len(oldKids) != 1 || len(kids) != 2 || !slices.Contains(kids, oldHeader["kid"].(string)) || !slices.Contains(kids, newHeader["kid"].(string)) {
			t.Fatalf("JWKS kids %v before, %v after; want the old and the new", oldKids, kids)
		}
		for name, r := range map[string]received{"before": before, "after": after} {
			if err := verifyWith(set, r, rc.URL); err != nil {
				t.Errorf("delivery signed %s rotation does not verify against the new JWKS: %v", name, err)
			}
		}
	})
	t.Run("v1a", func(t *testing.T) {
		t.Parallel()
		e := openEngine(t, nil)
		rc := newReceiver(t, nil)
		_, before := sendOverride(t, e, rc, "")
		oldSet, _ := jwksOf(t, e)
		if err := e.RotateSigningKey(ctxb); err != nil {
			t.Fatal(err)
		}
		_, after := sendOverride(t, e, rc, "")
		newSet, kids := jwksOf(t, e)
		if len(kids) != 2 || len(newSet.Ed25519Keys()) != 2 {
			t.Fatalf("JWKS after rotation has kids %v, want 2 Ed25519 keys", kids)
		}
		if err := verifyWith(oldSet, after, ""); !errors.Is(err, signer.ErrNoMatchingSignature) {
			t.Fatalf("delivery after rotation verifies with the old key alone (%v): the key did not change", err)
		}
		for name, r := range map[string]received{"before": before, "after": after} {
			if err := verifyWith(newSet, r, ""); err != nil {
				t.Errorf("delivery signed %s rotation does not verify against the new JWKS: %v", name, err)
			}
		}
	})
}

// Rotating the signing key through a follower goes to the leader like any
// write, and every node's cached signer follows: the leader that signed
// with the old key, and the followers that may lead next.
func TestClusterRotateSigningKeyThroughAFollower(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	follower := (lead + 1) % 3
	rc := newReceiver(t, nil)
	_, before := sendOverride(t, c.engines[lead], rc, "")
	oldSet, _ := jwksOf(t, c.engines[follower])
	for i, e := range c.engines {
		if _, err := e.keys.Override(rc.URL); err != nil { // every node loads the current key
			t.Fatalf("n%d: %v", i+1, err)
		}
	}

	if err := c.engines[follower].RotateSigningKey(ctxb); err != nil {
		t.Fatalf("RotateSigningKey through a follower: %v", err)
	}
	newSet, kids := jwksOf(t, c.engines[follower])
	if len(kids) != 2 {
		t.Fatalf("the follower's JWKS after rotation has kids %v, want the old and the new", kids)
	}
	_, after := sendOverride(t, c.engines[follower], rc, "")
	if err := verifyWith(oldSet, after, ""); !errors.Is(err, signer.ErrNoMatchingSignature) {
		t.Fatalf("delivery after rotation verifies with the old key alone (%v): the leader signs with a stale key", err)
	}
	for name, r := range map[string]received{"before": before, "after": after} {
		if err := verifyWith(newSet, r, ""); err != nil {
			t.Errorf("delivery signed %s rotation does not verify against the new JWKS: %v", name, err)
		}
	}
	// Whichever node leads next signs with the new key.
	for i, e := range c.engines {
		waitFor(t, 10*time.Second, "the rotation to reach every node", func() bool { return len(mustKids(t, e)) == 2 })
		s, err := e.keys.Override(rc.URL)
		if err != nil {
			t.Fatalf("n%d: %v", i+1, err)
		}
		h := http.Header{}
		if err := signer.SetHeaders(h, s, "msg_x", time.Now(), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		r := received{Header: http.Header{}, Body: []byte(`{}`)}
		for k, v := range h { // as a server parses them
			r.Header[http.CanonicalHeaderKey(k)] = v
		}
		if err := verifyWith(oldSet, r, ""); !errors.Is(err, signer.ErrNoMatchingSignature) {
			t.Errorf("n%d still signs with the old key (%v)", i+1, err)
		}
		if err := verifyWith(newSet, r, ""); err != nil {
			t.Errorf("n%d does not sign with the new key: %v", i+1, err)
		}
	}
}

func mustKids(t *testing.T, e *Engine) []string {
	_, kids := jwksOf(t, e)
	return kids
}
