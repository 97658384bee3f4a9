package engine

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/signer/jwks"
	"github.com/heraldhq/herald/store"
)

// Signing key algorithms as stored.
const (
	algEd25519 = "ed25519"
	algRS256   = "rs256"
)

// keyring signs attempts: with an endpoint's secrets, or with the cluster's
// signing keys for override deliveries. The
// current signer is cached, and reloaded from the store on first use after
// the apply hook reports that keys changed: on every node, so whichever
// node leads signs with the cluster's current key.
type keyring struct {
	st    *store.Store
	cfg   Config
	stale atomic.Bool // keys changed since the signer was loaded

	mu      sync.Mutex // guards current, jwt
	current signer.Signer
	jwt     *jwks.JWTSigner
}

func newKeyring(st *store.Store, cfg Config) *keyring {
	k := &keyring{st: st, cfg: cfg}
	k.stale.Store(true)
	return k
}

// alg is the algorithm that signs override deliveries in this deployment.
func (k *keyring) alg() string {
	if k.cfg.OverrideSignature == SignatureJWT {
		return algRS256
	}
	return algEd25519
}

// ensureSigningKey commits a signing key for the configured algorithm if
// the cluster has none. The leader calls it at the start of every term, so
// a new cluster has a key before its first override.
func (w *writer) ensureSigningKey(ctx context.Context) error {
	keys, err := w.store.SigningKeys()
	if err != nil {
		return err
	}
	if active(keys, w.keys.alg()) == nil {
		_, err = w.rotateSigningKey(ctx)
	}
	return err
}

// rotateSigningKey commits a new key for the configured algorithm; the
// previous one is retired and stays in the JWKS for a day.
func (w *writer) rotateSigningKey(ctx context.Context) (reply, error) {
	key, err := w.keys.generate()
	if err != nil {
		return reply{}, err
	}
	res, err := w.commit(ctx, store.Command{AddSigningKey: &store.AddSigningKey{Key: *key}})
	return reply{Index: res.Index}, err
}

func (k *keyring) generate() (*store.SigningKey, error) {
	now := k.cfg.Now().UnixNano()
	var pub crypto.PublicKey
	var private []byte
	switch k.alg() {
	case algRS256:
		rk, err := jwks.GenerateRSAKey()
		if err != nil {
			return nil, err
		}
		pub, private = &rk.PublicKey, x509.MarshalPKCS1PrivateKey(rk)
	default:
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		pub, private = pk, sk.Seed()
	}
	kid, err := jwks.KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &store.SigningKey{ID: kid, Alg: k.alg(), Private: private, CreatedAt: now}, nil
}

// active returns the unretired key of alg, if any.
func active(keys []store.SigningKey, alg string) *store.SigningKey {
	for i := range keys {
		if keys[i].Alg == alg && keys[i].RetiredAt == 0 {
			return &keys[i]
		}
	}
	return nil
}

// load replaces the cached signer with the store's active key.
func (k *keyring) load() error {
	k.stale.Store(false)
	keys, err := k.st.SigningKeys()
	if err != nil {
		return err
	}
	key := active(keys, k.alg())
	if key == nil {
		return errors.New("engine: no active signing key")
	}
	var current signer.Signer
	var jwt *jwks.JWTSigner
	switch key.Alg {
	case algRS256:
		rk, err := x509.ParsePKCS1PrivateKey(key.Private)
		if err != nil {
			return fmt.Errorf("engine: signing key %s: %w", key.ID, err)
		}
		if jwt, err = jwks.NewJWTSigner(rk, k.cfg.PublicURL); err != nil {
			return err
		}
	default:
		sk, err := ed25519Key(key)
		if err != nil {
			return err
		}
		if current, err = signer.NewEd25519(sk); err != nil {
			return err
		}
	}
	k.mu.Lock()
	k.current, k.jwt = current, jwt
	k.mu.Unlock()
	return nil
}

// ed25519Key returns an Ed25519 key from its stored seed.
func ed25519Key(key *store.SigningKey) (ed25519.PrivateKey, error) {
	if len(key.Private) != ed25519.SeedSize {
		return nil, fmt.Errorf("engine: signing key %s: seed of %d bytes, want %d", key.ID, len(key.Private), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(key.Private), nil
}

// Endpoint returns the signer for an attempt to a registered endpoint: one
// HMAC signature per secret live at now.
func (k *keyring) Endpoint(ep *store.Endpoint, now time.Time) (signer.Signer, error) {
	return signer.NewHMAC(ep.LiveSecrets(now.UnixNano())...)
}

// Override returns the signer for an attempt to an override URL.
func (k *keyring) Override(url string) (signer.Signer, error) {
	if k.stale.Load() {
		if err := k.load(); err != nil {
			k.stale.Store(true) // try again on the next attempt
			return nil, err
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.jwt != nil:
		return k.jwt.For(url), nil
	case k.current != nil:
		return k.current, nil
	}
	return nil, errors.New("engine: no signing key loaded")
}

// publicKeys returns the public halves of the keys to publish: live ones,
// and retired ones until keyRetirementTTL after retirement. RSA keys are
// published only in JWT mode.
func (k *keyring) publicKeys() ([]crypto.PublicKey, error) {
	keys, err := k.st.SigningKeys()
	if err != nil {
		return nil, err
	}
	cutoff := k.cfg.Now().Add(-keyRetirementTTL).UnixNano()
	var out []crypto.PublicKey
	for _, key := range keys {
		if key.RetiredAt != 0 && key.RetiredAt < cutoff {
			continue
		}
		switch key.Alg {
		case algEd25519:
			sk, err := ed25519Key(&key)
			if err != nil {
				return nil, err
			}
			out = append(out, sk.Public())
		case algRS256:
			if k.alg() != algRS256 {
				continue
			}
			rk, err := x509.ParsePKCS1PrivateKey(key.Private)
			if err != nil {
				return nil, fmt.Errorf("engine: signing key %s: %w", key.ID, err)
			}
			out = append(out, &rk.PublicKey)
		}
	}
	return out, nil
}

// JWKS returns the JSON Web Key Set of the keys that sign override
// deliveries, for /.well-known/jwks.json.
func (e *Engine) JWKS() ([]byte, error) {
	keys, err := e.keys.publicKeys()
	if err != nil {
		return nil, err
	}
	return jwks.Marshal(keys...)
}

// RotateSigningKey makes a new key the override signer. The previous key
// stays published for 24 hours so receivers holding a cached JWKS, and
// deliveries signed just before, still verify.
func (e *Engine) RotateSigningKey(ctx context.Context) error {
	_, err := e.prop.propose(ctx, &request{RotateSigningKey: &struct{}{}})
	return err
}
