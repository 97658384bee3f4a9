package signer

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks conformance vectors: the HMAC one from the Standard
// Webhooks libraries' tests, and an Ed25519 one over the same content.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecSeed   = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = "1614265330"
	vecBody   = `{"test": 2432232314}`
	vecV1     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	vecV1a    = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)

var vecTime = time.Unix(1614265330, 0)

func mustKey(t testing.TB, s string) ed25519.PrivateKey {
	t.Helper()
	key, err := ParsePrivateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestSignVectors(t *testing.T) {
	seed, _ := base64.StdEncoding.DecodeString(vecSeed)
	full := base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed))
	hmacSigner := func(secret string) func(*testing.T) Signer {
		return func(t *testing.T) Signer {
			s, err := NewHMAC(secret)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	edSigner := func(key string) func(*testing.T) Signer {
		return func(t *testing.T) Signer {
			s, err := NewEd25519(mustKey(t, key))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	tests := []struct {
		name   string
		signer func(*testing.T) Signer
		want   string
	}{
		{"hmac with prefix", hmacSigner(vecSecret), vecV1},
		{"hmac without prefix", hmacSigner(strings.TrimPrefix(vecSecret, SecretPrefix)), vecV1},
		{"ed25519 seed", edSigner(vecSeed), vecV1a},
		{"ed25519 whsk_ seed", edSigner(PrivateKeyPrefix + vecSeed), vecV1a},
		{"ed25519 64-byte form", edSigner(full), vecV1a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.signer(t).Sign(vecID, vecTime, []byte(vecBody))
			if err != nil || got != tt.want {
				t.Fatalf("Sign = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestHMACRotationEmitsOneTokenPerSecret(t *testing.T) {
	other := GenerateHMACSecret()
	s, err := NewHMAC(vecSecret, other)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Sign(vecID, vecTime, []byte(vecBody))
	tokens := strings.Split(got, " ")
	if len(tokens) != 2 || tokens[0] != vecV1 || !strings.HasPrefix(tokens[1], "v1,") || tokens[1] == vecV1 {
		t.Fatalf("Sign = %q, want the vector token then another v1 token", got)
	}
}

func TestVerify(t *testing.T) {
	seed, _ := base64.StdEncoding.DecodeString(vecSeed)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	newSecret := GenerateHMACSecret()
	rotating, err := NewHMAC(vecSecret, newSecret)
	if err != nil {
		t.Fatal(err)
	}
	both, _ := rotating.Sign(vecID, vecTime, []byte(vecBody))
	_, otherPub := GenerateEd25519()
	otherKey, _ := ParsePublicKey(otherPub)

	tests := []struct {
		name       string
		cfg        VerifierConfig
		id, ts     string
		sig, body  string
		now        time.Time
		wantErr    error
		wantErrMsg string
	}{
		{name: "v1 vector", sig: vecV1},
		{name: "v1a vector", sig: vecV1a},
		{name: "missing id", id: "-", sig: vecV1, wantErr: ErrMissingHeaders},
		{name: "missing timestamp", ts: "-", sig: vecV1, wantErr: ErrMissingHeaders},
		{name: "missing signature", sig: "", wantErr: ErrMissingHeaders},
		{name: "timestamp not a number", ts: "yesterday", sig: vecV1, wantErr: ErrInvalidTimestamp},
		{name: "timestamp with fraction", ts: "1614265330.5", sig: vecV1, wantErr: ErrInvalidTimestamp},
		{name: "timestamp hex", ts: "0x60380af2", sig: vecV1, wantErr: ErrInvalidTimestamp},
		{name: "timestamp overflow", ts: "99999999999999999999", sig: vecV1, wantErr: ErrInvalidTimestamp},
		{name: "at tolerance in the past", now: vecTime.Add(DefaultTolerance), sig: vecV1},
		{name: "too old", now: vecTime.Add(DefaultTolerance + time.Second), sig: vecV1, wantErr: ErrTimestampTooOld},
		{name: "too new", now: vecTime.Add(-DefaultTolerance - time.Second), sig: vecV1, wantErr: ErrTimestampTooNew},
		{name: "custom tolerance", cfg: VerifierConfig{Tolerance: time.Minute}, now: vecTime.Add(2 * time.Minute), sig: vecV1, wantErr: ErrTimestampTooOld},
		{name: "tampered body", body: `{"test": 2432232315}`, sig: vecV1, wantErr: ErrNoMatchingSignature},
		{name: "tampered id", id: "msg_other", sig: vecV1a, wantErr: ErrNoMatchingSignature},
		{name: "wrong v1 signature", sig: "v1,Zm9vYmFy", wantErr: ErrNoMatchingSignature},
		{name: "v1 without comma", sig: strings.Replace(vecV1, ",", "", 1), wantErr: ErrNoMatchingSignature},
		{name: "v1a bad base64", sig: "v1a,!!!", wantErr: ErrNoMatchingSignature},
		{name: "v1a signature as v1", sig: "v1," + strings.TrimPrefix(vecV1a, "v1a,"), wantErr: ErrNoMatchingSignature},
		{name: "unknown version only", sig: "v2," + strings.TrimPrefix(vecV1, "v1,"), wantErr: ErrNoMatchingSignature},
		{name: "unknown version skipped", sig: "v2,abc " + vecV1},
		{name: "one valid among many", sig: "v1,Zm9vYmFy v1a,Zm9v  " + vecV1a + " v1,YmFy"},
		{name: "rotation: only old secret", cfg: VerifierConfig{Secrets: []string{vecSecret}}, sig: both},
		{name: "rotation: only new secret", cfg: VerifierConfig{Secrets: []string{newSecret}}, sig: both},
		{name: "verifier with two secrets", cfg: VerifierConfig{Secrets: []string{newSecret, vecSecret}}, sig: vecV1},
		{name: "secret without prefix", cfg: VerifierConfig{Secrets: []string{strings.TrimPrefix(vecSecret, SecretPrefix)}}, sig: vecV1},
		{name: "other secret", cfg: VerifierConfig{Secrets: []string{newSecret}}, sig: vecV1, wantErr: ErrNoMatchingSignature},
		{name: "v1 with only public key", cfg: VerifierConfig{PublicKeys: []ed25519.PublicKey{pub}}, sig: vecV1, wantErr: ErrNoMatchingSignature},
		{name: "other public key", cfg: VerifierConfig{PublicKeys: []ed25519.PublicKey{otherKey}}, sig: vecV1a, wantErr: ErrNoMatchingSignature},
		{name: "second public key", cfg: VerifierConfig{PublicKeys: []ed25519.PublicKey{otherKey, pub}}, sig: vecV1a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Secrets == nil && cfg.PublicKeys == nil {
				cfg.Secrets, cfg.PublicKeys = []string{vecSecret}, []ed25519.PublicKey{pub}
			}
			now := tt.now
			if now.IsZero() {
				now = vecTime
			}
			cfg.Now = func() time.Time { return now }
			v, err := NewVerifier(cfg)
			if err != nil {
				t.Fatal(err)
			}
			id, ts, body := or(tt.id, vecID), or(tt.ts, vecTS), or(tt.body, vecBody)
			err = v.VerifyValues(id, ts, tt.sig, []byte(body))
			if err != tt.wantErr {
				t.Fatalf("VerifyValues = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// or returns def for "", and "" for "-" (to express a missing value).
func or(v, def string) string {
	switch v {
	case "":
		return def
	case "-":
		return ""
	}
	return v
}

func TestVerifyHeaderLookup(t *testing.T) {
	v, err := NewVerifier(VerifierConfig{Secrets: []string{vecSecret}, Now: func() time.Time { return vecTime }})
	if err != nil {
		t.Fatal(err)
	}
	lower := http.Header{HeaderID: {vecID}, HeaderTimestamp: {vecTS}, HeaderSignature: {vecV1}}
	canonical := http.Header{}
	canonical.Set("Webhook-Id", vecID)
	canonical.Set("WEBHOOK-TIMESTAMP", vecTS)
	canonical.Set("webhook-signature", vecV1)
	mixed := http.Header{"WebHook-ID": {vecID}, "Webhook-Timestamp": {vecTS}, "webhook-signature": {vecV1}}
	for name, h := range map[string]http.Header{"lowercase": lower, "canonical": canonical, "mixed": mixed} {
		if err := v.Verify(h, []byte(vecBody)); err != nil {
			t.Errorf("%s: Verify = %v", name, err)
		}
	}
	delete(mixed, "WebHook-ID")
	if err := v.Verify(mixed, []byte(vecBody)); err != ErrMissingHeaders {
		t.Errorf("without id: Verify = %v, want ErrMissingHeaders", err)
	}
}

func TestSetHeaders(t *testing.T) {
	s, _ := NewHMAC(vecSecret)
	h := http.Header{"Webhook-Id": {"stale"}, "Content-Type": {"application/json"}}
	if err := SetHeaders(h, s, vecID, vecTime, []byte(vecBody)); err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Content-Type":  {"application/json"},
		HeaderID:        {vecID},
		HeaderTimestamp: {vecTS},
		HeaderSignature: {vecV1},
	}
	if len(h) != len(want) {
		t.Fatalf("headers = %v, want %v", h, want)
	}
	for k, v := range want {
		if got := h[k]; len(got) != 1 || got[0] != v[0] {
			t.Errorf("h[%q] = %q, want %q", k, got, v)
		}
	}
}

func TestConstructorErrors(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 23))
	long := base64.StdEncoding.EncodeToString(make([]byte, 65))
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"NewHMAC without secrets", second(NewHMAC()), ErrEmptySecret},
		{"NewHMAC empty secret", second(NewHMAC("")), ErrEmptySecret},
		{"NewHMAC bare prefix", second(NewHMAC(SecretPrefix)), ErrEmptySecret},
		{"NewHMAC bad base64", second(NewHMAC("whsec_not base64")), ErrInvalidKey},
		{"NewHMAC unpadded", second(NewHMAC("whsec_" + strings.TrimRight(GenerateHMACSecret()[6:], "="))), ErrInvalidKey},
		{"NewHMAC 23 bytes", second(NewHMAC(short)), ErrInvalidKey},
		{"NewHMAC 65 bytes", second(NewHMAC(long)), ErrInvalidKey},
		{"NewEd25519 short key", second(NewEd25519(make([]byte, 32))), ErrInvalidKey},
		{"NewVerifier no keys", second(NewVerifier(VerifierConfig{})), ErrEmptySecret},
		{"NewVerifier empty secret", second(NewVerifier(VerifierConfig{Secrets: []string{""}})), ErrEmptySecret},
		{"NewVerifier bad public key", second(NewVerifier(VerifierConfig{PublicKeys: []ed25519.PublicKey{make([]byte, 31)}})), ErrInvalidKey},
		{"NewVerifier negative tolerance", second(NewVerifier(VerifierConfig{Secrets: []string{vecSecret}, Tolerance: -1})), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || (tt.want != nil && !errors.Is(tt.err, tt.want)) {
				t.Fatalf("err = %v, want %v", tt.err, tt.want)
			}
			if !strings.HasPrefix(tt.err.Error(), "signer: ") {
				t.Errorf("message %q lacks the package prefix", tt.err)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

func TestParseKeys(t *testing.T) {
	seed, _ := base64.StdEncoding.DecodeString(vecSeed)
	key := ed25519.NewKeyFromSeed(seed)
	mismatched := append(append([]byte{}, seed...), make([]byte, 32)...)
	for _, s := range []string{
		"", PrivateKeyPrefix, "whsk_%%%", PublicKeyPrefix + vecSeed, // wrong prefix is not base64
		base64.StdEncoding.EncodeToString(seed[:31]),
		base64.StdEncoding.EncodeToString(mismatched),
	} {
		if _, err := ParsePrivateKey(s); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePrivateKey(%q) = %v, want ErrInvalidKey", s, err)
		}
	}
	for _, s := range []string{"", PublicKeyPrefix, PrivateKeyPrefix + vecSeed, base64.StdEncoding.EncodeToString(key)} {
		if _, err := ParsePublicKey(s); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePublicKey(%q) = %v, want ErrInvalidKey", s, err)
		}
	}
	if got := EncodePrivateKey(key); got != PrivateKeyPrefix+vecSeed {
		t.Errorf("EncodePrivateKey = %q", got)
	}
}

func TestGenerate(t *testing.T) {
	secret := GenerateHMACSecret()
	if key, err := ParseHMACSecret(secret); err != nil || len(key) != 32 || !strings.HasPrefix(secret, SecretPrefix) {
		t.Fatalf("GenerateHMACSecret = %q: %v", secret, err)
	}
	if GenerateHMACSecret() == secret {
		t.Fatal("two secrets are equal")
	}
	priv, pub := GenerateEd25519()
	if !strings.HasPrefix(priv, PrivateKeyPrefix) || !strings.HasPrefix(pub, PublicKeyPrefix) {
		t.Fatalf("GenerateEd25519 = %q, %q", priv, pub)
	}
	s, err := NewEd25519(mustKey(t, priv))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier(VerifierConfig{PublicKeys: []ed25519.PublicKey{pk}})
	sig, _ := s.Sign("msg_1", time.Now(), []byte("{}"))
	if err := v.VerifyValues("msg_1", strconv.FormatInt(time.Now().Unix(), 10), sig, []byte("{}")); err != nil {
		t.Fatalf("generated pair does not verify: %v", err)
	}
}
