package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/engine/internal/ssrf"
	"github.com/heraldhq/herald/signer"
	"github.com/heraldhq/herald/store"
)

// EndpointInput registers an endpoint.
type EndpointInput struct {
	// Tenant is the endpoint's tenant; empty means DefaultTenant.
	Tenant string `json:"tenant,omitempty"`
	URL    string `json:"url"`
	// EventTypes subscribes to these types; empty subscribes to all.
	EventTypes []string `json:"event_types,omitempty"`
	Name       string   `json:"name,omitempty"`
	// RateLimitPerS caps attempts per second to this endpoint; 0 is none.
	RateLimitPerS int `json:"rate_limit_per_s,omitempty"`
}

// EndpointState is an endpoint's state.
type EndpointState string

// Endpoint states. Only enabled endpoints get deliveries. An operator
// disables and enables endpoints; Herald disables one itself, as failing,
// when its receiver answers 410 Gone or when every attempt to it has failed
// for Config.DisableAfter.
const (
	StateEnabled         EndpointState = store.StateEnabled
	StateDisabled        EndpointState = store.StateDisabled
	StateDisabledFailing EndpointState = store.StateDisabledFailing
)

// EndpointUpdate changes the fields that are non-nil.
type EndpointUpdate struct {
	URL           *string        `json:"url,omitempty"`
	EventTypes    *[]string      `json:"event_types,omitempty"`
	State         *EndpointState `json:"state,omitempty"` // StateEnabled or StateDisabled
	Name          *string        `json:"name,omitempty"`
	RateLimitPerS *int           `json:"rate_limit_per_s,omitempty"`
	// RecoverSince, with State StateEnabled, also re-queues the endpoint's
	// failed and cancelled deliveries of the messages created since then
	// (what failed while it was disabled).
	RecoverSince *time.Time `json:"recover_since,omitempty"`
}

// Circuit breaker states of an endpoint (Endpoint.Breaker).
const (
	BreakerClosed = "closed"
	BreakerOpen   = "open"
)

// Endpoint is an endpoint as the API shows it. Secret is complete only
// when the endpoint is created; elsewhere it is truncated.
type Endpoint struct {
	ID            string        `json:"id"`
	Tenant        string        `json:"tenant"`
	URL           string        `json:"url"`
	Name          string        `json:"name,omitempty"`
	EventTypes    []string      `json:"event_types"`
	State         EndpointState `json:"state"`
	RateLimitPerS int           `json:"rate_limit_per_s,omitempty"`
	Secret        string        `json:"secret"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	// Breaker is BreakerOpen, since BreakerSince, while the endpoint's
	// deliveries wait for a probe to succeed; else BreakerClosed.
	Breaker      string     `json:"breaker"`
	BreakerSince *time.Time `json:"breaker_since,omitempty"`
	// FailingSince is when the current run of failed attempts began; nil
	// when the latest attempt succeeded.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// DisabledReason and DisabledAt say why and when a disabled endpoint
	// was disabled.
	DisabledReason string     `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
}

// endpointView shows an endpoint with the given secret.
func endpointView(ep *store.Endpoint, secret string) *Endpoint {
	v := &Endpoint{ID: ep.ID, Tenant: ep.Tenant, URL: ep.URL, Name: ep.Name, EventTypes: ep.EventTypes, State: EndpointState(ep.State),
		RateLimitPerS: ep.RateLimitPerS, Secret: secret, CreatedAt: utc(ep.CreatedAt), UpdatedAt: utc(ep.UpdatedAt),
		Breaker: BreakerClosed, BreakerSince: optionalTime(ep.Health.BreakerOpenedAt),
		FailingSince: optionalTime(ep.Health.FailingSince), DisabledReason: ep.DisabledReason, DisabledAt: optionalTime(ep.DisabledAt)}
	if ep.Health.BreakerOpen() {
		v.Breaker = BreakerOpen
	}
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	return v
}

// optionalTime converts a record's time, nil when unset.
func optionalTime(nanos int64) *time.Time {
	if nanos == 0 {
		return nil
	}
	t := utc(nanos)
	return &t
}

