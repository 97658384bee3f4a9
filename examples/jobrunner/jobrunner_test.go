package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/engine"
)

// These tests run the job runner in process on loopback, and check its
// webhooks with testdata/interop/jobreceiver.mjs, a receiver Herald did not
// write (npm standardwebhooks and jose, Node's crypto). They need Node 20+
// and `npm ci --prefix testdata/interop`; without them they fail, not skip.

// A project's webhooks get the project's batch events, verified by
// standardwebhooks with their own secrets; other projects' webhooks get
// nothing; GET reports the batch's states as it goes.
func TestProjectWebhooksGetBatchEvents(t *testing.T) {
	t.Parallel()
	jr := startJobRunner(t, t.TempDir(), engine.SignatureEd25519)
	rc := theReceiver(t)
	acmeHook, globexHook, defaultHook := rc.path(t, "acme"), rc.path(t, "globex"), rc.path(t, "default")

	// Webhooks in three projects, in snake_case and in camelCase.
	_, acmeSecret := jr.createWebhook(t, "acme", `{"name": "acme-batches", "uri": "`+rc.url+acmeHook+`",
		"subscribed_events": ["batch.succeeded", "batch.failed"]}`)
	_, globexSecret := jr.createWebhook(t, "globex", `{"displayName": "globex-batches", "uri": "`+rc.url+globexHook+`",
		"subscribedEvents": ["batch.succeeded"]}`)
	_, defaultSecret := jr.createWebhook(t, "", `{"uri": "`+rc.url+defaultHook+`", "subscribed_events": ["batch.succeeded", "batch.failed"]}`)
	rc.set(t, map[string]check{acmeHook: {Secret: acmeSecret}, globexHook: {Secret: globexSecret}, defaultHook: {Secret: defaultSecret}})

	ok := jr.call(t, "POST", "/v1beta/batches", "acme", `{"batch": {"display_name": "nightly"}, "simulate": {"duration_ms": 1000}}`)
	failed := jr.call(t, "POST", "/v1beta/batches", "acme", `{"batch": {"displayName": "broken"}, "simulate": {"durationMs": 200, "outcome": "failed"}}`)
	other := jr.call(t, "POST", "/v1beta/batches", "globex", `{"simulate": {"durationMs": 200}}`)
	if ok["state"] != statePending || ok["display_name"] != "nightly" || !strings.HasPrefix(ok["name"].(string), "batches/") {
		t.Fatalf("new batch = %v", ok)
	}

	// GET reports each state in turn: pending for half the time, running
	// for the other half, then succeeded.
	path := "/v1beta/" + ok["name"].(string)
	states := []any{ok["state"]}
	waitFor(t, "the batch to succeed", func() bool {
		if s := jr.call(t, "GET", path, "acme", "")["state"]; s != states[len(states)-1] {
			states = append(states, s)
		}
		return states[len(states)-1] == stateSucceeded
	})
	if want := []any{statePending, stateRunning, stateSucceeded}; !slices.Equal(states, want) {
		t.Errorf("GET %s reported states %v, want %v", path, states, want)
	}
	// Another project does not see the batch.
	jr.fail(t, "GET", path, "globex", "", http.StatusNotFound, ok["name"].(string))
	jr.fail(t, "GET", path, "", "", http.StatusNotFound)

	for _, job := range []map[string]any{ok, failed, other} {
		m := jr.delivered(t, lastSegment(job["name"]))
		if len(m.Deliveries) != 1 {
			t.Errorf("the event of %s went to %d webhooks, want 1", job["name"], len(m.Deliveries))
		}
	}
	if got := rc.arrivals(t, defaultHook); len(got) != 0 {
		t.Errorf("the default project's webhook got another project's events: %+v", got)
	}
	e := rc.only(t, globexHook, "v1").event(t)
	if e.Type != "batch.succeeded" || e.Data["id"] != other["name"] {
		t.Errorf("globex got %+v, want batch.succeeded for %s", e, other["name"])
	}

	acme := rc.arrivals(t, acmeHook)
	if len(acme) != 2 {
		t.Fatalf("acme received %d webhooks, want 2: %+v", len(acme), acme)
	}
	events := map[string]event{}
	for _, a := range acme {
		if !a.Valid || a.Scheme != "v1" {
			t.Fatalf("standardwebhooks did not verify %+v", a)
		}
		events[a.event(t).Type] = a.event(t)
	}
	if e := events["batch.succeeded"]; e.Data["id"] != ok["name"] || !strings.HasSuffix(e.Data["output_file_uri"].(string), "/output.jsonl") {
		t.Errorf("batch.succeeded = %+v", e)
	}
	if e := events["batch.failed"]; e.Data["id"] != failed["name"] || e.Data["error_code"] != float64(errorCode) || e.Data["error_message"] != errorMessage {
		t.Errorf("batch.failed = %+v", e)
	}
	b := jr.call(t, "GET", "/v1beta/"+failed["name"].(string), "acme", "")
	if b["state"] != stateFailed || b["error"].(map[string]any)["code"] != float64(errorCode) {
		t.Errorf("failed batch = %v", b)
	}
}

