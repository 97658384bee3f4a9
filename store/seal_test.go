package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// testSealer seals with a fixed key.
var testSealer = func() *Sealer {
	s, err := NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		panic(err)
	}
	return s
}()

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Errorf("NewSealer with a %d-byte key: %v, want an error asking for 32 bytes", n, err)
		}
	}
	if _, err := NewSealer(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
}

func TestSealRoundTrip(t *testing.T) {
	for _, plain := range [][]byte{nil, {0}, []byte(testSecret("s")), testPrivate(AlgEd25519), testRSAKey} {
		sealed := testSealer.Seal(plain, "ep_x")
		if !IsSealed(sealed) || !strings.HasPrefix(string(sealed), "hsl1_") {
			t.Fatalf("Seal gave %q, which IsSealed rejects", sealed)
		}
		if bytes.Contains(sealed, plain) && len(plain) > 1 {
			t.Fatalf("sealed value shows its plain text")
		}
		for _, c := range string(sealed) {
			if c < ' ' || c > '~' {
				t.Fatalf("sealed value %q is not printable", sealed)
			}
		}
		got, err := testSealer.Open(sealed, "ep_x")
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open(Seal(%d bytes)) = %d bytes, %v", len(plain), len(got), err)
		}
		// A fresh nonce every time: sealing twice gives two values.
		if again := testSealer.Seal(plain, "ep_x"); bytes.Equal(again, sealed) {
			t.Fatal("two seals of one value are identical")
		}
	}
}

func TestSealOpenFails(t *testing.T) {
	sealed := testSealer.Seal([]byte("secret"), "ep_a")
	other, err := NewSealer(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sealer *Sealer
		value  []byte
		aad    string
	}{
		{"wrong key", other, sealed, "ep_a"},
		{"wrong aad", testSealer, sealed, "ep_b"},
		{"empty aad", testSealer, sealed, ""},
		{"no magic", testSealer, sealed[len(sealMagic):], "ep_a"},
		{"other version", testSealer, append([]byte("hsl2_"), sealed[len(sealMagic):]...), "ep_a"},
		{"truncated", testSealer, sealed[:len(sealed)-4], "ep_a"},
		{"too short for a tag", testSealer, []byte(sealMagic + base64.StdEncoding.EncodeToString(make([]byte, 27))), "ep_a"},
		{"not base64", testSealer, []byte(sealMagic + "!!!!"), "ep_a"},
		{"plain secret", testSealer, []byte(testSecret("s")), "ep_a"},
		{"nil", testSealer, nil, "ep_a"},
	}
	for _, tt := range tests {
		if got, err := tt.sealer.Open(tt.value, tt.aad); !errors.Is(err, ErrSealed) || got != nil {
			t.Errorf("%s: Open = %q, %v; want ErrSealed", tt.name, got, err)
		}
	}
	// Every byte of the nonce, ciphertext and tag is authenticated.
	raw, err := base64.StdEncoding.DecodeString(string(sealed[len(sealMagic):]))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		tampered := bytes.Clone(raw)
		tampered[i] ^= 0x01
		v := []byte(sealMagic + base64.StdEncoding.EncodeToString(tampered))
		if _, err := testSealer.Open(v, "ep_a"); !errors.Is(err, ErrSealed) {
			t.Fatalf("byte %d flipped: Open = %v", i, err)
		}
	}
}

func TestIsSealed(t *testing.T) {
	seed := ed25519.NewKeyFromSeed(testPrivate(AlgEd25519)).Seed()
	lookalike := append([]byte(sealMagic), bytes.Repeat([]byte{'A'}, ed25519.SeedSize-len(sealMagic))...)
	for name, v := range map[string][]byte{
		"whsec secret":           []byte(testSecret("s")),
		"whsec secret of 64":     []byte("whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 64))),
		"ed25519 seed":           seed,
		"zero seed":              make([]byte, 32),
		"seed starting hsl1_":    lookalike,
		"rsa key":                testRSAKey,
		"empty":                  nil,
		"magic only":             []byte(sealMagic),
		"magic and short base64": []byte(sealMagic + "AAAA"),
		"unpadded":               []byte(sealMagic + strings.TrimRight(base64.StdEncoding.EncodeToString(make([]byte, 40)), "=")),
		"with a line break":      append(testSealer.Seal(nil, "x"), '\n'),
	} {
		if IsSealed(v) {
			t.Errorf("IsSealed(%s) = true", name)
		}
	}
	if !IsSealed(testSealer.Seal(nil, "")) {
		t.Error("IsSealed of an empty sealed value = false")
	}
}
