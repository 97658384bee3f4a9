package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Kinds of job. Each has the resource, and the name, that Gemini gives it.
const (
	kindBatch       = "batch"       // batches/{id}, with a state
	kindInteraction = "interaction" // interactions/{id}, with a status
	kindVideo       = "video"       // an operation, models/{model}/operations/{id}
)

// Job states.
const (
	statePending   = "JOB_STATE_PENDING"
	stateRunning   = "JOB_STATE_RUNNING"
	stateSucceeded = "JOB_STATE_SUCCEEDED"
	stateFailed    = "JOB_STATE_FAILED"
)

// job is a long-running job as the job runner keeps it (in jobs.json).
type job struct {
	ID          string         `json:"id"`
	Kind        string         `json:"kind"`
	Project     string         `json:"project"`
	Model       string         `json:"model,omitempty"` // a video's model; an interaction's agent
	DisplayName string         `json:"display_name,omitempty"`
	Webhook     *webhookConfig `json:"webhook_config,omitempty"`
	Simulate    simulation     `json:"simulate"`
	State       string         `json:"state"`
	CreateTime  time.Time      `json:"create_time"`
	UpdateTime  time.Time      `json:"update_time"`
	// MessageID is the Herald message carrying the job's completion event,
	// once handed over. A finished job without one (the job runner stopped
	// in between) is handed over at the next start.
	MessageID string `json:"message_id,omitempty"`
	// NotifyError is why Herald refused the event, if it did (a
	// webhook_config URI on a private network, say): it is not retried.
	NotifyError string `json:"notify_error,omitempty"`
}

// webhookConfig is a job's own webhook configuration. With uris, the
// completion event goes to them, signed with the keys published at
// /.well-known/jwks.json, instead of to the project's webhooks. Either way
// user_metadata is echoed in the event.
type webhookConfig struct {
	URIs         []string        `json:"uris,omitempty"`
	UserMetadata json.RawMessage `json:"user_metadata,omitempty"`
}

// maxURIs is how many URIs Herald takes per message.
const maxURIs = 10

// check validates a webhook_config, reading a null user_metadata as none.
// Herald checks the URIs again, with its SSRF guard, when the job ends.
func (wc *webhookConfig) check() error {
	if (wc.URIs != nil && len(wc.URIs) == 0) || len(wc.URIs) > maxURIs {
		return invalidArgument("webhook_config.uris must list 1 to %d URIs, or be left out", maxURIs)
	}
	for _, u := range wc.URIs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return invalidArgument("webhook_config.uris: %q is not an http:// or https:// URL", u)
		}
	}
	if string(wc.UserMetadata) == "null" {
		wc.UserMetadata = nil
	}
	if len(wc.UserMetadata) > 0 && !bytes.HasPrefix(bytes.TrimSpace(wc.UserMetadata), []byte("{")) {
		return invalidArgument("webhook_config.user_metadata must be a JSON object")
	}
	return nil
}

// simulation says how a simulated job goes: pending for the first half of
// duration_ms, running for the second, then ending with the outcome.
type simulation struct {
	DurationMS int64  `json:"duration_ms"`
	Outcome    string `json:"outcome"` // succeeded (the default) or failed
}

const (
	defaultDuration = 5 * time.Second
	maxDuration     = time.Hour
)

func (s *simulation) check(kind string) error {
	switch {
	case s.DurationMS == 0:
		s.DurationMS = defaultDuration.Milliseconds()
	case s.DurationMS < 0 || s.DurationMS > maxDuration.Milliseconds():
		return invalidArgument("simulate.duration_ms must be between 1 and %d", maxDuration.Milliseconds())
	}
	switch s.Outcome {
	case "":
		s.Outcome = "succeeded"
	case "succeeded":
	case "failed":
		if kind == kindVideo {
			return invalidArgument("simulate.outcome: a video can only succeed here (Gemini has no event for a failed one)")
		}
	default:
		return invalidArgument("simulate.outcome must be succeeded or failed, got %q", s.Outcome)
	}
	return nil
}

func (j *job) duration() time.Duration {
	return time.Duration(j.Simulate.DurationMS) * time.Millisecond
}

// runAt and doneAt are when the simulated job starts running and ends.
func (j *job) runAt() time.Time  { return j.CreateTime.Add(j.duration() / 2) }
func (j *job) doneAt() time.Time { return j.CreateTime.Add(j.duration()) }

func (j *job) finished() bool { return j.State == stateSucceeded || j.State == stateFailed }

