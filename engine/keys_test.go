package engine

import (
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// An endpoint's cached signer follows its live secrets: a rotation adds
// the new one, an expiry drops the old one, and each signature verifies
// with exactly the secrets live at the time.
func TestEndpointSignerFollowsSecrets(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		cfg := Config{}
		if sealed {
			cfg.SealKey = make([]byte, 32)
		}
		k, err := newKeyring(nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		oldSecret, newSecret := signer.GenerateHMACSecret(), signer.GenerateHMACSecret()
		stored := func(s string) string { return string(k.seal([]byte(s), "ep_1")) }
		t0 := time.Unix(1_700_000_000, 0)
		ep := &store.Endpoint{ID: "ep_1", Secrets: []store.Secret{{Key: stored(oldSecret)}}}

		verifies := func(at time.Time, secret string) bool {
			t.Helper()
			sig, err := k.Endpoint(ep, at)
			if err != nil {
				t.Fatal(err)
			}
			token, err := sig.Sign("msg_1", at, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{secret}, Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			return v.VerifyValues("msg_1", strconv.FormatInt(at.Unix(), 10), token, []byte(`{}`)) == nil
		}
		if !verifies(t0, oldSecret) || verifies(t0, newSecret) {
			t.Fatalf("sealed=%v: before the rotation only the old secret should verify", sealed)
		}
		// Rotated: the new secret first, the old one live for an hour.
		ep.Secrets = []store.Secret{{Key: stored(newSecret)}, {Key: ep.Secrets[0].Key, ExpiresAt: t0.Add(time.Hour).UnixNano()}}
		if !verifies(t0.Add(time.Minute), oldSecret) || !verifies(t0.Add(time.Minute), newSecret) {
			t.Fatalf("sealed=%v: during the overlap both secrets should verify", sealed)
		}
		if verifies(t0.Add(2*time.Hour), oldSecret) || !verifies(t0.Add(2*time.Hour), newSecret) {
			t.Fatalf("sealed=%v: after the old secret expired only the new one should verify", sealed)
		}
	}
}
