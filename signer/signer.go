// Package signer signs and verifies webhooks as the Standard Webhooks
// specification describes them (https://www.standardwebhooks.com).
//
// A webhook carries three headers: webhook-id (the message id, stable across
// retries), webhook-timestamp (Unix seconds of this attempt) and
// webhook-signature, a space-separated list of "version,base64" tokens over
// the content "id.timestamp.body". Two versions are supported:
//
//   - v1: HMAC-SHA256 with a shared secret, written "whsec_" + base64 of 24 to
//     64 random bytes. Sending one token per live secret lets a secret be
//     rotated without a window in which receivers reject deliveries.
//   - v1a: Ed25519, with a private key written "whsk_" + base64 of its 32-byte
//     seed and a public key written "whpk_" + base64 of its 32 bytes. Receivers
//     hold only the public key, so a leak on their side cannot forge webhooks.
//
// The package imports only the standard library so receivers can use it
// without pulling in Herald's server dependencies. JWKS publication and the
// JWT variant live in the signer/jwks sub-package.
package signer

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The header names, lowercase as the specification writes them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Key prefixes, as in the encodings Svix and the Standard Webhooks libraries use.
const (
	SecretPrefix     = "whsec_"
	PrivateKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// Secret length bounds from the specification (192 to 512 bits).
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// ErrInvalidKey is returned (wrapped) when a whsec_, whsk_ or whpk_ string, or
// a key passed to a constructor, is malformed.
var ErrInvalidKey = errors.New("signer: invalid key")

// Signer produces the value of the webhook-signature header for one attempt
// of a message. Implementations are safe for concurrent use.
type Signer interface {
	// Sign signs id, ts (whole Unix seconds) and the exact body bytes sent.
	Sign(id string, ts time.Time, body []byte) (string, error)
}

// HMAC signs with one or more v1 secrets.
type HMAC struct {
	secrets [][]byte
}

// NewHMAC returns a v1 signer for the given whsec_ secrets (the prefix is
// optional). With several secrets, Sign emits one token per secret, which is
// how a rotation keeps both the old and the new secret valid.
func NewHMAC(secrets ...string) (*HMAC, error) {
	if len(secrets) == 0 {
		return nil, ErrEmptySecret
	}
	s := &HMAC{secrets: make([][]byte, len(secrets))}
	for i, secret := range secrets {
		key, err := ParseHMACSecret(secret)
		if err != nil {
			return nil, err
		}
		s.secrets[i] = key
	}
	return s, nil
}

// Sign returns "v1,<sig>" tokens, one per secret, separated by spaces.
func (s *HMAC) Sign(id string, ts time.Time, body []byte) (string, error) {
	// "v1," + base64 of 32 bytes is 47 bytes per secret, and a space.
	out := make([]byte, 0, 48*len(s.secrets))
	var mac [sha256.Size]byte
	for i, key := range s.secrets {
		if i > 0 {
			out = append(out, ' ')
		}
		out = base64.StdEncoding.AppendEncode(append(out, "v1,"...), hmacSum(mac[:0], key, id, ts.Unix(), body))
	}
	return string(out), nil
}

// Ed25519 signs with a v1a private key.
type Ed25519 struct {
	key ed25519.PrivateKey
}

// NewEd25519 returns a v1a signer for key (see ParsePrivateKey to read a
// whsk_ string).
func NewEd25519(key ed25519.PrivateKey) (*Ed25519, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: Ed25519 private key is %d bytes, want %d", ErrInvalidKey, len(key), ed25519.PrivateKeySize)
	}
	return &Ed25519{key: key}, nil
}

// Sign returns one "v1a,<sig>" token.
func (s *Ed25519) Sign(id string, ts time.Time, body []byte) (string, error) {
	sig := ed25519.Sign(s.key, signedContent(id, ts.Unix(), body))
	return "v1a," + base64.StdEncoding.EncodeToString(sig), nil
}