// A job's webhook_config URIs get its event instead of the project's
// webhooks, signed v1a with a key that Node's crypto finds in the job
// runner's JWKS; user_metadata is echoed exactly as given.
func TestWebhookConfigVerifiedWithJWKS(t *testing.T) {
	t.Parallel()
	jr := startJobRunner(t, t.TempDir(), engine.SignatureEd25519)
	rc := theReceiver(t)
	hook, job1, job2, forged := rc.path(t, "acme"), rc.path(t, "jobs/1"), rc.path(t, "jobs/2"), rc.path(t, "jobs/forged")
	_, secret := jr.createWebhook(t, "acme", `{"uri": "`+rc.url+hook+`", "subscribed_events": ["batch.succeeded", "interaction.completed"]}`)
	jwks := jr.url + "/.well-known/jwks.json"
	rc.set(t, map[string]check{hook: {Secret: secret}, job1: {JWKS: jwks}, job2: {JWKS: jwks}, forged: {JWKS: jwks}})

	// camelCase, and metadata whose own keys must stay as they are.
	const metadata = `{"customerId":"c_42","nested":{"keepCase":true,"n":12345678901234567890}}`
	b := jr.call(t, "POST", "/v1beta/batches", "acme", `{"batch": {"webhookConfig": {"uris": ["`+rc.url+job1+`"],
		"userMetadata": `+metadata+`}}, "simulate": {"durationMs": 200}}`)
	// snake_case, on a background interaction.
	i := jr.call(t, "POST", "/v1beta/interactions", "acme", `{"agent": "deep-research", "input": "why?", "background": true,
		"webhook_config": {"uris": ["`+rc.url+job2+`"], "user_metadata": {"ticket": 7}}, "simulate": {"duration_ms": 200}}`)
	if i["status"] != "in_progress" || i["agent"] != "deep-research" {
		t.Fatalf("new interaction = %v", i)
	}
	jr.delivered(t, lastSegment(b["name"]))
	jr.delivered(t, i["id"].(string))

	e := rc.only(t, job1, "v1a").event(t)
	if e.Type != "batch.succeeded" || e.Data["id"] != b["name"] || string(e.UserMetadata) != metadata {
		t.Errorf("webhook_config delivery = %+v, user_metadata %s; want batch.succeeded with %s", e, e.UserMetadata, metadata)
	}
	e = rc.only(t, job2, "v1a").event(t)
	if e.Type != "interaction.completed" || e.Data["id"] != i["id"] || string(e.UserMetadata) != `{"ticket":7}` {
		t.Errorf("webhook_config delivery = %+v, user_metadata %s", e, e.UserMetadata)
	}
	if got := rc.arrivals(t, hook); len(got) != 0 {
		t.Errorf("the project's webhook got events sent to webhook_config URIs: %+v", got)
	}
	if s := jr.call(t, "GET", "/v1beta/interactions/"+i["id"].(string), "acme", "")["status"]; s != "completed" {
		t.Errorf("interaction status = %v, want completed", s)
	}

	// Control: the receiver rejects a signature of a key not in the JWKS.
	req, _ := http.NewRequest("POST", rc.url+forged, strings.NewReader(`{}`))
	req.Header.Set("webhook-id", "msg_forged")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("webhook-signature", "v1a,"+strings.Repeat("A", 86)+"==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := rc.arrivals(t, forged); resp.StatusCode != http.StatusUnauthorized || len(got) != 1 || got[0].Valid {
		t.Errorf("the receiver accepted a forged v1a signature: %s %+v", resp.Status, got)
	}
}

// With --override-signature jwt, as Gemini signs them, webhook_config
// deliveries carry an RS256 JWT that jose verifies against the JWKS.
func TestWebhookConfigJWTVerifiedByJose(t *testing.T) {
	t.Parallel()
	jr := startJobRunner(t, t.TempDir(), engine.SignatureJWT)
	rc := theReceiver(t)
	hook := rc.path(t, "jobs/jwt")
	rc.set(t, map[string]check{hook: {JWKS: jr.url + "/.well-known/jwks.json"}})
	b := jr.call(t, "POST", "/v1beta/batches", "", `{"batch": {"webhook_config": {"uris": ["`+rc.url+hook+`"]}}, "simulate": {"duration_ms": 100}}`)
	jr.delivered(t, lastSegment(b["name"]))
	if e := rc.only(t, hook, "jwt").event(t); e.Type != "batch.succeeded" || e.Data["id"] != b["name"] {
		t.Errorf("JWT-signed delivery = %+v", e)
	}
}

