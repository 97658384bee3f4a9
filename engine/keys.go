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

	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/signer/jwks"
	"github.com/heraldhq/herald/store"
)

// Signing key algorithms as stored.
const (
	algEd25519 = "ed25519"
	algRS256   = "rs256"
)

// keyring holds the cluster's signing keys for override deliveries. The
// current signer is cached and reloaded from the store when this node
// starts leading and after a rotation.
type keyring struct {
	st  *store.Store
	cfg Config

	mu      sync.Mutex // guards current
	current signer.Signer
	jwt     *jwks.JWTSigner
}

func newKeyring(st *store.Store, cfg Config) *keyring {
	return &keyring{st: st, cfg: cfg}
}

// alg is the algorithm that signs override deliveries in this deployment.
func (k *keyring) alg() string {
	if k.cfg.OverrideSignature == SignatureJWT {
		return algRS256
	}
	return algEd25519
}

// ensure creates a signing key for the configured algorithm if the cluster
// has none, then loads the current one. The leader calls it at the start of
// every term, so a new cluster has a key before its first override.
func (k *keyring) ensure(ctx context.Context, node *cluster.Node) error {
	keys, err := k.st.SigningKeys()
	if err != nil {
		return err
	}
	if active(keys, k.alg()) == nil {
		if err := k.rotate(ctx, node); err != nil {
			return err
		}
	}
	return k.load()
}

// rotate commits a new key for the configured algorithm; the previous one
// is retired and stays in the JWKS for a day.
func (k *keyring) rotate(ctx context.Context, node *cluster.Node) error {
	key, err := k.generate()
	if err != nil {
		return err
	}
	res, err := node.Apply(ctx, store.Command{AddSigningKey: &store.AddSigningKey{Key: *key}})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return err
	}
	return k.load()
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

func (k *keyring) load() error {
	keys, err := k.st.SigningKeys()
	if err != nil {
		return err
	}
	key := active(keys, k.alg())
	if key == nil {
		return errors.New("engine: no active signing key")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch key.Alg {
	case algRS256:
		rk, err := x509.ParsePKCS1PrivateKey(key.Private)
		if err != nil {
			return fmt.Errorf("engine: signing key %s: %w", key.ID, err)
		}
		k.jwt, err = jwks.NewJWTSigner(rk, k.cfg.PublicURL)
		if err != nil {
			return err
		}
		k.current = nil
	default:
		s, err := signer.NewEd25519(ed25519.NewKeyFromSeed(key.Private))
		if err != nil {
			return err
		}
		k.current, k.jwt = s, nil
	}
	return nil
}

// overrideSigner returns the signer for an attempt to an override URL.
func (k *keyring) overrideSigner(url string) (signer.Signer, error) {
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
			out = append(out, ed25519.NewKeyFromSeed(key.Private).Public())
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
	if err := e.keys.rotate(ctx, e.node); err != nil {
		return fromCluster(err)
	}
	return nil
}
