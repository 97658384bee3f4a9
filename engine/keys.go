package engine

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/signer/jwks"
	"github.com/heraldhq/herald/store"
)

// keyring signs attempts: with an endpoint's secrets, or with the cluster's
// signing keys for override deliveries. The
// current signer is cached, and reloaded from the store on first use after
// the apply hook reports that keys changed: on every node, so whichever
// node leads signs with the cluster's current key.
type keyring struct {
	st     *store.Store
	cfg    Config
	sealer *store.Sealer // nil: secrets are stored in the clear
	stale  atomic.Bool   // keys changed since the signer was loaded

	mu      sync.Mutex // guards current, jwt, hmacs
	current signer.Signer
	jwt     *jwks.JWTSigner
	// hmacs holds each endpoint's signer with the stored secrets it was
	// made from: unsealing and decoding them for every attempt cost more
	// than the signature. A rotation or expiry changes the live secrets,
	// and so makes a new one.
	hmacs map[string]endpointSigner
}

type endpointSigner struct {
	stored []string // the live secrets as stored (sealed or not)
	sig    signer.Signer
}

// maxCachedSigners bounds keyring.hmacs; past it the cache starts over.
const maxCachedSigners = 10_000

func newKeyring(st *store.Store, cfg Config) (*keyring, error) {
	k := &keyring{st: st, cfg: cfg, hmacs: map[string]endpointSigner{}}
	if cfg.SealKey != nil {
		var err error
		if k.sealer, err = store.NewSealer(cfg.SealKey); err != nil {
			return nil, fmt.Errorf("engine: SealKey: %w", err)
		}
	}
	k.stale.Store(true)
	return k, nil
}

// errNoSealKey is the error for a sealed secret on a node without the key.
var errNoSealKey = errors.New("engine: secrets are sealed, and this node has no seal key (--seal-key-file)")

// seal prepares a secret for the store: sealed for the record named by aad
// when a seal key is set, else as it is.
func (k *keyring) seal(plain []byte, aad string) []byte {
	if k.sealer == nil {
		return plain
	}
	return k.sealer.Seal(plain, aad)
}

// open returns a stored secret in the clear. Secrets stored before the
// seal key was set are in the clear already.
func (k *keyring) open(stored []byte, aad string) ([]byte, error) {
	if !store.IsSealed(stored) {
		return stored, nil
	}
	if k.sealer == nil {
		return nil, errNoSealKey
	}
	return k.sealer.Open(stored, aad)
}

// openSecrets returns an endpoint's stored secrets in the clear.
func (k *keyring) openSecrets(epID string, stored []string) ([]string, error) {
	plain := make([]string, len(stored))
	for i, s := range stored {
		p, err := k.open([]byte(s), epID)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", epID, err)
		}
		plain[i] = string(p)
	}
	return plain, nil
}

// alg is the algorithm that signs override deliveries in this deployment.
func (k *keyring) alg() string {
	if k.cfg.OverrideSignature == SignatureJWT {
		return store.AlgRS256
	}
	return store.AlgEd25519
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
	key.Private = w.keys.seal(key.Private, key.ID)
	res, err := w.commit(ctx, store.Command{AddSigningKey: &store.AddSigningKey{Key: *key}})
	return reply{Index: res.Index}, err
}

func (k *keyring) generate() (*store.SigningKey, error) {
	now := k.cfg.Now().UnixNano()
	var pub crypto.PublicKey
	var private []byte
	switch k.alg() {
	case store.AlgRS256:
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
	private, err := k.privateKey(key)
	if err != nil {
		return err
	}
	var current signer.Signer
	var jwt *jwks.JWTSigner
	switch pk := private.(type) {
	case *rsa.PrivateKey:
		if jwt, err = jwks.NewJWTSigner(pk, k.cfg.PublicURL); err != nil {
			return err
		}
	case ed25519.PrivateKey:
		if current, err = signer.NewEd25519(pk); err != nil {
			return err
		}
	}
	k.mu.Lock()
	k.current, k.jwt = current, jwt
	k.mu.Unlock()
	return nil
}

// privateKey opens and parses a stored signing key: an ed25519.PrivateKey
// or an *rsa.PrivateKey.
func (k *keyring) privateKey(key *store.SigningKey) (crypto.Signer, error) {
	private, err := k.open(key.Private, key.ID)
	if err != nil {
		return nil, fmt.Errorf("engine: signing key %s: %w", key.ID, err)
	}
	switch key.Alg {
	case store.AlgRS256:
		rk, err := x509.ParsePKCS1PrivateKey(private)
		if err != nil {
			return nil, fmt.Errorf("engine: signing key %s: %w", key.ID, err)
		}
		return rk, nil
	case store.AlgEd25519:
		if len(private) != ed25519.SeedSize {
			return nil, fmt.Errorf("engine: signing key %s: seed of %d bytes, want %d", key.ID, len(private), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(private), nil
	}
	return nil, fmt.Errorf("engine: signing key %s: unknown algorithm %q", key.ID, key.Alg)
}

// Endpoint returns the signer for an attempt to a registered endpoint: one
// HMAC signature per secret live at now.
func (k *keyring) Endpoint(ep *store.Endpoint, now time.Time) (signer.Signer, error) {
	live := ep.LiveSecrets(now.UnixNano())
	k.mu.Lock()
	cached, ok := k.hmacs[ep.ID]
	k.mu.Unlock()
	if ok && slices.Equal(cached.stored, live) {
		return cached.sig, nil
	}
	secrets, err := k.openSecrets(ep.ID, live)
	if err != nil {
		return nil, err
	}
	sig, err := signer.NewHMAC(secrets...)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if len(k.hmacs) >= maxCachedSigners {
		clear(k.hmacs)
	}
	k.hmacs[ep.ID] = endpointSigner{stored: live, sig: sig}
	k.mu.Unlock()
	return sig, nil
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
		if (key.RetiredAt != 0 && key.RetiredAt < cutoff) || (key.Alg == store.AlgRS256 && k.alg() != store.AlgRS256) {
			continue
		}
		private, err := k.privateKey(&key)
		if err != nil {
			return nil, err
		}
		out = append(out, private.Public())
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