// Background interactions and videos (:predictLongRunning) send their
// events to the project's webhooks, and GET reports them done.
func TestInteractionsAndVideos(t *testing.T) {
	t.Parallel()
	jr := startJobRunner(t, t.TempDir(), engine.SignatureEd25519)
	rc := theReceiver(t)
	hook := rc.path(t, "studio")
	_, secret := jr.createWebhook(t, "studio", `{"uri": "`+rc.url+hook+`",
		"subscribedEvents": ["interaction.completed", "interaction.failed", "video.generated"]}`)
	rc.set(t, map[string]check{hook: {Secret: secret}})

	done := jr.call(t, "POST", "/v1beta/interactions", "studio", `{"background": true, "simulate": {"duration_ms": 100}}`)
	failed := jr.call(t, "POST", "/v1beta/interactions", "studio", `{"background": true, "simulate": {"durationMs": 100, "outcome": "failed"}}`)
	video := jr.call(t, "POST", "/v1beta/models/veo-3.0-generate-001:predictLongRunning", "studio",
		`{"instances": [{"prompt": "a lighthouse at dawn"}], "parameters": {"aspectRatio": "16:9"}, "simulate": {"durationMs": 100}}`)
	opName, _ := video["name"].(string)
	if !strings.HasPrefix(opName, "models/veo-3.0-generate-001/operations/") || video["done"] != false {
		t.Fatalf("new video operation = %v", video)
	}
	for _, id := range []string{done["id"].(string), failed["id"].(string), lastSegment(opName)} {
		jr.delivered(t, id)
	}

	events := map[string]event{}
	for _, a := range rc.arrivals(t, hook) {
		if !a.Valid || a.Scheme != "v1" {
			t.Fatalf("standardwebhooks did not verify %+v", a)
		}
		events[a.event(t).Type] = a.event(t)
	}
	if len(events) != 3 {
		t.Fatalf("events = %v, want interaction.completed, interaction.failed and video.generated", events)
	}
	if e := events["interaction.completed"]; e.Data["id"] != done["id"] {
		t.Errorf("interaction.completed = %+v", e)
	}
	if e := events["interaction.failed"]; e.Data["id"] != failed["id"] || e.Data["error_code"] != float64(errorCode) {
		t.Errorf("interaction.failed = %+v", e)
	}
	id := lastSegment(opName)
	if e := events["video.generated"]; e.Data["id"] != opName || e.Data["file_name"] != "files/"+id || !strings.HasSuffix(e.Data["output_file_uri"].(string), id+".mp4") {
		t.Errorf("video.generated = %+v", e)
	}

	op := jr.call(t, "GET", "/v1beta/"+opName, "studio", "")
	samples := op["response"].(map[string]any)["generate_video_response"].(map[string]any)["generated_samples"].([]any)
	if op["done"] != true || len(samples) != 1 {
		t.Errorf("finished video operation = %v", op)
	}
	if s := jr.call(t, "GET", "/v1beta/interactions/"+failed["id"].(string), "studio", "")["status"]; s != "failed" {
		t.Errorf("failed interaction status = %v", s)
	}
	jr.fail(t, "POST", "/v1beta/interactions", "studio", `{"input": "hi"}`, http.StatusBadRequest, "background")
	jr.fail(t, "POST", "/v1beta/models/veo:predictLongRunning", "studio", `{"simulate": {"outcome": "failed"}}`, http.StatusBadRequest, "outcome")
	jr.fail(t, "POST", "/v1beta/models/veo:generateContent", "studio", `{}`, http.StatusNotFound)
}