// truncatedSecret shows enough of the endpoint's newest secret to tell
// secrets apart.
func (k *keyring) truncatedSecret(ep *store.Endpoint) string {
	if len(ep.Secrets) == 0 {
		return ""
	}
	s, err := k.open([]byte(ep.Secrets[0].Key), ep.ID)
	if err != nil {
		return signer.SecretPrefix + "…" // sealed, and this node cannot open it
	}
	const keep = len(signer.SecretPrefix) + 4
	if len(s) <= keep {
		return string(s)
	}
	return string(s[:keep]) + "…"
}

func (w *writer) validateEndpoint(ctx context.Context, url *string, eventTypes *[]string, name *string, rate *int) error {
	if url != nil {
		if err := ssrf.CheckURL(ctx, *url, w.cfg.AllowPrivateNetworks); err != nil {
			return invalid("url", "%v", err)
		}
	}
	if eventTypes != nil {
		if len(*eventTypes) > store.MaxEventTypes {
			return invalid("event_types", "at most %d", store.MaxEventTypes)
		}
		for _, t := range *eventTypes {
			if err := onField("event_types", store.CheckEventType(t)); err != nil {
				return invalid("event_types", "%q: %s", t, err.(*InvalidError).Msg)
			}
		}
	}
	if name != nil && (len(*name) > store.MaxNameBytes || !utf8.ValidString(*name)) {
		return invalid("name", "must be at most %d bytes of UTF-8", store.MaxNameBytes)
	}
	if rate != nil && (*rate < 0 || *rate > store.MaxRateLimit) {
		return invalid("rate_limit_per_s", "must be between 0 (no limit) and %d", store.MaxRateLimit)
	}
	return nil
}

// CreateEndpoint registers an endpoint with a new signing secret, which the
// returned view holds in full.
func (e *Engine) CreateEndpoint(ctx context.Context, in EndpointInput) (*Endpoint, error) {
	rep, err := e.prop.propose(ctx, &request{CreateEndpoint: &in})
	return rep.Endpoint, err
}

func (w *writer) createEndpoint(ctx context.Context, in EndpointInput) (reply, error) {
	tenant, err := tenantOf(in.Tenant)
	if err != nil {
		return reply{}, err
	}
	if in.URL == "" {
		return reply{}, invalid("url", "is required")
	}
	if err := w.validateEndpoint(ctx, &in.URL, &in.EventTypes, &in.Name, &in.RateLimitPerS); err != nil {
		return reply{}, err
	}
	now := w.cfg.Now()
	id, err := store.NewID("ep", now, rand.Reader)
	if err != nil {
		return reply{}, err
	}
	secret := signer.GenerateHMACSecret()
	ep := store.Endpoint{ID: id, Tenant: tenant, URL: in.URL, Name: in.Name, EventTypes: in.EventTypes, State: store.StateEnabled,
		RateLimitPerS: in.RateLimitPerS, Secrets: []store.Secret{{Key: string(w.keys.seal([]byte(secret), id))}},
		CreatedAt: now.UnixNano(), UpdatedAt: now.UnixNano()}
	res, err := w.commit(ctx, store.Command{CreateEndpoint: &store.CreateEndpoint{Endpoint: ep}})
	if err != nil {
		return reply{}, err
	}
	return reply{Index: res.Index, Endpoint: endpointView(&ep, secret)}, nil
}

// Endpoint returns one endpoint of the tenant, its secret truncated; an
// endpoint of another tenant is ErrNotFound.
func (e *Engine) Endpoint(ctx context.Context, tenant, id string) (*Endpoint, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return nil, err
	}
	if err := e.reads.sync(ctx); err != nil {
		return nil, err
	}
	ep, err := e.store.Endpoint(tenant, id)
	if err != nil {
		return nil, fromCluster(err)
	}
	return endpointView(ep, e.keys.truncatedSecret(ep)), nil
}

// Endpoints lists the tenant's endpoints, secrets truncated, oldest first.
func (e *Engine) Endpoints(ctx context.Context, tenant string) ([]Endpoint, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return nil, err
	}
	if err := e.reads.sync(ctx); err != nil {
		return nil, err
	}
	eps, err := e.store.Endpoints(tenant)
	if err != nil {
		return nil, fromCluster(err)
	}
	out := make([]Endpoint, 0, len(eps))
	for i := range eps {
		out = append(out, *endpointView(&eps[i], e.keys.truncatedSecret(&eps[i])))
	}
	return out, nil
}

