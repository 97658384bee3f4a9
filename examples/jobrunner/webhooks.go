package main

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/engine"
	"github.com/heraldhq/herald/signer"
)

// A project's webhooks are the Herald endpoints of the tenant named after
// the project; Herald keeps them, their secrets and their subscriptions,
// and fans each event out to the enabled ones subscribed to it.

// events are the event types the job runner sends.
var events = []string{"batch.succeeded", "batch.failed", "interaction.completed", "interaction.failed", "video.generated"}

// webhook is a project-level webhook, shaped like the Gemini API's.
type webhook struct {
	Name             string   `json:"name"` // webhooks/{id}
	DisplayName      string   `json:"display_name,omitempty"`
	URI              string   `json:"uri"`
	SubscribedEvents []string `json:"subscribed_events"`
	// State is enabled, disabled, or disabled_due_to_failed_deliveries
	// (the receiver answered 410 Gone).
	State string `json:"state"`
	// NewSigningSecret is the whole whsec_ secret, on creation only.
	NewSigningSecret string          `json:"new_signing_secret,omitempty"`
	SigningSecrets   []signingSecret `json:"signing_secrets"`
	CreateTime       time.Time       `json:"create_time"`
	UpdateTime       time.Time       `json:"update_time"`
}

type signingSecret struct {
	TruncatedSecret string `json:"truncated_secret"`
}

// webhookOf shows a Herald endpoint as a webhook.
func webhookOf(ep *engine.Endpoint) webhook {
	return webhook{Name: "webhooks/" + ep.ID, DisplayName: ep.Name, URI: ep.URL, SubscribedEvents: ep.EventTypes,
		State: string(ep.State), SigningSecrets: []signingSecret{{truncate(ep.Secret)}},
		CreateTime: ep.CreatedAt, UpdateTime: ep.UpdatedAt}
}

// truncate shows enough of a secret to tell it apart from another. Herald
// shows endpoint secrets whole only when it makes them, truncated after.
func truncate(secret string) string {
	keep := len(signer.SecretPrefix) + 4
	if len(secret) <= keep || strings.HasSuffix(secret, "…") {
		return secret
	}
	return secret[:keep] + "…"
}

// webhookRequest is the body of a create or an update; an update changes
// the fields it has. The label is display_name; name is taken as the label
// too (as the SDKs' webhooks.create(name=…) passes it) unless it is the
// resource name, webhooks/{id}, which is ignored.
type webhookRequest struct {
	Name             *string   `json:"name"`
	DisplayName      *string   `json:"display_name"`
	URI              *string   `json:"uri"`
	SubscribedEvents *[]string `json:"subscribed_events"`
	State            *string   `json:"state"` // update only: enabled or disabled
}

// label returns the webhook's label from the request, if it has one.
func (req *webhookRequest) label() *string {
	if req.DisplayName != nil {
		return req.DisplayName
	}
	if req.Name != nil && !strings.HasPrefix(*req.Name, "webhooks/") {
		return req.Name
	}
	return nil
}

func checkEvents(subscribed []string) error {
	if len(subscribed) == 0 {
		return invalidArgument("subscribed_events is required: one or more of %s", strings.Join(events, ", "))
	}
	for _, e := range subscribed {
		if !slices.Contains(events, e) {
			return invalidArgument("subscribed_events: unknown event %q; the events are %s", e, strings.Join(events, ", "))
		}
	}
	return nil
}

// project returns the project a request acts in: its x-project header, or
// "default". Each project is a Herald tenant.
func project(r *http.Request) string {
	if p := r.Header.Get("x-project"); p != "" {
		return p
	}
	return engine.DefaultTenant
}

// idRule is what validID checks: Herald's rule for tenant ids.
const idRule = "want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

// validID reports whether s is fit for a project or a model id.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, c := range s {
		letterOrDigit := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !letterOrDigit && (i == 0 || !strings.ContainsRune("._-", c)) {
			return false
		}
	}
	return true
}

// webhookErr names the webhook in a not-found error.
func webhookErr(err error, id string) error {
	if errors.Is(err, engine.ErrNotFound) {
		return notFound("webhooks/" + id)
	}
	return err
}

// POST /v1beta/webhooks
func (a *app) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var req webhookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.URI == nil || *req.URI == "" {
		return invalidArgument("uri is required")
	}
	var subscribed []string
	if req.SubscribedEvents != nil {
		subscribed = *req.SubscribedEvents
	}
	if err := checkEvents(subscribed); err != nil {
		return err
	}
	if req.State != nil {
		return invalidArgument("state is set by an update (PATCH); a new webhook is enabled")
	}
	in := engine.EndpointInput{Tenant: project(r), URL: *req.URI, EventTypes: subscribed}
	if label := req.label(); label != nil {
		in.Name = *label
	}
	ep, err := a.engine.CreateEndpoint(r.Context(), in)
	if err != nil {
		return err
	}
	wh := webhookOf(ep)
	wh.NewSigningSecret = ep.Secret // shown this once
	return writeJSON(w, http.StatusOK, wh)
}

// GET /v1beta/webhooks
func (a *app) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	eps, err := a.engine.Endpoints(r.Context(), project(r))
	if err != nil {
		return err
	}
	list := struct {
		Webhooks []webhook `json:"webhooks"`
	}{Webhooks: []webhook{}}
	for i := range eps {
		list.Webhooks = append(list.Webhooks, webhookOf(&eps[i]))
	}
	return writeJSON(w, http.StatusOK, list)
}

// GET /v1beta/webhooks/{id}
func (a *app) getWebhook(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ep, err := a.engine.Endpoint(r.Context(), project(r), id)
	if err != nil {
		return webhookErr(err, id)
	}
	return writeJSON(w, http.StatusOK, webhookOf(ep))
}

// PATCH /v1beta/webhooks/{id}
func (a *app) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req webhookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	up := engine.EndpointUpdate{URL: req.URI, EventTypes: req.SubscribedEvents, Name: req.label(),
		State: (*engine.EndpointState)(req.State)}
	if req.SubscribedEvents != nil {
		if err := checkEvents(*req.SubscribedEvents); err != nil {
			return err
		}
	}
	ep, err := a.engine.UpdateEndpoint(r.Context(), project(r), id, up)
	if err != nil {
		return webhookErr(err, id)
	}
	return writeJSON(w, http.StatusOK, webhookOf(ep))
}

// DELETE /v1beta/webhooks/{id}
func (a *app) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.engine.DeleteEndpoint(r.Context(), project(r), id); err != nil {
		return webhookErr(err, id)
	}
	return writeJSON(w, http.StatusOK, struct{}{})
}

// POST /v1beta/webhooks/{id}:ping sends the webhook a webhook.ping event,
// whatever it subscribes to, and answers with its webhook-id.
func (a *app) pingWebhook(w http.ResponseWriter, r *http.Request) error {
	id, method := customMethod(r.PathValue("id"))
	if method != "ping" {
		return notFound("method " + r.URL.Path)
	}
	if err := decode(r, &struct{}{}); err != nil {
		return err
	}
	msg, err := a.engine.Ping(r.Context(), project(r), id)
	if err != nil {
		return webhookErr(err, id)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"message_id": msg.ID})
}