// The webhook resource: create, get, list, update (snake_case or
// camelCase), ping, delete, and the errors.
func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	jr := startJobRunner(t, t.TempDir(), engine.SignatureEd25519)
	rc := theReceiver(t)
	hook := rc.path(t, "hook")
	id, secret := jr.createWebhook(t, "acme", `{"display_name": "ops", "uri": "`+rc.url+hook+`", "subscribed_events": ["batch.failed"]}`)
	rc.set(t, map[string]check{hook: {Secret: secret}})
	path := "/v1beta/webhooks/" + id

	wh := jr.call(t, "GET", path, "acme", "")
	truncated := wh["signing_secrets"].([]any)[0].(map[string]any)["truncated_secret"]
	if wh["new_signing_secret"] != nil || truncated != secret[:10]+"…" || wh["state"] != "enabled" || wh["display_name"] != "ops" {
		t.Errorf("GET %s = %v; want the secret truncated to %q", path, wh, secret[:10]+"…")
	}
	if list := jr.call(t, "GET", "/v1beta/webhooks", "acme", "")["webhooks"].([]any); len(list) != 1 {
		t.Errorf("acme lists %d webhooks, want 1", len(list))
	}
	if list := jr.call(t, "GET", "/v1beta/webhooks", "globex", "")["webhooks"].([]any); len(list) != 0 {
		t.Errorf("globex lists %d webhooks, want none", len(list))
	}

	wh = jr.call(t, "PATCH", path, "acme", `{"subscribedEvents": ["batch.succeeded", "batch.failed"], "displayName": "ops-2", "state": "disabled"}`)
	if wh["state"] != "disabled" || wh["display_name"] != "ops-2" || len(wh["subscribed_events"].([]any)) != 2 {
		t.Errorf("PATCH = %v", wh)
	}
	wh = jr.call(t, "PATCH", path, "acme", `{"state": "enabled"}`)
	if wh["state"] != "enabled" || wh["display_name"] != "ops-2" {
		t.Errorf("PATCH state only = %v", wh)
	}

	ping := jr.call(t, "POST", path+":ping", "acme", "")
	waitFor(t, "the ping", func() bool { return len(rc.arrivals(t, hook)) > 0 })
	a := rc.only(t, hook, "v1")
	if a.WebhookID != ping["message_id"] || a.event(t).Type != "webhook.ping" {
		t.Errorf("ping answered %v; the receiver got %+v", ping, a)
	}

	jr.fail(t, "GET", path, "globex", "", http.StatusNotFound, "webhooks/"+id)
	jr.fail(t, "DELETE", path, "globex", "", http.StatusNotFound)
	jr.fail(t, "POST", path+":ping", "globex", "", http.StatusNotFound)
	if got := jr.call(t, "DELETE", path, "acme", ""); len(got) != 0 {
		t.Errorf("DELETE = %v, want {}", got)
	}
	jr.fail(t, "GET", path, "acme", "", http.StatusNotFound)
	jr.fail(t, "PATCH", path, "acme", `{"state": "enabled"}`, http.StatusNotFound)

	for _, tc := range []struct{ body, mention string }{
		{`{"subscribed_events": ["batch.succeeded"]}`, "uri is required"},
		{`{"uri": "http://127.0.0.1:1/x"}`, "subscribed_events"},
		{`{"uri": "http://127.0.0.1:1/x", "subscribed_events": ["batch.done"]}`, `"batch.done"`},
		{`{"url": "http://127.0.0.1:1/x", "subscribed_events": ["batch.succeeded"]}`, `unknown field "url"`},
		{`{"uri": "ftp://127.0.0.1/x", "subscribed_events": ["batch.succeeded"]}`, "invalid uri"},
		{`{"uri": "http://127.0.0.1:1/x", "subscribedEvents": [], "subscribed_events": []}`, "given twice"},
		{`[]`, "JSON object"},
	} {
		jr.fail(t, "POST", "/v1beta/webhooks", "acme", tc.body, http.StatusBadRequest, tc.mention)
	}
	jr.fail(t, "GET", "/v1beta/webhooks", "not a project!", "", http.StatusBadRequest, "x-project")
	jr.fail(t, "POST", "/v1beta/batches", "-acme", `{}`, http.StatusBadRequest, "x-project")
	jr.fail(t, "POST", "/v1beta/models/-veo:predictLongRunning", "acme", `{}`, http.StatusBadRequest, "model")
	jr.fail(t, "POST", "/v1beta/batches", "acme", `{"batch": {"webhook_config": {"urls": ["http://x"]}}}`, http.StatusBadRequest, `unknown field "urls"`)
	jr.fail(t, "POST", "/v1beta/batches", "acme", `{"batch": {"webhook_config": {"uris": []}}}`, http.StatusBadRequest, "uris")
	jr.fail(t, "POST", "/v1beta/batches", "acme", `{"batch": {"webhook_config": {"uris": ["x"]}}}`, http.StatusBadRequest, "uris")
	jr.fail(t, "POST", "/v1beta/batches", "acme", `{"simulate": {"outcome": "maybe"}}`, http.StatusBadRequest, "outcome")
	jr.fail(t, "GET", "/v1beta/nothing", "acme", "", http.StatusNotFound)
}