// name is the job's resource name: GET /v1beta/{name} reads the job.
func (j *job) name() string {
	switch j.Kind {
	case kindBatch:
		return "batches/" + j.ID
	case kindInteraction:
		return "interactions/" + j.ID
	}
	return "models/" + j.Model + "/operations/" + j.ID
}

// Simulated results: where the job's output would be.
func (j *job) outputFileURI() string {
	if j.Kind == kindVideo {
		return "https://storage.example.com/jobrunner/videos/" + j.ID + ".mp4"
	}
	return "https://storage.example.com/jobrunner/batches/" + j.ID + "/output.jsonl"
}

// A failed job's error, as a google.rpc.Status.
const (
	errorCode    = 13 // INTERNAL
	errorMessage = "the simulated job failed"
)

// eventData is the data of an event, in Gemini's shape: the job's id, as
// its create call answered it, then what the event carries.
type eventData struct {
	ID            string `json:"id"`
	OutputFileURI string `json:"output_file_uri,omitempty"`
	FileName      string `json:"file_name,omitempty"`
	ErrorCode     int    `json:"error_code,omitempty"`
	ErrorMessage  string `json:"error_message,omitempty"`
}

// event returns the event the finished job sends.
func (j *job) event() (typ string, data eventData) {
	failed := j.State == stateFailed
	switch {
	case j.Kind == kindBatch && !failed:
		return "batch.succeeded", eventData{ID: j.name(), OutputFileURI: j.outputFileURI()}
	case j.Kind == kindBatch:
		return "batch.failed", eventData{ID: j.name(), ErrorCode: errorCode, ErrorMessage: errorMessage}
	case j.Kind == kindInteraction && !failed:
		return "interaction.completed", eventData{ID: j.ID}
	case j.Kind == kindInteraction:
		return "interaction.failed", eventData{ID: j.ID, ErrorCode: errorCode, ErrorMessage: errorMessage}
	}
	return "video.generated", eventData{ID: j.name(), OutputFileURI: j.outputFileURI(), FileName: "files/" + j.ID}
}

// newJobID returns a random id of 16 lower-case letters and digits.
func newJobID() string { return strings.ToLower(rand.Text()[:16]) }

// rpcStatus is a google.rpc.Status, a failed job's error.
type rpcStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (j *job) error() *rpcStatus {
	if j.State != stateFailed {
		return nil
	}
	return &rpcStatus{errorCode, errorMessage}
}

// startJob checks the job's webhook_config and simulation, keeps the job
// and starts it.
func (a *app) startJob(r *http.Request, j *job) error {
	if j.Webhook != nil {
		if err := j.Webhook.check(); err != nil {
			return err
		}
	}
	if err := j.Simulate.check(j.Kind); err != nil {
		return err
	}
	j.ID, j.Project, j.State = newJobID(), project(r), statePending
	j.CreateTime = time.Now().UTC()
	j.UpdateTime = j.CreateTime
	if err := a.jobs.add(j); err != nil {
		return err
	}
	a.runner.start(*j)
	return nil
}

// getJob reads a job of the request's project; a job of another project is
// not found.
func (a *app) getJob(r *http.Request, kind, name string) (job, error) {
	j, ok := a.jobs.get(r.PathValue("id"))
	if !ok || j.Kind != kind || j.Project != project(r) || j.name() != name {
		return job{}, notFound(name)
	}
	return j, nil
}

// Batches.

// batch is a batch job as the API shows it.
type batch struct {
	Name          string         `json:"name"`
	DisplayName   string         `json:"display_name,omitempty"`
	State         string         `json:"state"`
	CreateTime    time.Time      `json:"create_time"`
	UpdateTime    time.Time      `json:"update_time"`
	OutputFileURI string         `json:"output_file_uri,omitempty"`
	Error         *rpcStatus     `json:"error,omitempty"`
	WebhookConfig *webhookConfig `json:"webhook_config,omitempty"`
}

func batchOf(j job) batch {
	b := batch{Name: j.name(), DisplayName: j.DisplayName, State: j.State, CreateTime: j.CreateTime, UpdateTime: j.UpdateTime,
		Error: j.error(), WebhookConfig: j.Webhook}
	if j.State == stateSucceeded {
		b.OutputFileURI = j.outputFileURI()
	}
	return b
}

