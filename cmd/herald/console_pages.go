package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald/engine"
)

// The console's pages, each acting on one tenant: a tenant session's own,
// or for the admin the one named by ?tenant= (a form field on a POST),
// the default tenant when none is named.

// maxConsoleTenants bounds how many tenants the overview and the tenant
// pickers read.
const maxConsoleTenants = engine.MaxListLimit

// pageTenant is the tenant a request acts on.
func pageTenant(r *http.Request, v view) string {
	if !v.admin() {
		return v.tenant
	}
	if t := r.FormValue("tenant"); t != "" {
		return t
	}
	return engine.DefaultTenant
}

// tenantIDs lists the first tenants, for the admin's tenant picker.
func (c *console) tenantIDs(r *http.Request, v view) []string {
	if !v.admin() {
		return nil
	}
	ts, _, err := c.api.e.Tenants(r.Context(), "", maxConsoleTenants)
	if err != nil {
		return nil // the picker is a convenience; the tenant can be typed
	}
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return ids
}

// overviewPage is the overview's content.
type overviewPage struct {
	Backlog, InFlight   int
	Endpoints           int
	Failing, Tripped    int
	Disabled            int
	Tenants             int
	MoreTenants         bool
	Leader              string
	Term                uint64
	Nodes, Unreachable  int
	CommitIndex         uint64
	AppliedIndex        uint64
	PendingDeliveries   int // a tenant's own
	TenantEndpointsOnly bool
}

func (c *console) overview(w http.ResponseWriter, r *http.Request, v view) {
	ctx := r.Context()
	var p overviewPage
	tenants := []string{v.tenant}
	if v.admin() {
		st := c.api.e.Stats()
		p.Backlog, p.InFlight = st.Scheduled, st.InFlight
		cs, err := c.api.e.ClusterStatus(ctx)
		if err != nil {
			c.failErr(w, r, v, err)
			return
		}
		p.Leader, p.Term, p.Nodes, p.CommitIndex, p.AppliedIndex = cs.Leader, cs.Term, len(cs.Nodes), cs.CommitIndex, cs.AppliedIndex
		for _, n := range cs.Nodes {
			if !n.Reachable {
				p.Unreachable++
			}
		}
		ts, next, err := c.api.e.Tenants(ctx, "", maxConsoleTenants)
		if err != nil {
			c.failErr(w, r, v, err)
			return
		}
		tenants = tenants[:0]
		for _, t := range ts {
			tenants = append(tenants, t.ID)
		}
		p.Tenants, p.MoreTenants = len(ts), next != ""
	} else {
		p.TenantEndpointsOnly = true
	}
	for _, t := range tenants {
		eps, err := c.api.e.Endpoints(ctx, t)
		if err != nil {
			c.failErr(w, r, v, err)
			return
		}
		for _, ep := range eps {
			p.Endpoints++
			switch {
			case ep.State != engine.StateEnabled:
				p.Disabled++
			case ep.Breaker == engine.BreakerOpen:
				p.Tripped++
			case ep.FailingSince != nil:
				p.Failing++
			}
		}
	}
	c.show(w, v, http.StatusOK, "overview", "Overview", p)
}

// messagesPage is the message list's content.
type messagesPage struct {
	Tenant   string
	Tenants  []string
	Status   string
	Type     string
	Messages []engine.Message
	Next     string // the URL of the next page, "" on the last
}

func (c *console) messages(w http.ResponseWriter, r *http.Request, v view) {
	tenant := pageTenant(r, v)
	if id := strings.TrimSpace(r.FormValue("id")); id != "" {
		http.Redirect(w, r, withTenant("/ui/messages/"+url.PathEscape(id), v, tenant), http.StatusSeeOther)
		return
	}
	status, typ := r.FormValue("status"), strings.TrimSpace(r.FormValue("type"))
	msgs, next, err := c.api.e.ListMessages(r.Context(), engine.ListOptions{Tenant: tenant, Status: engine.Status(status),
		Type: typ, After: r.FormValue("after")})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	p := messagesPage{Tenant: tenant, Tenants: c.tenantIDs(r, v), Status: status, Type: typ, Messages: msgs}
	if next != "" {
		q := url.Values{"after": {next}}
		if status != "" {
			q.Set("status", status)
		}
		if typ != "" {
			q.Set("type", typ)
		}
		if v.admin() {
			q.Set("tenant", tenant)
		}
		p.Next = "/ui/messages?" + q.Encode()
	}
	c.show(w, v, http.StatusOK, "messages", "Messages", p)
}

// messagePage is one message's content.
type messagePage struct {
	Tenant  string
	Message *engine.Message
}

