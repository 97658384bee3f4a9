// Package jwks publishes the public keys that sign Herald's override
// deliveries as a JSON Web Key Set (RFC 7517), and implements the JWT form of
// the webhook-signature header (docs/security.md, "JWT mode"): a compact
// RS256 JWT whose claims bind the webhook id (jti), the destination (aud)
// and the body (body_sha256), so any JOSE library can verify a delivery
// against the JWKS.
//
// It is separate from package signer because it needs a JOSE library
// (github.com/lestrrat-go/jwx/v3), while signer stays standard-library only
// for receivers. A receiver holding a JWKS URL uses a Fetcher, which verifies
// both v1a signatures and JWTs and refetches the set when a key rotates.
package jwks

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// ErrUnknownKey means no key in the set can check the signature: a JWT's kid
// is not in the set, or the set has no Ed25519 key for a v1a signature. A
// Fetcher refetches the set once (rate-limited) when it sees this error,
// since the sender may have rotated to a key published after the last fetch.
var ErrUnknownKey = errors.New("jwks: no key in the set for this signature")

// rsaBits is the size of keys from GenerateRSAKey: the common RS256 minimum.
const rsaBits = 2048

// GenerateRSAKey returns a new 2048-bit RSA key for JWT signing.
func GenerateRSAKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, rsaBits)
}

// KeyID returns the stable key id of an ed25519.PublicKey or *rsa.PublicKey:
// its RFC 7638 SHA-256 thumbprint, base64url without padding. Deriving the kid
// from the key means every node of a cluster, and every restart, publishes the
// same kid for the same key without storing one.
func KeyID(key crypto.PublicKey) (string, error) {
	k, _, err := importPublic(key)
	if err != nil {
		return "", err
	}
	return thumbprint(k)
}

// Marshal returns the JWKS document ({"keys": [...]}) for the given public
// keys, each an ed25519.PublicKey (published as kty OKP, crv Ed25519, alg
// EdDSA) or an *rsa.PublicKey (kty RSA, alg RS256), with use "sig" and its
// KeyID as kid. Duplicate keys are listed once.
func Marshal(keys ...crypto.PublicKey) ([]byte, error) {
	set := jwk.NewSet()
	seen := map[string]bool{}
	for _, key := range keys {
		k, alg, err := importPublic(key)
		if err != nil {
			return nil, err
		}
		kid, err := thumbprint(k)
		if err != nil {
			return nil, err
		}
		if seen[kid] {
			continue
		}
		seen[kid] = true
		for name, v := range map[string]any{jwk.KeyIDKey: kid, jwk.KeyUsageKey: jwk.ForSignature, jwk.AlgorithmKey: alg} {
			if err := k.Set(name, v); err != nil {
				return nil, fmt.Errorf("jwks: %w", err)
			}
		}
		if err := set.AddKey(k); err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
	}
	return json.Marshal(set)
}

// importPublic converts a supported public key to a JWK, with the algorithm
// it signs with in Herald.
func importPublic(key crypto.PublicKey) (jwk.Key, jwa.SignatureAlgorithm, error) {
	var alg jwa.SignatureAlgorithm
	switch k := key.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, alg, fmt.Errorf("jwks: Ed25519 public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		// EdDSA rather than RFC 9864's "Ed25519": older JOSE libraries know only EdDSA.
		alg = jwa.EdDSA()
	case *rsa.PublicKey:
		alg = jwa.RS256()
	default:
		return nil, alg, fmt.Errorf("jwks: unsupported key type %T (want ed25519.PublicKey or *rsa.PublicKey)", key)
	}
	k, err := jwk.Import(key)
	if err != nil {
		return nil, alg, fmt.Errorf("jwks: %w", err)
	}
	return k, alg, nil
}

func thumbprint(k jwk.Key) (string, error) {
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwks: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// Set is a parsed JWKS holding public keys only.
type Set struct {
	keys jwk.Set
}

// Parse reads a JWKS document. It rejects documents that are not a key set,
// that repeat a kid, or that contain private key material (a publisher that
// leaks its private keys must not be trusted).
func Parse(data []byte) (*Set, error) {
	if !json.Valid(data) {
		return nil, errors.New("jwks: document is not valid JSON")
	}
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil || probe.Keys == nil {
		return nil, errors.New(`jwks: document is not a key set (no "keys" member)`)
	}
	keys, err := jwk.Parse(data, jwk.WithRejectDuplicateKID(true))
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	for i := range keys.Len() {
		k, _ := keys.Key(i)
		if private, err := jwk.IsPrivateKey(k); err != nil || private {
			kid, _ := k.KeyID()
			return nil, fmt.Errorf("jwks: key %q is not a public key", kid)
		}
	}
	return &Set{keys: keys}, nil
}

// Ed25519Keys returns the set's Ed25519 public keys, which check v1a
// signatures.
func (s *Set) Ed25519Keys() []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for i := range s.keys.Len() {
		k, _ := s.keys.Key(i)
		var pub ed25519.PublicKey
		if k.KeyType() == jwa.OKP() && jwk.Export(k, &pub) == nil {
			out = append(out, pub)
		}
	}
	return out
}