// UpdateEndpoint changes an endpoint of the tenant. Disabling it cancels
// its pending deliveries; changing its URL moves them to the new URL.
// Enabling it closes its breaker and forgets its failures; with
// RecoverSince it also re-queues what failed or was cancelled since then.
func (e *Engine) UpdateEndpoint(ctx context.Context, tenant, id string, up EndpointUpdate) (*Endpoint, error) {
	rep, err := e.prop.propose(ctx, &request{UpdateEndpoint: &updateEndpointReq{Tenant: tenant, ID: id, Update: up}})
	return rep.Endpoint, err
}

func (w *writer) updateEndpoint(ctx context.Context, tenant, id string, up EndpointUpdate) (reply, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return reply{}, err
	}
	if err := w.validateEndpoint(ctx, up.URL, up.EventTypes, up.Name, up.RateLimitPerS); err != nil {
		return reply{}, err
	}
	var state *string
	if up.State != nil {
		if *up.State != StateEnabled && *up.State != StateDisabled {
			return reply{}, invalid("state", "must be enabled or disabled")
		}
		state = (*string)(up.State)
	}
	now := w.cfg.Now()
	if err := checkRecoverSince(up, now); err != nil {
		return reply{}, err
	}
	cmd := &store.UpdateEndpoint{Tenant: tenant, ID: id, At: now.UnixNano(), URL: up.URL, Name: up.Name,
		EventTypes: up.EventTypes, State: state, RateLimitPerS: up.RateLimitPerS}
	res, err := w.commit(ctx, store.Command{UpdateEndpoint: cmd})
	if err != nil {
		return reply{}, err
	}
	index := res.Index
	if up.State != nil && *up.State == StateDisabled {
		end := store.EndPending{Tenant: tenant, EndpointID: id, Status: store.StatusCancelled, Reason: "endpoint disabled"}
		if index, err = w.endPending(ctx, end, index); err != nil {
			return reply{}, err
		}
	}
	if up.RecoverSince != nil {
		// Enabled first: only deliveries to an enabled endpoint are
		// re-queued. Retrying the whole update is safe.
		rec, err := w.recover(ctx, tenant, id, *up.RecoverSince, now)
		if err != nil {
			return reply{}, err
		}
		index = rec.Index
	}
	ep, err := w.store.Endpoint(tenant, id)
	if err != nil {
		return reply{}, fromCluster(err)
	}
	return reply{Index: index, Endpoint: endpointView(ep, w.keys.truncatedSecret(ep))}, nil
}

// endPendingBatch is how many pending deliveries one EndPending command
// ends, which keeps its write transaction short.
var endPendingBatch = 1000

// endPending ends an endpoint's pending deliveries in bounded commands
// (the command disabling an endpoint ends at most store.MaxEndOnDisable),
// until none is left or, unless it is being deleted, the endpoint is
// enabled again. index is the previous command's; it returns the last
// one's. Should this stop midway, the deliverer still ends each leftover
// of a disabled endpoint as it comes due.
func (w *writer) endPending(ctx context.Context, end store.EndPending, index uint64) (uint64, error) {
	end.Limit = endPendingBatch
	for {
		more, err := w.store.HasPending(end.EndpointID)
		if err != nil || !more {
			return index, fromCluster(err)
		}
		res, err := w.commit(ctx, store.Command{EndPending: &end})
		if err != nil || res.Count == 0 {
			return res.Index, err
		}
		index = res.Index
	}
}

// checkRecoverSince checks an update's RecoverSince: only with enabling,
// and in the past.
func checkRecoverSince(up EndpointUpdate, now time.Time) error {
	switch since := up.RecoverSince; {
	case since == nil:
		return nil
	case up.State == nil || *up.State != StateEnabled:
		return invalid("recover_since", "comes only with state enabled")
	case since.Before(time.Unix(0, 0)):
		return invalid("recover_since", "must not be before 1970")
	case !since.Before(now):
		return invalid("recover_since", "must be in the past")
	}
	return nil
}