func (c *console) message(w http.ResponseWriter, r *http.Request, v view) {
	tenant := pageTenant(r, v)
	m, err := c.api.e.Message(r.Context(), tenant, r.PathValue("id"))
	if err != nil {
		c.failErr(w, r, v, messageNotFound(err, r.PathValue("id")))
		return
	}
	c.show(w, v, http.StatusOK, "message", "Message "+m.ID, messagePage{Tenant: tenant, Message: m})
}

// messageNotFound names the message in a not-found error; a malformed id
// is not found either (it is no message of the tenant).
func messageNotFound(err error, id string) error {
	var ie *engine.InvalidError
	if errors.Is(err, engine.ErrNotFound) || (errors.As(err, &ie) && ie.Field != "tenant") {
		return notFound("message", clip(id))
	}
	return err
}

func (c *console) retry(w http.ResponseWriter, r *http.Request, v view) {
	tenant, id := pageTenant(r, v), r.PathValue("id")
	res, err := c.api.e.RetryMessage(r.Context(), tenant, id)
	if err != nil {
		c.failErr(w, r, v, messageNotFound(err, id))
		return
	}
	flash := fmt.Sprintf("Re-queued %d failed deliveries; reload to see the new attempts.", res.Requeued)
	if res.Requeued == 0 {
		flash = "Nothing was re-queued: " + res.Reason + "."
	}
	c.back(w, r, v, withTenant("/ui/messages/"+url.PathEscape(id), v, tenant), flash)
}

// endpointsPage is the endpoint list's content.
type endpointsPage struct {
	Tenant    string
	Tenants   []string
	Endpoints []consoleEndpoint
}

// consoleEndpoint is an endpoint with its latest attempts as this node saw
// them.
type consoleEndpoint struct {
	engine.Endpoint
	Recent engine.EndpointRecent
}

func (c *console) endpoints(w http.ResponseWriter, r *http.Request, v view) {
	tenant := pageTenant(r, v)
	eps, err := c.api.e.Endpoints(r.Context(), tenant)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	rows := make([]consoleEndpoint, len(eps))
	for i, ep := range eps {
		rows[i] = consoleEndpoint{Endpoint: ep, Recent: c.api.e.EndpointStats(tenant, ep.ID)}
	}
	c.show(w, v, http.StatusOK, "endpoints", "Endpoints", endpointsPage{Tenant: tenant, Tenants: c.tenantIDs(r, v), Endpoints: rows})
}

// secretPage shows a rotated secret, once: it answers the POST and is not
// stored.
type secretPage struct {
	Tenant, EndpointID, Secret, Back string
}

// endpointAction enables, disables or rotates the secret of an endpoint.
func (c *console) endpointAction(w http.ResponseWriter, r *http.Request, v view) {
	tenant, id := pageTenant(r, v), r.PathValue("id")
	ctx := r.Context()
	back := withTenant("/ui/endpoints", v, tenant)
	switch action := r.PathValue("action"); action {
	case "enable", "disable":
		state := engine.StateEnabled
		if action == "disable" {
			state = engine.StateDisabled
		}
		if _, err := c.api.e.UpdateEndpoint(ctx, tenant, id, engine.EndpointUpdate{State: &state}); err != nil {
			c.failErr(w, r, v, err)
			return
		}
		c.back(w, r, v, back, fmt.Sprintf("Endpoint %s is %s.", id, state))
	case "rotate":
		secret, err := c.api.e.RotateSecret(ctx, tenant, id, false)
		if err != nil {
			c.failErr(w, r, v, err)
			return
		}
		c.show(w, v, http.StatusOK, "secret", "New secret", secretPage{Tenant: tenant, EndpointID: id, Secret: secret, Back: back})
	default:
		c.fail(w, r, &v, http.StatusNotFound, fmt.Sprintf("no endpoint action %q", clip(action)))
	}
}

func (c *console) cluster(w http.ResponseWriter, r *http.Request, v view) {
	if !v.admin() {
		c.fail(w, r, &v, http.StatusForbidden, "the cluster is shown to the admin only")
		return
	}
	cs, err := c.api.e.ClusterStatus(r.Context())
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	c.show(w, v, http.StatusOK, "cluster", "Cluster", cs)
}

// formatTime shows a time in UTC to the millisecond; nil or zero is "".
func formatTime(t any) string {
	var tm time.Time
	switch x := t.(type) {
	case time.Time:
		tm = x
	case *time.Time:
		if x == nil {
			return ""
		}
		tm = *x
	}
	if tm.IsZero() {
		return ""
	}
	return tm.UTC().Format("2006-01-02 15:04:05.000Z")
}

// percent shows a share from 0 to 1 as a whole percentage.
func percent(share float64) string {
	return fmt.Sprintf("%.0f%%", share*100)
}

// indentJSON shows a JSON payload indented.
func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}
