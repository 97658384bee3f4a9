package signer

import (
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far webhook-timestamp may be from the receiver's
// clock, either way, before a webhook is rejected as a possible replay. It is
// the value the reference libraries use.
const DefaultTolerance = 5 * time.Minute

// Verification errors. Verify returns exactly one of these (never wrapped), so
// callers can compare with == or errors.Is.
var (
	ErrMissingHeaders      = errors.New("signer: missing required headers")
	ErrInvalidTimestamp    = errors.New("signer: invalid timestamp")
	ErrTimestampTooOld     = errors.New("signer: message timestamp too old")
	ErrTimestampTooNew     = errors.New("signer: message timestamp too new")
	ErrNoMatchingSignature = errors.New("signer: no matching signature found")
	ErrEmptySecret         = errors.New("signer: empty secret")
)

// VerifierConfig configures a Verifier. At least one secret or public key is
// required; a Verifier accepts a webhook signed by any of them.
type VerifierConfig struct {
	// Secrets are whsec_ secrets (prefix optional) whose v1 signatures are
	// accepted. List the old and the new secret while a rotation is under way.
	Secrets []string

	// PublicKeys are Ed25519 keys whose v1a signatures are accepted. See
	// ParsePublicKey to read whpk_ strings.
	PublicKeys []ed25519.PublicKey

	// Tolerance is how far webhook-timestamp may be from Now, either way.
	// Defaults to DefaultTolerance.
	Tolerance time.Duration

	// Now returns the current time. Defaults to time.Now; tests inject a
	// fixed clock.
	Now func() time.Time
}

// Verifier checks incoming webhooks. It is safe for concurrent use.
type Verifier struct {
	secrets   [][]byte
	keys      []ed25519.PublicKey
	tolerance time.Duration
	now       func() time.Time
}

// NewVerifier returns a Verifier for cfg. It returns ErrEmptySecret when cfg
// has no secret or key (or an empty secret), and an ErrInvalidKey error for a
// malformed one.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	v := &Verifier{keys: cfg.PublicKeys, tolerance: cfg.Tolerance, now: cfg.Now}
	for _, s := range cfg.Secrets {
		key, err := ParseHMACSecret(s)
		if err != nil {
			return nil, err
		}
		v.secrets = append(v.secrets, key)
	}
	return v, nil
}

func (c VerifierConfig) withDefaults() VerifierConfig {
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c VerifierConfig) validate() error {
	if len(c.Secrets) == 0 && len(c.PublicKeys) == 0 {
		return ErrEmptySecret
	}
	if c.Tolerance < 0 {
		return fmt.Errorf("signer: negative tolerance %v", c.Tolerance)
	}
	for _, k := range c.PublicKeys {
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key is %d bytes, want %d", ErrInvalidKey, len(k), ed25519.PublicKeySize)
		}
	}
	return nil
}

// Verify checks the webhook-id, webhook-timestamp and webhook-signature
// headers of a request against its exact body bytes. Header names match
// case-insensitively, even when h holds non-canonical keys.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	return v.VerifyValues(header(h, HeaderID), header(h, HeaderTimestamp), header(h, HeaderSignature), body)
}

// VerifyValues is Verify for header values obtained some other way. It checks,
// in order: all three values are present (ErrMissingHeaders); the timestamp
// is a base-10 integer (ErrInvalidTimestamp) within the tolerance
// (ErrTimestampTooOld, ErrTimestampTooNew); and at least one token of the
// space-separated signature list matches (ErrNoMatchingSignature). Tokens of
// versions this Verifier has no key for, or does not know, are skipped.
func (v *Verifier) VerifyValues(id, timestamp, signature string, body []byte) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrMissingHeaders
	}
	ts, err := CheckTimestamp(timestamp, v.now(), v.tolerance)
	if err != nil {
		return err
	}
	var macs [][]byte  // expected v1 tokens, computed on first use
	var content []byte // what v1a signs, made on first use
	for token := range strings.SplitSeq(signature, " ") {
		version, sig, _ := strings.Cut(token, ",")
		switch version {
		case "v1":
			if macs == nil {
				for _, key := range v.secrets {
					macs = append(macs, base64.StdEncoding.AppendEncode(nil, hmacSum(nil, key, id, ts.Unix(), body)))
				}
			}
			for _, mac := range macs {
				if hmac.Equal([]byte(sig), mac) {
					return nil
				}
			}
		case "v1a":
			raw, err := base64.StdEncoding.Strict().DecodeString(sig)
			if err != nil || len(raw) != ed25519.SignatureSize {
				continue
			}
			if content == nil {
				content = signedContent(id, ts.Unix(), body)
			}
			for _, key := range v.keys {
				if ed25519.Verify(key, content, raw) {
					return nil
				}
			}
		}
	}
	return ErrNoMatchingSignature
}

// CheckTimestamp parses a webhook-timestamp value (base-10 Unix seconds) and
// checks it is within tolerance of now, returning ErrInvalidTimestamp,
// ErrTimestampTooOld or ErrTimestampTooNew otherwise. Verifier uses it; it is
// exported for schemes that sign the timestamp some other way (signer/jwks).
func CheckTimestamp(timestamp string, now time.Time, tolerance time.Duration) (time.Time, error) {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return time.Time{}, ErrInvalidTimestamp
	}
	ts := time.Unix(sec, 0)
	switch {
	case now.Sub(ts) > tolerance:
		return time.Time{}, ErrTimestampTooOld
	case ts.Sub(now) > tolerance:
		return time.Time{}, ErrTimestampTooNew
	}
	return ts, nil
}

// header returns the first value of the named header in h, matching the name
// case-insensitively even for keys stored without canonicalisation (as
// SetHeaders stores them), which h.Get would miss.
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, name) {
			return vs[0]
		}
	}
	return ""
}
