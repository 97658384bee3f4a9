package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// Sealing keeps endpoint secrets and private signing keys encrypted in the
// store, the Raft log and snapshots, with a key the operator gives every
// node. The engine seals a value before it goes into a command and opens
// it after reading it back; the store has no key and only recognises and
// bounds sealed values (see [IsSealed]).
//
// A sealed value is printable, so it fits string fields too:
//
//	"hsl1_" ‖ standard base64(12-byte nonce ‖ AES-256-GCM ciphertext ‖ 16-byte tag)
//
// The authenticated data is the magic followed by the caller's aad, which
// binds a value to where it is stored (an endpoint or key id): copied
// elsewhere, it does not open.

// sealMagic starts every sealed value; the digit is the format's version.
const sealMagic = "hsl1_"

const (
	sealNonceSize = 12
	sealTagSize   = 16
)

// Sealer seals and opens values with one AES-256-GCM key. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("store: seal key must be exactly 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: seal key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain for the place aad names, under a fresh random nonce.
func (s *Sealer) Seal(plain []byte, aad string) []byte {
	raw := make([]byte, sealNonceSize, sealNonceSize+len(plain)+sealTagSize)
	rand.Read(raw) // never fails: crypto/rand crashes the program instead
	raw = s.aead.Seal(raw, raw, plain, sealAAD(aad))
	out := make([]byte, len(sealMagic)+base64.StdEncoding.EncodedLen(len(raw)))
	copy(out, sealMagic)
	base64.StdEncoding.Encode(out[len(sealMagic):], raw)
	return out
}

// ErrSealed is returned by Open for a value that does not open: not sealed,
// sealed under another key or for another aad, or altered.
var ErrSealed = errors.New("store: sealed value does not open (wrong key, wrong place or altered)")

// Open decrypts a value made by Seal with the same key and aad.
func (s *Sealer) Open(sealed []byte, aad string) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, []byte(sealMagic))
	if !ok {
		return nil, ErrSealed
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(rest)))
	n, err := strictBase64.Decode(raw, rest)
	if err != nil || n < sealNonceSize+sealTagSize {
		return nil, ErrSealed
	}
	raw = raw[:n]
	plain, err := s.aead.Open(nil, raw[:sealNonceSize], raw[sealNonceSize:], sealAAD(aad))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// sealAAD binds the format version along with the caller's aad.
func sealAAD(aad string) []byte { return []byte(sealMagic + aad) }

// IsSealed reports whether b has the form of a sealed value: the magic,
// then canonical base64 of at least a nonce and a tag. It does not open it.
// Plain whsec_ secrets, 32-byte Ed25519 seeds and DER keys never have this
// form.
func IsSealed(b []byte) bool {
	rest, ok := bytes.CutPrefix(b, []byte(sealMagic))
	if !ok {
		return false
	}
	n, ok := canonicalBase64(rest)
	return ok && n >= sealNonceSize+sealTagSize
}
