package jwks

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// ErrInvalidJWT wraps every reason a JWT signature is rejected other than an
// unknown key or a stale timestamp: bad signature, wrong algorithm, expired,
// wrong aud or jti, body_sha256 mismatch.
var ErrInvalidJWT = errors.New("jwks: invalid JWT")

// TokenTTL is how long after iat a JWT from JWTSigner expires: the contract
// caps it at 5 minutes, the same window as the timestamp tolerance.
const TokenTTL = 5 * time.Minute

// bodyClaim is the private claim carrying base64url(SHA-256(body)), which
// binds the token to the exact bytes sent.
const bodyClaim = "body_sha256"

// JWTSigner signs deliveries as compact RS256 JWTs. It is safe for concurrent
// use.
type JWTSigner struct {
	key    jwk.Key // private, with kid set so jwt.Sign puts it in the header
	issuer string
}

// NewJWTSigner returns a signer using key, whose public half must be in the
// JWKS receivers fetch, and issuer as the iss claim (Herald's public URL).
func NewJWTSigner(key *rsa.PrivateKey, issuer string) (*JWTSigner, error) {
	if key == nil {
		return nil, errors.New("jwks: nil RSA key")
	}
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	k, err := jwk.Import(key)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return &JWTSigner{key: k, issuer: issuer}, nil
}

// Sign returns a JWT for one attempt of message id, sent to audience (the
// destination URL) at iat (whole seconds), over the exact body bytes.
func (s *JWTSigner) Sign(audience, id string, iat time.Time, body []byte) (string, error) {
	iat = time.Unix(iat.Unix(), 0)
	tok, err := jwt.NewBuilder().
		Issuer(s.issuer).
		Audience([]string{audience}).
		IssuedAt(iat).
		Expiration(iat.Add(TokenTTL)).
		JwtID(id).
		Claim(bodyClaim, bodyHash(body)).
		Build()
	if err != nil {
		return "", fmt.Errorf("jwks: %w", err)
	}
	tok.Options().Enable(jwt.FlattenAudience) // "aud": "https://…", not a one-element array
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), s.key))
	if err != nil {
		return "", fmt.Errorf("jwks: %w", err)
	}
	return string(b), nil
}

// For returns a signer.Signer that signs for one destination, so the engine
// can treat JWT deliveries like any other (see signer.SetHeaders).
func (s *JWTSigner) For(audience string) signer.Signer {
	return audienceSigner{s: s, audience: audience}
}

type audienceSigner struct {
	s        *JWTSigner
	audience string
}

func (a audienceSigner) Sign(id string, ts time.Time, body []byte) (string, error) {
	return a.s.Sign(a.audience, id, ts, body)
}

func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyConfig holds the checks Set.Verify and Fetcher.Verify apply besides
// the signature itself. The zero value is ready to use.
type VerifyConfig struct {
	// Audience, if set, must be the JWT's aud: the URL the receiver serves
	// webhooks at. Not used for v1a signatures, which do not sign the URL.
	Audience string

	// Tolerance is how far webhook-timestamp and the JWT's iat may be from
	// Now, either way. Defaults to signer.DefaultTolerance.
	Tolerance time.Duration

	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c VerifyConfig) withDefaults() VerifyConfig {
	if c.Tolerance == 0 {
		c.Tolerance = signer.DefaultTolerance
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// isJWT reports whether a webhook-signature value is a compact JWT rather
// than a list of version,signature tokens.
func isJWT(signature string) bool {
	return !strings.Contains(signature, ",") && strings.Count(signature, ".") == 2
}

// Verify checks a webhook signed by a key in the set: a v1a signature list
// (through signer.Verifier, so with its exact rules and errors) or a JWT. A
// JWT must carry a kid found in the set, verify as RS256, and have jti = id,
// body_sha256 matching body, iat within the tolerance, exp not passed, and
// aud = cfg.Audience when that is set; webhook-timestamp is checked as for
// v1a. Errors are signer's sentinels, ErrUnknownKey, or wrap ErrInvalidJWT.
func (s *Set) Verify(id, timestamp, signature string, body []byte, cfg VerifyConfig) error {
	cfg = cfg.withDefaults()
	if id == "" || timestamp == "" || signature == "" {
		return signer.ErrMissingHeaders
	}
	now := cfg.Now()
	if _, err := signer.CheckTimestamp(timestamp, now, cfg.Tolerance); err != nil {
		return err
	}
	if isJWT(signature) {
		return s.verifyJWT(signature, id, body, now, cfg)
	}
	keys := s.Ed25519Keys()
	if len(keys) == 0 {
		return ErrUnknownKey
	}
	v, err := signer.NewVerifier(signer.VerifierConfig{PublicKeys: keys, Tolerance: cfg.Tolerance, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	return v.VerifyValues(id, timestamp, signature, body)
}

func (s *Set) verifyJWT(token, id string, body []byte, now time.Time, cfg VerifyConfig) error {
	kid, err := jwtKeyID(token)
	if err != nil {
		return err
	}
	key, ok := s.keys.LookupKeyID(kid)
	if !ok {
		return ErrUnknownKey
	}
	opts := []jwt.ParseOption{
		// The algorithm is fixed here, never taken from the token header.
		jwt.WithKey(jwa.RS256(), key),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAcceptableSkew(cfg.Tolerance),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithJwtID(id),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	tok, err := jwt.ParseString(token, opts...)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJWT, err)
	}
	iat, _ := tok.IssuedAt()
	if _, err := signer.CheckTimestamp(strconv.FormatInt(iat.Unix(), 10), now, cfg.Tolerance); err != nil {
		return fmt.Errorf("%w: iat: %w", ErrInvalidJWT, err)
	}
	var claimed string
	if err := tok.Get(bodyClaim, &claimed); err != nil {
		return fmt.Errorf("%w: missing %s claim", ErrInvalidJWT, bodyClaim)
	}
	if subtle.ConstantTimeCompare([]byte(claimed), []byte(bodyHash(body))) != 1 {
		return fmt.Errorf("%w: %s does not match the body", ErrInvalidJWT, bodyClaim)
	}
	return nil
}

// jwtKeyID reads the kid from a compact JWT's header without trusting
// anything else in it; the signature is checked with the key it names.
func jwtKeyID(token string) (string, error) {
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return "", fmt.Errorf("%w: header is not base64url", ErrInvalidJWT)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", fmt.Errorf("%w: header is not a JSON object", ErrInvalidJWT)
	}
	if h.Kid == "" {
		return "", fmt.Errorf("%w: header has no kid", ErrInvalidJWT)
	}
	return h.Kid, nil
}
