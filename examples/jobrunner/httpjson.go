package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/heraldhq/herald/engine"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// apiError is an error as Google's APIs answer it:
//
//	{"error": {"code": 404, "message": "webhooks/ep_1 not found", "status": "NOT_FOUND"}}
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func (e *apiError) Error() string { return e.Message }

func invalidArgument(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...), "INVALID_ARGUMENT"}
}

func notFound(name string) error {
	return &apiError{http.StatusNotFound, name + " not found", "NOT_FOUND"}
}

// engineFields names the engine's input fields as this API calls them.
var engineFields = map[string]string{
	"tenant":      "x-project header",
	"url":         "uri",
	"event_types": "subscribed_events",
	"name":        "display_name",
}

// toAPIError turns an error from a handler, or from the engine, into the
// answer the client gets.
func toAPIError(err error, log *slog.Logger) *apiError {
	var ae *apiError
	var invalid *engine.InvalidError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &invalid):
		field := invalid.Field
		if f, ok := engineFields[field]; ok {
			field = f
		}
		return &apiError{http.StatusBadRequest, "invalid " + field + ": " + invalid.Msg, "INVALID_ARGUMENT"}
	case errors.Is(err, engine.ErrNotLeader), errors.Is(err, engine.ErrClosed):
		return &apiError{http.StatusServiceUnavailable, "unavailable, retry", "UNAVAILABLE"}
	}
	log.Error("internal error", "error", err)
	return &apiError{http.StatusInternalServerError, "internal error", "INTERNAL"}
}

// writeJSON answers with v as indented JSON, as Google's APIs do. Its
// error is one of encoding v, before anything is written.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n')) // an error here means the client has gone
	return nil
}

// decode reads the JSON body of r into v; an empty body is {}. Field names
// may be snake_case or lowerCamelCase, as Google's REST APIs accept both
// (subscribed_events or subscribedEvents). Unknown fields are an error, so
// a misspelt one is not silently ignored.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	switch {
	case err != nil:
		return invalidArgument("cannot read the request body: %v", err)
	case len(body) > maxBody:
		return invalidArgument("request body larger than %d bytes", maxBody)
	case len(bytes.TrimSpace(body)) == 0:
		body = []byte("{}")
	}
	if body, err = snakeKeys(body); err != nil {
		return invalidArgument("request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidArgument("request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// snakeKeys rewrites the keys of a JSON object, and of the objects in it,
// from lowerCamelCase to snake_case. It leaves user_metadata alone: that is
// the caller's own data, echoed in webhooks as it was given.
func snakeKeys(data []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, errors.New("not a JSON object")
	}
	out := make(map[string]json.RawMessage, len(obj))
	for key, value := range obj {
		key = snakeCase(key)
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("field %q given twice", key)
		}
		if key != "user_metadata" && bytes.HasPrefix(bytes.TrimSpace(value), []byte("{")) {
			var err error
			if value, err = snakeKeys(value); err != nil {
				return nil, err
			}
		}
		out[key] = value
	}
	return json.Marshal(out)
}

// snakeCase turns "subscribedEvents" into "subscribed_events"; a snake_case
// name is unchanged.
func snakeCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// localOnly guards an API without authentication that listens on loopback.
// It answers only requests addressed to a loopback name, so a web page that
// points its own DNS name at 127.0.0.1 cannot reach it, and refuses writes
// a browser marks as cross-origin.
func localOnly(next http.Handler) http.Handler {
	forbidden := func(w http.ResponseWriter, msg string) {
		writeJSON(w, http.StatusForbidden, map[string]*apiError{"error": {http.StatusForbidden, msg, "PERMISSION_DENIED"}})
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forbidden(w, "cross-origin request refused")
	}))
	guarded := csrf.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = strings.Trim(r.Host, "[]")
		}
		if !isLoopback(host) {
			forbidden(w, "this API answers only requests to a loopback address")
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// isLoopback reports whether host, a name or an IP address, is this machine's
// loopback interface.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// customMethod splits the last path segment of a Google-style custom
// method, "ID:method", into its parts.
func customMethod(segment string) (id, method string) {
	id, method, _ = strings.Cut(segment, ":")
	return id, method
}
