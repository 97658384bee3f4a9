package jwks

import (
	"crypto"
	"crypto/ed25519"
	"testing"
)

// FuzzParse checks that JWKS parsing never panics and that whatever it
// accepts yields keys that can be published again.
func FuzzParse(f *testing.F) {
	doc, err := Marshal(rfcKey(f).Public(), &rsaKey().PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + rfcPublic + `"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"X25519","x":"` + rfcPublic + `"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"x"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse(data)
		if err != nil {
			return
		}
		keys := set.Ed25519Keys()
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				t.Fatalf("Ed25519 key of %d bytes", len(k))
			}
		}
		pubs := make([]crypto.PublicKey, len(keys))
		for i, k := range keys {
			pubs[i] = k
		}
		if _, err := Marshal(pubs...); err != nil {
			t.Fatalf("re-publishing parsed keys: %v", err)
		}
	})
}

// FuzzVerifyJWT checks that a mangled token is never accepted: RS256
// signatures are deterministic, so only the genuine token can verify.
func FuzzVerifyJWT(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.token)
	f.Add(fx.token + "x")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		if !isJWT(token) {
			return
		}
		err := fx.set.Verify(fx.id, fx.ts, token, fx.body, fx.cfg(fx.now))
		if err == nil && token != fx.token {
			t.Fatalf("accepted a token that differs from the genuine one: %q", token)
		}
	})
}
