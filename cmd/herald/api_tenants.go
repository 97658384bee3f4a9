package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhq/herald/engine"
)

// tenantList is the answer to GET /v1/tenants. NextCursor is the value for
// ?after= that fetches the next page; null on the last page.
type tenantList struct {
	Data       []engine.TenantInfo `json:"data"`
	NextCursor *string             `json:"next_cursor"`
}

// createTokenRequest is the body of POST /v1/tenants/{tenant}/tokens.
type createTokenRequest struct {
	// TTL is how long the token lives: a Go duration string ("1h",
	// "90m") or a whole number of seconds.
	TTL json.RawMessage `json:"ttl"`
}

// revoked answers DELETE /v1/tenants/{tenant}/tokens.
type revoked struct {
	Revoked int `json:"revoked"`
}

// pageLimit reads ?limit=: 0 (the engine's default) only when it is left
// out; otherwise a whole number from 1 to engine.MaxListLimit.
func pageLimit(r *http.Request) (int, error) {
	s, ok, err := param(r, "limit")
	if !ok || err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > engine.MaxListLimit {
		return 0, badRequest("limit: must be a whole number from 1 to %d, not %q (leave it out for %d)",
			engine.MaxListLimit, clip(s), engine.DefaultListLimit)
	}
	return n, nil
}

func (a *api) listTenants(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	after, _, err := param(r, "after")
	if err != nil {
		return err
	}
	ts, next, err := a.e.Tenants(r.Context(), after, limit)
	if err != nil {
		return err
	}
	out := tenantList{Data: ts}
	if out.Data == nil {
		out.Data = []engine.TenantInfo{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) deleteTenant(w http.ResponseWriter, r *http.Request) error {
	if err := a.e.DeleteTenant(r.Context(), r.PathValue("tenant")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) createTenantToken(w http.ResponseWriter, r *http.Request) error {
	var req createTokenRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return err
	}
	tok, err := a.e.CreateTenantToken(r.Context(), r.PathValue("tenant"), ttl)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, tok)
}

func (a *api) revokeTenantTokens(w http.ResponseWriter, r *http.Request) error {
	n, err := a.e.RevokeTenantTokens(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, revoked{Revoked: n})
}

// parseTTL reads a token's ttl: a Go duration string or a whole number of
// seconds. Its range is the engine's to check.
func parseTTL(raw json.RawMessage) (time.Duration, error) {
	const want = `a duration such as "1h" or "90m", or a whole number of seconds`
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, badRequest("ttl: is required (%s)", want)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, badRequest("ttl: must be %s", want)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, badRequest("ttl: %q is not %s", s, want)
		}
		return d, nil
	}
	if !isNumber(raw) {
		return 0, badRequest("ttl: must be %s", want)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, badRequest("ttl: %s is not a whole number of seconds", firstLine(string(raw)))
	}
	if n < 0 || n > int64(engine.MaxTokenTTL/time.Second) {
		// The engine's range, said here: n seconds may not fit a Duration.
		return 0, badRequest("ttl: must be between %v and %v", time.Minute, engine.MaxTokenTTL)
	}
	return time.Duration(n) * time.Second, nil
}

// isNumber reports whether raw is a JSON number.
func isNumber(raw json.RawMessage) bool {
	var f float64
	return json.Unmarshal(raw, &f) == nil
}
