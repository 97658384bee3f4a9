package signer

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

var (
	benchBody = []byte(`{"type":"batch.succeeded","version":"v1","data":{"pad":"` + strings.Repeat("x", 960) + `"}}`)
	benchTS   = time.Unix(1614265330, 0)
)

const benchID = "msg_p5jXN8AQM9LWM0D4loKWxJek"

func BenchmarkSignHMAC(b *testing.B) {
	s, err := NewHMAC("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		s.Sign(benchID, benchTS, benchBody)
	}
}

func BenchmarkSignEd25519(b *testing.B) {
	s, err := NewEd25519(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		s.Sign(benchID, benchTS, benchBody)
	}
}

func BenchmarkVerifyHMAC(b *testing.B) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s, _ := NewHMAC(secret)
	sig, _ := s.Sign(benchID, benchTS, benchBody)
	v, err := NewVerifier(VerifierConfig{Secrets: []string{secret}, Now: func() time.Time { return benchTS }})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if err := v.VerifyValues(benchID, "1614265330", sig, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}
