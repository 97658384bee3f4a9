package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/heraldhq/herald/engine"
)

// The handlers of endpoints and messages serve both /v1/… (the default
// tenant) and /v1/tenants/{tenant}/…: each acts on r.PathValue("tenant"),
// "" (engine.DefaultTenant) on the routes without one.

// createEndpointRequest is the body of POST /v1/endpoints.
type createEndpointRequest struct {
	URL           string   `json:"url"`
	EventTypes    []string `json:"event_types"`
	Name          string   `json:"name"`
	RateLimitPerS int      `json:"rate_limit_per_s"`
}

// updateEndpointRequest is the body of PATCH /v1/endpoints/{id}; absent
// fields are left alone.
type updateEndpointRequest struct {
	URL           *string               `json:"url"`
	EventTypes    *[]string             `json:"event_types"`
	State         *engine.EndpointState `json:"state"`
	Name          *string               `json:"name"`
	RateLimitPerS *int                  `json:"rate_limit_per_s"`
	// RecoverSince, with state enabled, re-queues the endpoint's deliveries
	// that failed or were cancelled since this RFC 3339 time.
	RecoverSince *string `json:"recover_since"`
}

// rotateSecretRequest is the body of POST /v1/endpoints/{id}/rotate-secret.
type rotateSecretRequest struct {
	Revoke string `json:"revoke"`
}

// Revocation choices for rotate-secret.
const (
	revokeAfter24h    = "after_24h"
	revokeImmediately = "immediately"
)

// listResponse is the shape of every list.
type listResponse[T any] struct {
	Data []T `json:"data"`
}

func (a *api) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var req createEndpointRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	ep, err := a.e.CreateEndpoint(r.Context(), engine.EndpointInput{
		Tenant: r.PathValue("tenant"), URL: req.URL, EventTypes: req.EventTypes, Name: req.Name, RateLimitPerS: req.RateLimitPerS,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ep)
}

func (a *api) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	eps, err := a.e.Endpoints(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	if eps == nil {
		eps = []engine.Endpoint{}
	}
	return writeJSON(w, http.StatusOK, listResponse[engine.Endpoint]{Data: eps})
}

func (a *api) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ep, err := a.e.Endpoint(r.Context(), r.PathValue("tenant"), id)
	if err != nil {
		return endpointErr(err, id)
	}
	return writeJSON(w, http.StatusOK, ep)
}

func (a *api) updateEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req updateEndpointRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	up := engine.EndpointUpdate{URL: req.URL, EventTypes: req.EventTypes, State: req.State, Name: req.Name, RateLimitPerS: req.RateLimitPerS}
	if req.RecoverSince != nil {
		since, err := time.Parse(time.RFC3339, *req.RecoverSince)
		if err != nil {
			return badRequest("recover_since: %q is not an RFC 3339 time", *req.RecoverSince)
		}
		up.RecoverSince = &since
	}
	ep, err := a.e.UpdateEndpoint(r.Context(), r.PathValue("tenant"), id, up)
	if err != nil {
		return endpointErr(err, id)
	}
	return writeJSON(w, http.StatusOK, ep)
}

func (a *api) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.e.DeleteEndpoint(r.Context(), r.PathValue("tenant"), id); err != nil {
		return endpointErr(err, id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req rotateSecretRequest
	if err := decode(r, &req, true); err != nil {
		return err
	}
	var now bool
	switch req.Revoke {
	case "", revokeAfter24h:
	case revokeImmediately:
		now = true
	default:
		return badRequest("revoke: must be %q or %q", revokeAfter24h, revokeImmediately)
	}
	secret, err := a.e.RotateSecret(r.Context(), r.PathValue("tenant"), id, now)
	if err != nil {
		return endpointErr(err, id)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"secret": secret})
}

func (a *api) pingEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := decode(r, &struct{}{}, true); err != nil {
		return err
	}
	msg, err := a.e.Ping(r.Context(), r.PathValue("tenant"), id)
	if err != nil {
		return endpointErr(err, id)
	}
	return writeJSON(w, http.StatusAccepted, msg)
}

// endpointErr names the endpoint in a not-found error.
func endpointErr(err error, id string) error {
	if errors.Is(err, engine.ErrNotFound) {
		return notFound("endpoint", id)
	}
	return err
}
