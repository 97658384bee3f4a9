package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"

	"github.com/heraldhq/herald/store"
)

// DefaultTenant is the tenant of calls that name none, and of everything
// made before tenants existed.
const DefaultTenant = store.DefaultTenant

// tenantOf checks a tenant id, an empty one meaning DefaultTenant.
func tenantOf(tenant string) (string, error) {
	if tenant == "" {
		return DefaultTenant, nil
	}
	return tenant, onField("tenant", store.CheckTenant(tenant))
}

// pageLimit checks a page size, 0 meaning the default.
func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultListLimit, nil
	case limit < 0 || limit > MaxListLimit:
		return 0, invalid("limit", "must be between 1 and %d", MaxListLimit)
	}
	return limit, nil
}

// TenantInfo is a tenant with its counts.
type TenantInfo struct {
	ID                string `json:"id"`
	Endpoints         int    `json:"endpoints"`
	PendingDeliveries int    `json:"pending_deliveries"`
	Messages          int    `json:"messages"` // retained
	Tokens            int    `json:"tokens"`
}

// Tenants lists tenants in id order, up to limit (0: DefaultListLimit, at
// most MaxListLimit) after the id after (a tenant id, or empty for the
// first page; anything else is an *InvalidError); next is the cursor for
// the following page, empty at the end. A tenant is listed while it has an endpoint, a message, a
// pending delivery or a token.
func (e *Engine) Tenants(ctx context.Context, after string, limit int) (tenants []TenantInfo, next string, err error) {
	if limit, err = pageLimit(limit); err != nil {
		return nil, "", err
	}
	if after != "" && store.CheckTenant(after) != nil {
		return nil, "", invalid("after", "must be the next_cursor of a previous page (a tenant id)")
	}
	if err := e.reads.sync(ctx); err != nil {
		return nil, "", err
	}
	ts, err := e.store.Tenants(after, limit+1)
	if err != nil {
		return nil, "", fromCluster(err)
	}
	if len(ts) > limit {
		ts = ts[:limit]
		next = ts[len(ts)-1].ID
	}
	tenants = make([]TenantInfo, len(ts))
	for i, t := range ts {
		tenants[i] = TenantInfo{ID: t.ID, Endpoints: t.Endpoints, PendingDeliveries: t.Pending, Messages: t.Messages, Tokens: t.Tokens}
	}
	return tenants, next, nil
}

// tenantDeleteBatch is how much one DeleteTenant command does.
const tenantDeleteBatch = 1000

// DeleteTenant cancels the pending deliveries of the tenant and deletes
// its endpoints, tokens, messages and idempotency keys, in bounded
// commands until nothing is left. Its id may then be used afresh.
func (e *Engine) DeleteTenant(ctx context.Context, tenant string) error {
	_, err := e.prop.propose(ctx, &request{DeleteTenant: &idReq{ID: tenant}})
	return err
}

func (w *writer) deleteTenant(ctx context.Context, tenant string) (reply, error) {
	if tenant == "" {
		return reply{}, invalid("tenant", "is required")
	}
	if _, err := tenantOf(tenant); err != nil {
		return reply{}, err
	}
	for {
		res, err := w.commit(ctx, store.Command{DeleteTenant: &store.DeleteTenant{Tenant: tenant,
			At: w.cfg.Now().UnixNano(), Limit: tenantDeleteBatch}})
		if err != nil || res.Count < tenantDeleteBatch {
			return reply{Index: res.Index}, err
		}
	}
}

// Tenant tokens.
const (
	tokenPrefix = "htk_"
	// MaxTokenTTL bounds a tenant token's life.
	MaxTokenTTL = 365 * 24 * time.Hour
	minTokenTTL = time.Minute
)

// Token is a tenant token: a bearer credential for one tenant's routes.
type Token struct {
	Token     string    `json:"token"` // htk_…, shown once
	Tenant    string    `json:"tenant"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateTenantToken makes a token for the tenant, live for ttl (a minute to
// MaxTokenTTL). Only its SHA-256 is stored: the returned token is the only
// copy. A tenant holds at most store.MaxTenantTokens live tokens.
func (e *Engine) CreateTenantToken(ctx context.Context, tenant string, ttl time.Duration) (*Token, error) {
	rep, err := e.prop.propose(ctx, &request{CreateToken: &tokenReq{Tenant: tenant, TTL: ttl}})
	return rep.Token, err
}

func (w *writer) createToken(ctx context.Context, tenant string, ttl time.Duration) (reply, error) {
	if tenant == "" {
		return reply{}, invalid("tenant", "is required")
	}
	if _, err := tenantOf(tenant); err != nil {
		return reply{}, err
	}
	if ttl < minTokenTTL || ttl > MaxTokenTTL {
		return reply{}, invalid("ttl", "must be between %v and %v", minTokenTTL, MaxTokenTTL)
	}
	secret := make([]byte, 32)
	rand.Read(secret) // never fails: crypto/rand crashes the program instead
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	hash := sha256.Sum256([]byte(token))
	now := w.cfg.Now()
	expires := now.Add(ttl)
	res, err := w.commit(ctx, store.Command{CreateTenantToken: &store.CreateTenantToken{Tenant: tenant, Hash: hash[:],
		CreatedAt: now.UnixNano(), ExpiresAt: expires.UnixNano()}})
	if err != nil {
		return reply{}, err
	}
	return reply{Index: res.Index, Token: &Token{Token: token, Tenant: tenant, ExpiresAt: expires.UTC()}}, nil
}

// RevokeTenantTokens deletes every token of the tenant and returns how
// many there were.
func (e *Engine) RevokeTenantTokens(ctx context.Context, tenant string) (int, error) {
	rep, err := e.prop.propose(ctx, &request{RevokeTokens: &idReq{ID: tenant}})
	return rep.Count, err
}

func (w *writer) revokeTokens(ctx context.Context, tenant string) (reply, error) {
	if tenant == "" {
		return reply{}, invalid("tenant", "is required")
	}
	if _, err := tenantOf(tenant); err != nil {
		return reply{}, err
	}
	res, err := w.commit(ctx, store.Command{RevokeTenantTokens: &store.RevokeTenantTokens{Tenant: tenant}})
	return reply{Index: res.Index, Count: res.Count}, err
}

// TokenTenant returns the tenant of a live tenant token, from this node's
// store: a token created or revoked a moment ago through another node is
// known here once this node has applied it, within a heartbeat.
func (e *Engine) TokenTenant(token string) (tenant string, ok bool, err error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return "", false, nil
	}
	hash := sha256.Sum256([]byte(token))
	tenant, ok, err = e.store.TenantToken(hash[:], e.cfg.Now().UnixNano())
	return tenant, ok, fromCluster(err)
}