// DeleteEndpoint removes an endpoint of the tenant and cancels its pending
// deliveries.
func (e *Engine) DeleteEndpoint(ctx context.Context, tenant, id string) error {
	_, err := e.prop.propose(ctx, &request{DeleteEndpoint: &idReq{Tenant: tenant, ID: id}})
	return err
}

func (w *writer) deleteEndpoint(ctx context.Context, tenant, id string) (reply, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return reply{}, err
	}
	// Its backlog first, in bounded commands: the deletion itself then ends
	// only what arrived meanwhile.
	end := store.EndPending{Tenant: tenant, EndpointID: id, Status: store.StatusCancelled, Reason: "endpoint deleted", Deleting: true}
	if _, err := w.endPending(ctx, end, 0); err != nil {
		return reply{}, err
	}
	res, err := w.commit(ctx, store.Command{DeleteEndpoint: &store.DeleteEndpoint{Tenant: tenant, ID: id, At: w.cfg.Now().UnixNano()}})
	return reply{Index: res.Index}, err
}

// RotateSecret gives the endpoint a new secret and returns it. The old
// secret keeps signing (a second v1 token on every attempt) for 24 hours,
// or stops at once when revokeNow is set.
func (e *Engine) RotateSecret(ctx context.Context, tenant, id string, revokeNow bool) (string, error) {
	rep, err := e.prop.propose(ctx, &request{RotateSecret: &rotateSecretReq{Tenant: tenant, ID: id, RevokeNow: revokeNow}})
	return rep.Secret, err
}

func (w *writer) rotateSecret(ctx context.Context, tenant, id string, revokeNow bool) (reply, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return reply{}, err
	}
	now := w.cfg.Now()
	revokeAt := now.Add(secretRotationTTL)
	if revokeNow {
		revokeAt = now
	}
	secret := signer.GenerateHMACSecret()
	cmd := &store.RotateSecret{Tenant: tenant, EndpointID: id, Secret: string(w.keys.seal([]byte(secret), id)), At: now.UnixNano(),
		RevokeAt: revokeAt.UnixNano()}
	res, err := w.commit(ctx, store.Command{RotateSecret: cmd})
	if err != nil {
		return reply{}, err
	}
	return reply{Index: res.Index, Secret: secret}, nil
}

// Ping sends a webhook.ping message to one endpoint of the tenant. A
// disabled endpoint is a *ConflictError: nothing is sent.
func (e *Engine) Ping(ctx context.Context, tenant, id string) (*Message, error) {
	rep, err := e.prop.propose(ctx, &request{Ping: &idReq{Tenant: tenant, ID: id}})
	return rep.Message, err
}

func (w *writer) ping(ctx context.Context, tenant, id string) (reply, error) {
	tenant, err := tenantOf(tenant)
	if err != nil {
		return reply{}, err
	}
	if err := w.reads.leaderSync(ctx); err != nil {
		return reply{}, err
	}
	ep, err := w.store.Endpoint(tenant, id)
	if err != nil {
		return reply{}, fromCluster(err)
	}
	// A disabled endpoint gets no deliveries: a ping would only record an
	// attempt that was never made.
	switch ep.State {
	case store.StateEnabled:
	case store.StateDisabledFailing:
		reason := ep.DisabledReason
		if reason == "" { // disabled before reasons were recorded: by a 410
			reason = store.ReasonGone
		}
		return reply{}, conflict("endpoint %s is disabled (%s): enable it first", id, reason)
	default:
		return reply{}, conflict("endpoint %s is disabled: enable it first", id)
	}
	data := json.RawMessage(`{"endpoint_id":` + strconv.Quote(id) + `}`)
	cmd, err := draft(w.cfg.Now(), tenant, "webhook.ping", data, nil)
	if err != nil {
		return reply{}, err
	}
	cmd.EndpointIDs = []string{id}
	res, err := w.commit(ctx, store.Command{Enqueue: &cmd})
	if err != nil {
		return reply{}, err
	}
	return w.messageReply(res.Index, tenant, cmd.ID)
}
