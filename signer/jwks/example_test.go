package jwks_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/heraldhq/herald/signer/jwks"
)

// Marshal builds the document a sender serves at /.well-known/jwks.json.
func ExampleMarshal() {
	seed := []byte("TESTSIGNINGKEYDONOTUSETHISFORANY") // 32 bytes; use crypto/rand
	key := ed25519.NewKeyFromSeed(seed)
	doc, err := jwks.Marshal(key.Public())
	if err != nil {
		panic(err)
	}
	fmt.Println(string(doc))
	// Output:
	// {"keys":[{"alg":"EdDSA","crv":"Ed25519","kid":"3n4GkzbCBQuUyldbsa0l4ABSEOzW94RG8oKzQcFv96I","kty":"OKP","use":"sig","x":"ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c_g"}]}
}

// A sender signs an override delivery as an RS256 JWT; a receiver verifies it
// against the sender's JWKS URL.
func ExampleFetcher_Verify() {
	key, err := jwks.GenerateRSAKey()
	if err != nil {
		panic(err)
	}
	doc, _ := jwks.Marshal(&key.PublicKey)
	sender := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	defer sender.Close()

	// Sender side.
	signer, _ := jwks.NewJWTSigner(key, sender.URL)
	body := []byte(`{"type":"batch.succeeded","version":"v1"}`)
	now := time.Now()
	token, _ := signer.Sign("https://receiver.example.com/hook", "msg_2Lb3", now, body)

	// Receiver side: one Fetcher per sender, shared by all requests.
	fetcher, err := jwks.NewFetcher(jwks.FetcherConfig{URL: sender.URL + "/.well-known/jwks.json"})
	if err != nil {
		panic(err)
	}
	cfg := jwks.VerifyConfig{Audience: "https://receiver.example.com/hook"}
	ts := fmt.Sprint(now.Unix())
	fmt.Println(fetcher.Verify(context.Background(), "msg_2Lb3", ts, token, body, cfg))
	fmt.Println(fetcher.Verify(context.Background(), "msg_2Lb3", ts, token, []byte(`{}`), cfg))
	// Output:
	// <nil>
	// jwks: invalid JWT: body_sha256 does not match the body
}
