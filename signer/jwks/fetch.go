package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/heraldhq/herald/signer"
)

// maxDocumentSize bounds a fetched JWKS; real ones are a few kilobytes.
const maxDocumentSize = 1 << 20

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	// URL serves the JWKS, e.g. https://herald.example.com/.well-known/jwks.json.
	// Required.
	URL string

	// Client makes the requests. Defaults to a client with a 10-second
	// timeout.
	Client *http.Client

	// TTL is how long a fetched set is used before the next call fetches it
	// again. Defaults to 10 minutes.
	TTL time.Duration

	// MinRefresh is the least time between fetches forced by a signature no
	// cached key matches, so forged requests cannot make the receiver hammer
	// the URL. Defaults to 1 minute.
	MinRefresh time.Duration

	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c FetcherConfig) withDefaults() FetcherConfig {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if c.TTL == 0 {
		c.TTL = 10 * time.Minute
	}
	if c.MinRefresh == 0 {
		c.MinRefresh = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c FetcherConfig) validate() error {
	if c.URL == "" {
		return errors.New("jwks: FetcherConfig.URL is required")
	}
	if c.TTL < 0 || c.MinRefresh < 0 {
		return errors.New("jwks: negative TTL or MinRefresh")
	}
	return nil
}

// Fetcher fetches and caches a remote JWKS. It is safe for concurrent use;
// concurrent callers share one fetch.
type Fetcher struct {
	cfg FetcherConfig
	// sem is a one-slot lock that a waiting caller can abandon when its
	// context ends, unlike a sync.Mutex held across a slow fetch.
	sem     chan struct{}
	set     *Set      // guarded by sem; nil until the first fetch
	fetched time.Time // guarded by sem
}

// NewFetcher returns a Fetcher for cfg. It does no I/O.
func NewFetcher(cfg FetcherConfig) (*Fetcher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Fetcher{cfg: cfg, sem: make(chan struct{}, 1)}, nil
}

// Set returns the cached set, fetching it when it is missing or older than
// the TTL.
func (f *Fetcher) Set(ctx context.Context) (*Set, error) {
	return f.get(ctx, false)
}

// Verify is Set.Verify against the fetched set. When no cached key matches
// (ErrUnknownKey or signer.ErrNoMatchingSignature), the sender may have
// rotated keys since the last fetch, so it refetches, at most once per
// MinRefresh, and tries again.
func (f *Fetcher) Verify(ctx context.Context, id, timestamp, signature string, body []byte, cfg VerifyConfig) error {
	set, err := f.get(ctx, false)
	if err != nil {
		return err
	}
	err = set.Verify(id, timestamp, signature, body, cfg)
	if !errors.Is(err, ErrUnknownKey) && !errors.Is(err, signer.ErrNoMatchingSignature) {
		return err
	}
	fresh, ferr := f.get(ctx, true)
	if ferr != nil || fresh == set {
		return err
	}
	return fresh.Verify(id, timestamp, signature, body, cfg)
}

// get returns the cached set, or fetches one if it is older than the TTL or,
// with force, older than MinRefresh.
func (f *Fetcher) get(ctx context.Context, force bool) (*Set, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-f.sem }()
	now := f.cfg.Now()
	maxAge := f.cfg.TTL
	if force {
		maxAge = f.cfg.MinRefresh
	}
	if f.set != nil && now.Sub(f.fetched) < maxAge {
		return f.set, nil
	}
	set, err := f.fetch(ctx)
	if err != nil {
		return nil, err
	}
	f.set, f.fetched = set, now
	return set, nil
}

func (f *Fetcher) fetch(ctx context.Context) (*Set, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: fetch %s: %s", f.cfg.URL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: %w", f.cfg.URL, err)
	}
	if len(data) > maxDocumentSize {
		return nil, fmt.Errorf("jwks: fetch %s: document larger than %d bytes", f.cfg.URL, maxDocumentSize)
	}
	return Parse(data)
}
