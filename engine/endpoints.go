package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strconv"
	"time"

	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

const maxEventTypes = 100

// EndpointInput registers an endpoint.
type EndpointInput struct {
	URL string
	// EventTypes subscribes to these types; empty subscribes to all.
	EventTypes []string
	Name       string
	// RateLimitPerS caps attempts per second to this endpoint; 0 is none.
	RateLimitPerS int
}

// EndpointUpdate changes the fields that are non-nil.
type EndpointUpdate struct {
	URL           *string
	EventTypes    *[]string
	State         *string // "enabled" or "disabled"
	Name          *string
	RateLimitPerS *int
}

// Endpoint is an endpoint as the API shows it. Secret is complete only
// when the endpoint is created; elsewhere it is truncated.
type Endpoint struct {
	ID            string    `json:"id"`
	URL           string    `json:"url"`
	Name          string    `json:"name,omitempty"`
	EventTypes    []string  `json:"event_types"`
	State         string    `json:"state"`
	RateLimitPerS int       `json:"rate_limit_per_s,omitempty"`
	Secret        string    `json:"secret"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func endpointView(ep *store.Endpoint, fullSecret bool) *Endpoint {
	v := &Endpoint{ID: ep.ID, URL: ep.URL, Name: ep.Name, EventTypes: ep.EventTypes, State: ep.State,
		RateLimitPerS: ep.RateLimitPerS, CreatedAt: utc(ep.CreatedAt), UpdatedAt: utc(ep.UpdatedAt)}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if len(ep.Secrets) > 0 {
		v.Secret = ep.Secrets[0].Key
		if !fullSecret {
			v.Secret = truncateSecret(v.Secret)
		}
	}
	return v
}

// truncateSecret keeps enough of a secret to tell secrets apart.
func truncateSecret(s string) string {
	const keep = len(signer.SecretPrefix) + 4
	if len(s) <= keep {
		return s
	}
	return s[:keep] + "…"
}

func (e *Engine) validateEndpoint(ctx context.Context, url *string, eventTypes *[]string, rate *int) error {
	if url != nil {
		if err := checkURL(ctx, *url, e.cfg.AllowPrivateNetworks); err != nil {
			return invalid("url", "%v", err)
		}
	}
	if eventTypes != nil {
		if len(*eventTypes) > maxEventTypes {
			return invalid("event_types", "at most %d", maxEventTypes)
		}
		for _, t := range *eventTypes {
			if !eventTypePattern.MatchString(t) {
				return invalid("event_types", "%q: must be 1 to 256 letters, digits, '.', '_' or '-'", t)
			}
		}
	}
	if rate != nil && *rate < 0 {
		return invalid("rate_limit_per_s", "must not be negative")
	}
	return nil
}

// CreateEndpoint registers an endpoint with a new signing secret, which the
// returned view holds in full.
func (e *Engine) CreateEndpoint(ctx context.Context, in EndpointInput) (*Endpoint, error) {
	if in.URL == "" {
		return nil, invalid("url", "is required")
	}
	if err := e.validateEndpoint(ctx, &in.URL, &in.EventTypes, &in.RateLimitPerS); err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	id, err := store.NewID("ep", now, rand.Reader)
	if err != nil {
		return nil, err
	}
	ep := store.Endpoint{ID: id, URL: in.URL, Name: in.Name, EventTypes: in.EventTypes, State: store.StateEnabled,
		RateLimitPerS: in.RateLimitPerS, Secrets: []store.Secret{{Key: signer.GenerateHMACSecret()}},
		CreatedAt: now.UnixNano(), UpdatedAt: now.UnixNano()}
	if _, err := e.apply(ctx, store.Command{CreateEndpoint: &store.CreateEndpoint{Endpoint: ep}}); err != nil {
		return nil, err
	}
	return endpointView(&ep, true), nil
}

// Endpoint returns one endpoint, its secret truncated.
func (e *Engine) Endpoint(ctx context.Context, id string) (*Endpoint, error) {
	if err := e.syncRead(ctx); err != nil {
		return nil, err
	}
	ep, err := e.store.Endpoint(id)
	if err != nil {
		return nil, fromCluster(err)
	}
	return endpointView(ep, false), nil
}

// Endpoints lists every endpoint, secrets truncated, oldest first.
func (e *Engine) Endpoints(ctx context.Context) ([]Endpoint, error) {
	if err := e.syncRead(ctx); err != nil {
		return nil, err
	}
	eps, err := e.store.Endpoints()
	if err != nil {
		return nil, fromCluster(err)
	}
	out := make([]Endpoint, 0, len(eps))
	for i := range eps {
		out = append(out, *endpointView(&eps[i], false))
	}
	return out, nil
}

// UpdateEndpoint changes an endpoint. Disabling it cancels its pending
// deliveries; changing its URL moves them to the new URL.
func (e *Engine) UpdateEndpoint(ctx context.Context, id string, up EndpointUpdate) (*Endpoint, error) {
	if err := e.validateEndpoint(ctx, up.URL, up.EventTypes, up.RateLimitPerS); err != nil {
		return nil, err
	}
	if up.State != nil && *up.State != store.StateEnabled && *up.State != store.StateDisabled {
		return nil, invalid("state", "must be enabled or disabled")
	}
	cmd := &store.UpdateEndpoint{ID: id, At: e.cfg.Now().UnixNano(), URL: up.URL, Name: up.Name,
		EventTypes: up.EventTypes, State: up.State, RateLimitPerS: up.RateLimitPerS}
	if _, err := e.apply(ctx, store.Command{UpdateEndpoint: cmd}); err != nil {
		return nil, err
	}
	return e.Endpoint(ctx, id)
}

// DeleteEndpoint removes an endpoint and cancels its pending deliveries.
func (e *Engine) DeleteEndpoint(ctx context.Context, id string) error {
	_, err := e.apply(ctx, store.Command{DeleteEndpoint: &store.DeleteEndpoint{ID: id, At: e.cfg.Now().UnixNano()}})
	return err
}

// RotateSecret gives the endpoint a new secret and returns it. The old
// secret keeps signing (a second v1 token on every attempt) for 24 hours,
// or stops at once when revokeNow is set.
func (e *Engine) RotateSecret(ctx context.Context, id string, revokeNow bool) (string, error) {
	now := e.cfg.Now()
	revokeAt := now.Add(secretRotationTTL)
	if revokeNow {
		revokeAt = now
	}
	secret := signer.GenerateHMACSecret()
	cmd := &store.RotateSecret{EndpointID: id, Secret: secret, At: now.UnixNano(), RevokeAt: revokeAt.UnixNano()}
	if _, err := e.apply(ctx, store.Command{RotateSecret: cmd}); err != nil {
		return "", err
	}
	return secret, nil
}

// Ping sends a webhook.ping message to one endpoint.
func (e *Engine) Ping(ctx context.Context, id string) (*Message, error) {
	if _, err := e.Endpoint(ctx, id); err != nil {
		return nil, err
	}
	data := json.RawMessage(`{"endpoint_id":` + strconv.Quote(id) + `}`)
	cmd, err := draft(e.cfg.Now(), "webhook.ping", data, nil)
	if err != nil {
		return nil, err
	}
	cmd.EndpointIDs = []string{id}
	if _, err := e.apply(ctx, store.Command{Enqueue: &cmd}); err != nil {
		return nil, err
	}
	return e.Message(ctx, cmd.ID)
}