// POST /v1beta/batches
func (a *app) createBatch(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Batch struct {
			DisplayName   string          `json:"display_name"`
			WebhookConfig *webhookConfig  `json:"webhook_config"`
			Model         string          `json:"model"`        // accepted; the job is simulated
			InputConfig   json.RawMessage `json:"input_config"` // accepted; the job is simulated
		} `json:"batch"`
		Simulate simulation `json:"simulate"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	j := &job{Kind: kindBatch, DisplayName: req.Batch.DisplayName, Webhook: req.Batch.WebhookConfig, Simulate: req.Simulate}
	if err := a.startJob(r, j); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, batchOf(*j))
}

// GET /v1beta/batches/{id}
func (a *app) getBatch(w http.ResponseWriter, r *http.Request) error {
	j, err := a.getJob(r, kindBatch, "batches/"+r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, batchOf(j))
}

// Interactions.

// interaction is a background interaction (a deep-research run) as the API
// shows it; its status is in_progress, completed or failed.
type interaction struct {
	ID            string         `json:"id"`
	Agent         string         `json:"agent,omitempty"`
	Background    bool           `json:"background"`
	Status        string         `json:"status"`
	CreateTime    time.Time      `json:"create_time"`
	UpdateTime    time.Time      `json:"update_time"`
	Error         *rpcStatus     `json:"error,omitempty"`
	WebhookConfig *webhookConfig `json:"webhook_config,omitempty"`
}

func interactionOf(j job) interaction {
	status := "in_progress"
	switch j.State {
	case stateSucceeded:
		status = "completed"
	case stateFailed:
		status = "failed"
	}
	return interaction{ID: j.ID, Agent: j.Model, Background: true, Status: status, CreateTime: j.CreateTime,
		UpdateTime: j.UpdateTime, Error: j.error(), WebhookConfig: j.Webhook}
}

// POST /v1beta/interactions
func (a *app) createInteraction(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Agent         string          `json:"agent"`
		Background    bool            `json:"background"`
		WebhookConfig *webhookConfig  `json:"webhook_config"`
		Model         string          `json:"model"` // accepted; the job is simulated
		Input         json.RawMessage `json:"input"` // accepted; the job is simulated
		Simulate      simulation      `json:"simulate"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if !req.Background {
		return invalidArgument("only background interactions run long here: set background to true")
	}
	j := &job{Kind: kindInteraction, Model: req.Agent, Webhook: req.WebhookConfig, Simulate: req.Simulate}
	if err := a.startJob(r, j); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, interactionOf(*j))
}

// GET /v1beta/interactions/{id}
func (a *app) getInteraction(w http.ResponseWriter, r *http.Request) error {
	j, err := a.getJob(r, kindInteraction, "interactions/"+r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, interactionOf(j))
}

// Videos.

// operation is a video generation, a long-running operation, as the API
// shows it.
type operation struct {
	Name     string         `json:"name"`
	Done     bool           `json:"done"`
	Response *videoResponse `json:"response,omitempty"`
}

// videoResponse is a finished video operation's result.
type videoResponse struct {
	GenerateVideoResponse struct {
		GeneratedSamples []generatedSample `json:"generated_samples"`
	} `json:"generate_video_response"`
}

type generatedSample struct {
	Video struct {
		URI string `json:"uri"`
	} `json:"video"`
}

func operationOf(j job) operation {
	op := operation{Name: j.name(), Done: j.finished()}
	if op.Done {
		var sample generatedSample
		sample.Video.URI = j.outputFileURI()
		op.Response = &videoResponse{}
		op.Response.GenerateVideoResponse.GeneratedSamples = []generatedSample{sample}
	}
	return op
}

// POST /v1beta/models/{model}:predictLongRunning
func (a *app) predictLongRunning(w http.ResponseWriter, r *http.Request) error {
	model, method := customMethod(r.PathValue("model"))
	if method != "predictLongRunning" {
		return notFound("method " + r.URL.Path)
	}
	if !validID(model) {
		return invalidArgument("model %q: %s", model, idRule)
	}
	var req struct {
		WebhookConfig *webhookConfig  `json:"webhook_config"`
		Instances     json.RawMessage `json:"instances"`  // accepted; the job is simulated
		Parameters    json.RawMessage `json:"parameters"` // accepted; the job is simulated
		Simulate      simulation      `json:"simulate"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	j := &job{Kind: kindVideo, Model: model, Webhook: req.WebhookConfig, Simulate: req.Simulate}
	if err := a.startJob(r, j); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, operationOf(*j))
}

// GET /v1beta/models/{model}/operations/{id}
func (a *app) getOperation(w http.ResponseWriter, r *http.Request) error {
	j, err := a.getJob(r, kindVideo, "models/"+r.PathValue("model")+"/operations/"+r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, operationOf(j))
}
