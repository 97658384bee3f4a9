package jwks

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
)

// RSA keys are generated once: generation is slow under -race.
var (
	rsaKey      = sync.OnceValue(newRSAKey)
	otherRSAKey = sync.OnceValue(newRSAKey)
)

func newRSAKey() *rsa.PrivateKey {
	k, err := GenerateRSAKey()
	if err != nil {
		panic(err)
	}
	return k
}

// RFC 8037 appendix A: the Ed25519 example key and its RFC 7638 thumbprint.
const (
	rfcSeed       = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfcPublic     = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfcThumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
)

func rfcKey(t testing.TB) ed25519.PrivateKey {
	seed, err := base64.RawURLEncoding.DecodeString(rfcSeed)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func TestKeyID(t *testing.T) {
	pub := rfcKey(t).Public().(ed25519.PublicKey)
	if got := base64.RawURLEncoding.EncodeToString(pub); got != rfcPublic {
		t.Fatalf("public key = %s, want %s", got, rfcPublic)
	}
	kid, err := KeyID(pub)
	if err != nil || kid != rfcThumbprint {
		t.Fatalf("KeyID = %q, %v; want %q", kid, err, rfcThumbprint)
	}
	if _, err := KeyID(rsaKey()); err == nil {
		t.Fatal("KeyID accepted a private key")
	}
	if _, err := KeyID(ed25519.PublicKey{1, 2}); err == nil {
		t.Fatal("KeyID accepted a short Ed25519 key")
	}
}

func TestMarshal(t *testing.T) {
	edPub := rfcKey(t).Public().(ed25519.PublicKey)
	rsaPub := &rsaKey().PublicKey
	doc, err := Marshal(edPub, rsaPub, edPub)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	rsaKid, _ := KeyID(rsaPub)
	want := []map[string]string{
		{"kty": "OKP", "crv": "Ed25519", "x": rfcPublic, "kid": rfcThumbprint, "use": "sig", "alg": "EdDSA"},
		{"kty": "RSA", "kid": rsaKid, "use": "sig", "alg": "RS256", "e": "AQAB"},
	}
	if len(got.Keys) != len(want) {
		t.Fatalf("keys = %s", doc)
	}
	for i, w := range want {
		for k, v := range w {
			if got.Keys[i][k] != v {
				t.Errorf("key %d: %s = %q, want %q", i, k, got.Keys[i][k], v)
			}
		}
		if _, private := got.Keys[i]["d"]; private {
			t.Errorf("key %d carries private material", i)
		}
	}

	set, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if keys := set.Ed25519Keys(); len(keys) != 1 || !keys[0].Equal(edPub) {
		t.Fatalf("Ed25519Keys = %v", keys)
	}
	if _, err := Marshal(rsaKey()); err == nil {
		t.Fatal("Marshal accepted a private key")
	}
}

func TestParseRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":      `{"keys": [`,
		"no keys":       `{"kty":"OKP","crv":"Ed25519","x":"` + rfcPublic + `"}`,
		"keys not list": `{"keys": {}}`,
		"private key":   `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + rfcPublic + `","d":"` + rfcSeed + `"}]}`,
		"symmetric key": `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		"duplicate kid": `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + rfcPublic + `","kid":"a"},{"kty":"OKP","crv":"Ed25519","x":"` + rfcPublic + `","kid":"a"}]}`,
		"bad key":       `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, doc)
		} else if !strings.HasPrefix(err.Error(), "jwks: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

// fixture is a published JWKS with one key of each kind, and a clock.
type fixture struct {
	set   *Set
	jwt   *JWTSigner
	ed    signer.Signer
	now   time.Time
	ts    string
	id    string
	aud   string
	body  []byte
	token string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	edPriv := rfcKey(t)
	doc, err := Marshal(edPriv.Public(), &rsaKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	js, err := NewJWTSigner(rsaKey(), "https://herald.example.com")
	if err != nil {
		t.Fatal(err)
	}
	ed, _ := signer.NewEd25519(edPriv)
	f := &fixture{set: set, jwt: js, ed: ed, now: time.Unix(1700000000, 0), id: "msg_1", aud: "https://receiver.example.com/hook", body: []byte(`{"type":"batch.succeeded"}`)}
	f.ts = strconv.FormatInt(f.now.Unix(), 10)
	f.token, err = js.For(f.aud).Sign(f.id, f.now, f.body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) cfg(now time.Time) VerifyConfig {
	return VerifyConfig{Audience: f.aud, Now: func() time.Time { return now }}
}

func TestJWTClaims(t *testing.T) {
	f := newFixture(t)
	parts := strings.Split(f.token, ".")
	if len(parts) != 3 || !isJWT(f.token) {
		t.Fatalf("not a compact JWT: %s", f.token)
	}
	var header map[string]string
	var claims map[string]any
	for i, dst := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	kid, _ := KeyID(&rsaKey().PublicKey)
	if header["alg"] != "RS256" || header["kid"] != kid {
		t.Errorf("header = %v", header)
	}
	sum := sha256.Sum256(f.body)
	want := map[string]any{
		"iss": "https://herald.example.com", "aud": f.aud, "jti": f.id,
		"iat": float64(f.now.Unix()), "exp": float64(f.now.Add(TokenTTL).Unix()),
		"body_sha256": base64.RawURLEncoding.EncodeToString(sum[:]),
	}
	if len(claims) != len(want) {
		t.Errorf("claims = %v, want %v", claims, want)
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
}

func TestSetVerify(t *testing.T) {
	f := newFixture(t)
	v1a, _ := f.ed.Sign(f.id, f.now, f.body)
	other, err := NewJWTSigner(otherRSAKey(), "https://herald.example.com")
	if err != nil {
		t.Fatal(err)
	}
	otherToken, _ := other.Sign(f.aud, f.id, f.now, f.body)
	header, claims, sig := splitJWT(t, f.token)

	tests := []struct {
		name    string
		id, ts  string
		sig     string
		body    []byte
		now     time.Time
		aud     string
		want    error
		wantMsg string
	}{
		{name: "jwt"},
		{name: "v1a", sig: v1a},
		{name: "jwt without audience check", aud: "-"},
		{name: "jwt near expiry", now: f.now.Add(TokenTTL)},
		{name: "missing id", id: "-", want: signer.ErrMissingHeaders},
		{name: "missing timestamp", ts: "-", want: signer.ErrMissingHeaders},
		{name: "missing signature", sig: "-", want: signer.ErrMissingHeaders},
		{name: "bad timestamp", ts: "soon", want: signer.ErrInvalidTimestamp},
		{name: "fresh timestamp, stale iat", now: f.now.Add(signer.DefaultTolerance + time.Second), ts: strconv.FormatInt(f.now.Add(signer.DefaultTolerance+time.Second).Unix(), 10), want: ErrInvalidJWT, wantMsg: "iat"},
		{name: "timestamp too old", now: f.now.Add(time.Hour), want: signer.ErrTimestampTooOld},
		{name: "timestamp too new", now: f.now.Add(-time.Hour), want: signer.ErrTimestampTooNew},
		{name: "wrong audience", aud: "https://evil.example.com/", want: ErrInvalidJWT, wantMsg: "aud"},
		{name: "wrong id", id: "msg_2", want: ErrInvalidJWT, wantMsg: "jti"},
		{name: "tampered body", body: []byte(`{}`), want: ErrInvalidJWT, wantMsg: "body_sha256"},
		{name: "unknown kid", sig: otherToken, want: ErrUnknownKey},
		{name: "tampered claims", sig: header + "." + b64(strings.Replace(claims, "msg_1", "msg_2", 1)) + "." + sig, id: "msg_2", want: ErrInvalidJWT},
		{name: "alg none", sig: b64(`{"alg":"none","kid":"`+kidOf(t, header)+`"}`) + "." + b64(claims) + ".", want: ErrInvalidJWT},
		{name: "alg confusion HS256", sig: hs256(t, kidOf(t, header), claims), want: ErrInvalidJWT},
		{name: "no kid", sig: b64(`{"alg":"RS256"}`) + "." + b64(claims) + "." + sig, want: ErrInvalidJWT, wantMsg: "kid"},
		{name: "header not base64", sig: "!!.a.b", want: ErrInvalidJWT},
		{name: "v1a tampered body", sig: v1a, body: []byte(`{}`), want: signer.ErrNoMatchingSignature},
		{name: "v1 only", sig: "v1,abc", want: signer.ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = f.now
			}
			cfg := f.cfg(now)
			if tt.aud == "-" {
				cfg.Audience = ""
			} else if tt.aud != "" {
				cfg.Audience = tt.aud
			}
			body := tt.body
			if body == nil {
				body = f.body
			}
			err := f.set.Verify(or(tt.id, f.id), or(tt.ts, f.ts), or(tt.sig, f.token), body, cfg)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Verify = %v, want it to mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestVerifyWithoutEd25519Keys(t *testing.T) {
	f := newFixture(t)
	doc, _ := Marshal(&rsaKey().PublicKey)
	set, _ := Parse(doc)
	v1a, _ := f.ed.Sign(f.id, f.now, f.body)
	if err := set.Verify(f.id, f.ts, v1a, f.body, f.cfg(f.now)); err != ErrUnknownKey {
		t.Fatalf("Verify = %v, want ErrUnknownKey", err)
	}
}

func or(v, def string) string {
	switch v {
	case "":
		return def
	case "-":
		return ""
	}
	return v
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// splitJWT returns a token's encoded header, decoded claims and encoded signature.
func splitJWT(t *testing.T, token string) (header, claims, sig string) {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return parts[0], string(raw), parts[2]
}

func kidOf(t *testing.T, header string) string {
	t.Helper()
	kid, err := jwtKeyID(header + ".x.y")
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// hs256 forges a token MACed with the RSA public key's bytes, the classic
// algorithm-confusion attack on libraries that trust the header's alg.
func hs256(t *testing.T, kid, claims string) string {
	t.Helper()
	signing := b64(`{"alg":"HS256","kid":"`+kid+`"}`) + "." + b64(claims)
	m := hmac.New(sha256.New, rsaKey().PublicKey.N.Bytes())
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestJWTSignerErrors(t *testing.T) {
	if _, err := NewJWTSigner(nil, "x"); err == nil {
		t.Fatal("NewJWTSigner accepted a nil key")
	}
}

// jwksServer serves a JWKS that the test can replace, counting fetches.
type jwksServer struct {
	*httptest.Server
	doc     atomic.Value // []byte
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...crypto.PublicKey) *jwksServer {
	s := &jwksServer{}
	s.publish(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.doc.Load().([]byte))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(t *testing.T, keys ...crypto.PublicKey) {
	doc, err := Marshal(keys...)
	if err != nil {
		t.Fatal(err)
	}
	s.doc.Store(doc)
}

func TestFetcherCachesAndRefetchesOnRotation(t *testing.T) {
	f := newFixture(t)
	oldKey := otherRSAKey()
	srv := newJWKSServer(t, &oldKey.PublicKey)
	now := f.now
	fetcher, err := NewFetcher(FetcherConfig{URL: srv.URL, Client: srv.Client(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := f.cfg(now)

	if _, err := fetcher.Set(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fetcher.Set(ctx); err != nil || srv.fetches.Load() != 1 {
		t.Fatalf("second Set: %v, fetches = %d, want 1 (cached)", err, srv.fetches.Load())
	}

	// The sender rotated to a key published after our fetch, within MinRefresh:
	// no refetch yet.
	srv.publish(t, &oldKey.PublicKey, &rsaKey().PublicKey, rfcKey(t).Public())
	if err := fetcher.Verify(ctx, f.id, f.ts, f.token, f.body, cfg); !errors.Is(err, ErrUnknownKey) || srv.fetches.Load() != 1 {
		t.Fatalf("Verify = %v, fetches = %d; want ErrUnknownKey without a fetch", err, srv.fetches.Load())
	}

	// After MinRefresh, an unknown kid forces one refetch.
	now = now.Add(time.Minute)
	cfg = f.cfg(now)
	if err := fetcher.Verify(ctx, f.id, f.ts, f.token, f.body, cfg); err != nil || srv.fetches.Load() != 2 {
		t.Fatalf("Verify = %v, fetches = %d; want success after one refetch", err, srv.fetches.Load())
	}
	v1a, _ := f.ed.Sign(f.id, now, f.body)
	if err := fetcher.Verify(ctx, f.id, strconv.FormatInt(now.Unix(), 10), v1a, f.body, cfg); err != nil || srv.fetches.Load() != 2 {
		t.Fatalf("v1a Verify = %v, fetches = %d", err, srv.fetches.Load())
	}
	// A forged signature does not cause another fetch within MinRefresh.
	if err := fetcher.Verify(ctx, f.id, strconv.FormatInt(now.Unix(), 10), "v1a,AAAA", f.body, cfg); err != signer.ErrNoMatchingSignature || srv.fetches.Load() != 2 {
		t.Fatalf("forged Verify = %v, fetches = %d", err, srv.fetches.Load())
	}

	// After the TTL, the set is fetched again.
	now = now.Add(10 * time.Minute)
	if _, err := fetcher.Set(ctx); err != nil || srv.fetches.Load() != 3 {
		t.Fatalf("Set after TTL: %v, fetches = %d", err, srv.fetches.Load())
	}
}

func TestFetcherErrors(t *testing.T) {
	if _, err := NewFetcher(FetcherConfig{}); err == nil {
		t.Fatal("NewFetcher accepted an empty URL")
	}
	handlers := map[string]http.HandlerFunc{
		"status":   func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusNotFound) },
		"not jwks": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`<html>`)) },
		"huge": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"keys":[` + strings.Repeat(" ", maxDocumentSize) + `]}`))
		},
	}
	for name, h := range handlers {
		srv := httptest.NewServer(h)
		fetcher, _ := NewFetcher(FetcherConfig{URL: srv.URL})
		if _, err := fetcher.Set(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "jwks: ") {
			t.Errorf("%s: Set = %v, want a jwks error", name, err)
		}
		srv.Close()
	}

	srv := newJWKSServer(t, rfcKey(t).Public())
	fetcher, _ := NewFetcher(FetcherConfig{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fetcher.Set(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with cancelled context = %v", err)
	}
}
