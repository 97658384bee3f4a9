package signer

import (
	"crypto/ed25519"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyValues checks that header parsing never panics, that it accepts
// only a signature list holding a genuine token, and that appending a genuine
// token to any list makes it pass.
func FuzzVerifyValues(f *testing.F) {
	f.Add(vecID, vecTS, vecV1, []byte(vecBody))
	f.Add(vecID, vecTS, vecV1a, []byte(vecBody))
	f.Add(vecID, vecTS, "v2,abc "+vecV1+" v1a,", []byte(vecBody))
	f.Add("", "", "", []byte(nil))
	f.Add("id", "+1614265330", "v1,,,, v1a,====  v1", []byte("x"))
	f.Add(vecID, "-1", ",", []byte(vecBody))

	key := mustKey(f, vecSeed)
	hmacSigner, _ := NewHMAC(vecSecret)
	edSigner, _ := NewEd25519(key)
	v, err := NewVerifier(VerifierConfig{
		Secrets:    []string{vecSecret},
		PublicKeys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)},
		Now:        func() time.Time { return vecTime },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		err := v.VerifyValues(id, ts, sig, body)
		sec, tsErr := strconv.ParseInt(ts, 10, 64)
		if tsErr != nil {
			if err == nil {
				t.Fatalf("accepted invalid timestamp %q", ts)
			}
			return
		}
		v1, _ := hmacSigner.Sign(id, time.Unix(sec, 0), body)
		v1a, _ := edSigner.Sign(id, time.Unix(sec, 0), body)
		tokens := strings.Split(sig, " ")
		if err == nil && !slices.Contains(tokens, v1) && !slices.Contains(tokens, v1a) {
			t.Fatalf("accepted %q without a genuine token", sig)
		}
		if d := time.Unix(sec, 0).Sub(vecTime); id == "" || d > DefaultTolerance || d < -DefaultTolerance {
			return
		}
		for _, genuine := range []string{v1, v1a} {
			if err := v.VerifyValues(id, ts, sig+" "+genuine, body); err != nil {
				t.Fatalf("%q with a genuine token appended: %v", sig, err)
			}
		}
	})
}