// SetHeaders signs one attempt with s and sets the three webhook headers on h.
// The keys are stored lowercase, as the specification and Herald's contract
// write them, by direct map assignment: Go sends such keys unchanged, whereas
// h.Set would canonicalise them to "Webhook-Id". Any canonical-form copies
// already in h are removed so each header is sent once.
func SetHeaders(h http.Header, s Signer, id string, ts time.Time, body []byte) error {
	sig, err := s.Sign(id, ts, body)
	if err != nil {
		return err
	}
	for _, kv := range [...][2]string{
		{HeaderID, id},
		{HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10)},
		{HeaderSignature, sig},
	} {
		h.Del(kv[0])
		h[kv[0]] = []string{kv[1]}
	}
	return nil
}

// signedContent is the byte string both versions sign: "id.timestamp.body".
func signedContent(id string, ts int64, body []byte) []byte {
	return append(appendSignedHead(make([]byte, 0, len(id)+len(body)+22), id, ts), body...)
}

// appendSignedHead appends what precedes the body in the signed content:
// "id.timestamp.".
func appendSignedHead(dst []byte, id string, ts int64) []byte {
	dst = append(append(dst, id...), '.')
	return append(strconv.AppendInt(dst, ts, 10), '.')
}

// hmacSum appends the HMAC-SHA256 of the signed content to dst, hashing
// its parts in place rather than copying the body.
func hmacSum(dst, key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	var head [96]byte
	m.Write(appendSignedHead(head[:0], id, ts))
	m.Write(body)
	return m.Sum(dst)
}

// GenerateHMACSecret returns a new whsec_ secret of 32 random bytes.
func GenerateHMACSecret() string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(randomBytes(32))
}

// randomBytes reads from crypto/rand, which never fails (it crashes the
// program instead), so callers need no error path.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// ParseHMACSecret decodes a whsec_ secret; the prefix is optional, as in the
// reference libraries. It returns ErrEmptySecret for an empty secret and an
// ErrInvalidKey error for bad base64 or a length outside 24 to 64 bytes.
func ParseHMACSecret(s string) ([]byte, error) {
	s = strings.TrimPrefix(s, SecretPrefix)
	if s == "" {
		return nil, ErrEmptySecret
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: secret is not standard base64: %v", ErrInvalidKey, err)
	}
	if len(key) < minSecretLen || len(key) > maxSecretLen {
		return nil, fmt.Errorf("%w: secret is %d bytes, want %d to %d", ErrInvalidKey, len(key), minSecretLen, maxSecretLen)
	}
	return key, nil
}

// GenerateEd25519 returns a new v1a key pair, encoded as whsk_ and whpk_.
func GenerateEd25519() (privateKey, publicKey string) {
	key := ed25519.NewKeyFromSeed(randomBytes(ed25519.SeedSize))
	return EncodePrivateKey(key), EncodePublicKey(key.Public().(ed25519.PublicKey))
}

// EncodePrivateKey writes key as whsk_ + base64 of its 32-byte seed.
func EncodePrivateKey(key ed25519.PrivateKey) string {
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(key.Seed())
}

// EncodePublicKey writes key as whpk_ + base64 of its 32 bytes.
func EncodePublicKey(key ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(key)
}

// ParsePrivateKey decodes a whsk_ key (prefix optional): base64 of the 32-byte
// seed, or of the 64-byte seed‖public-key form that some libraries emit, in
// which case the public half must match the seed.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b, err := decodeKey(s, PrivateKeyPrefix, "private")
	if err != nil {
		return nil, err
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if !hmac.Equal(key[ed25519.SeedSize:], b[ed25519.SeedSize:]) {
			return nil, fmt.Errorf("%w: Ed25519 private key's public half does not match its seed", ErrInvalidKey)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("%w: Ed25519 private key is %d bytes, want %d or %d", ErrInvalidKey, len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
	}
}

// ParsePublicKey decodes a whpk_ key (prefix optional).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeKey(s, PublicKeyPrefix, "public")
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 public key is %d bytes, want %d", ErrInvalidKey, len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

func decodeKey(s, prefix, kind string) ([]byte, error) {
	s = strings.TrimPrefix(s, prefix)
	if s == "" {
		return nil, fmt.Errorf("%w: empty Ed25519 %s key", ErrInvalidKey, kind)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: Ed25519 %s key is not standard base64 (want %s…): %v", ErrInvalidKey, kind, prefix, err)
	}
	return b, nil
}