// Requests a web page could forge are refused: to a name that is not
// loopback (DNS rebinding), or cross-origin writes.
func TestOnlyLocalRequests(t *testing.T) {
	t.Parallel()
	jr := startJobRunner(t, t.TempDir(), engine.SignatureEd25519)
	for name, set := range map[string]func(*http.Request){
		"rebound host": func(r *http.Request) { r.Host = "evil.example.com" },
		"cross-origin": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
	} {
		req, _ := http.NewRequest("POST", jr.url+"/v1beta/batches", strings.NewReader(`{}`))
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", name, resp.Status)
		}
	}
	if n := len(jr.app.jobs.all()); n != 0 {
		t.Errorf("%d jobs created by forged requests", n)
	}
}

// A restart resumes the jobs in progress, and an event handed to Herald
// just before a crash, but not recorded, is not sent twice: the
// idempotency key brings back the first message.
func TestRestartResumesJobsAndSendsEachEventOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jr := startJobRunner(t, dir, engine.SignatureEd25519)
	rc := theReceiver(t)
	hook := rc.path(t, "acme")
	_, secret := jr.createWebhook(t, "acme", `{"uri": "`+rc.url+hook+`", "subscribed_events": ["batch.succeeded"]}`)
	rc.set(t, map[string]check{hook: {Secret: secret}})

	first := lastSegment(jr.call(t, "POST", "/v1beta/batches", "acme", `{"simulate": {"duration_ms": 100}}`)["name"])
	msg := jr.delivered(t, first)
	// Long enough to be running still when the job runner stops.
	second := lastSegment(jr.call(t, "POST", "/v1beta/batches", "acme", `{"simulate": {"duration_ms": 1000}}`)["name"])
	jr.stop(t)

	// As if the job runner had crashed after Enqueue, before saving the
	// message id.
	jobsFile := filepath.Join(dir, "jobs.json")
	data, err := os.ReadFile(jobsFile)
	if err != nil {
		t.Fatal(err)
	}
	var jobs map[string]*job
	if err := json.Unmarshal(data, &jobs); err != nil {
		t.Fatal(err)
	}
	if jobs[first].MessageID != msg.ID || jobs[second].finished() {
		t.Fatalf("saved jobs: first %+v, second %+v", jobs[first], jobs[second])
	}
	jobs[first].MessageID = ""
	data, _ = json.Marshal(jobs)
	if err := os.WriteFile(jobsFile, data, 0o600); err != nil {
		t.Fatal(err)
	}

	jr = startJobRunner(t, dir, engine.SignatureEd25519)
	if again := jr.delivered(t, first); again.ID != msg.ID {
		t.Errorf("after the restart the first batch's event is message %s, want %s again", again.ID, msg.ID)
	}
	resumed := jr.delivered(t, second)
	var ids []string
	for _, a := range rc.arrivals(t, hook) {
		ids = append(ids, a.WebhookID)
	}
	if want := []string{msg.ID, resumed.ID}; !slices.Equal(ids, want) {
		t.Errorf("the receiver got webhook-ids %v, want %v: each event once", ids, want)
	}
	if s := jr.call(t, "GET", "/v1beta/batches/"+second, "acme", "")["state"]; s != stateSucceeded {
		t.Errorf("resumed batch state = %v", s)
	}
}

// run, as main calls it: flag errors in one line, a loopback address only,
// and a clean stop when its context ends (SIGINT, SIGTERM).
func TestRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		usage   bool
		mention string
	}{
		{[]string{"--bogus"}, true, "-bogus"},
		{[]string{"--override-signature", "hmac"}, true, "v1a or jwt"},
		{[]string{"extra"}, true, `"extra"`},
		{[]string{"--addr", "0.0.0.0:0", "--data-dir", t.TempDir()}, true, "loopback"},
	} {
		var stderr bytes.Buffer
		err := run(t.Context(), tc.args, &stderr, nil)
		if err == nil || errors.As(err, new(usageError)) != tc.usage || !strings.Contains(err.Error(), tc.mention) || strings.Contains(err.Error(), "\n") {
			t.Errorf("run %v = %v, want a one-line usage error mentioning %q", tc.args, err, tc.mention)
		}
	}
	if err := run(t.Context(), []string{"-h"}, &bytes.Buffer{}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run -h = %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	stderr := &syncWriter{w: &bytes.Buffer{}}
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, stderr, func(url string) { urls <- url })
	}()
	var url string
	select {
	case url = <-urls:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	resp, err := http.Get(url + "/v1beta/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1beta/webhooks: %s", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run stopped with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}
