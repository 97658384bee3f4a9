package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/heraldhq/herald/engine"
)

// config configures the job runner.
type config struct {
	// DataDir holds jobs.json and Herald's state, in herald/.
	DataDir string
	// AllowPrivateNetworks lets webhooks go to loopback and private
	// addresses, such as a receiver on this machine.
	AllowPrivateNetworks bool
	// OverrideSignature signs deliveries to webhook_config URIs:
	// engine.SignatureEd25519 (v1a, the default) or engine.SignatureJWT.
	OverrideSignature string
	// PublicURL is the job runner's base URL, the issuer of JWT signatures.
	PublicURL string
	// Logger receives the job runner's logs, HeraldLogger Herald's own.
	Logger       *slog.Logger
	HeraldLogger *slog.Logger
}

// app is the job runner: its jobs, the runner that simulates them, and the
// Herald engine that sends their webhooks.
type app struct {
	engine *engine.Engine
	jobs   *jobStore
	runner *runner
	log    *slog.Logger
}

// openApp opens the jobs and the engine in cfg.DataDir and resumes the jobs
// that were in progress.
func openApp(ctx context.Context, cfg config) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	jobs, err := openJobStore(filepath.Join(cfg.DataDir, "jobs.json"))
	if err != nil {
		return nil, err
	}
	e, err := engine.Open(ctx, engine.Config{
		DataDir:              filepath.Join(cfg.DataDir, "herald"),
		NoNetwork:            true, // one node, no Raft port
		AllowPrivateNetworks: cfg.AllowPrivateNetworks,
		OverrideSignature:    cfg.OverrideSignature,
		PublicURL:            cfg.PublicURL,
		Logger:               cfg.HeraldLogger,
	})
	if err != nil {
		return nil, err
	}
	// A fresh single node elects itself leader, and can take writes, in
	// well under a second.
	if err := e.WaitReady(ctx); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	a := &app{engine: e, jobs: jobs, runner: newRunner(e, jobs, cfg.Logger), log: cfg.Logger}
	a.runner.resume()
	return a, nil
}

// close stops the jobs in progress, then Herald, letting the deliveries in
// flight finish until ctx ends. Both pick up where they left off at the
// next start.
func (a *app) close(ctx context.Context) error {
	a.runner.close()
	return a.engine.Stop(ctx)
}

// handler serves the API.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	// Project-level webhooks. A custom method such as :ping is the end of
	// the last path segment, which ServeMux cannot match on its own.
	mux.Handle("POST /v1beta/webhooks", a.handle(a.createWebhook))
	mux.Handle("GET /v1beta/webhooks", a.handle(a.listWebhooks))
	mux.Handle("GET /v1beta/webhooks/{id}", a.handle(a.getWebhook))
	mux.Handle("PATCH /v1beta/webhooks/{id}", a.handle(a.updateWebhook))
	mux.Handle("DELETE /v1beta/webhooks/{id}", a.handle(a.deleteWebhook))
	mux.Handle("POST /v1beta/webhooks/{id}", a.handle(a.pingWebhook)) // {id}:ping
	// Long-running jobs.
	mux.Handle("POST /v1beta/batches", a.handle(a.createBatch))
	mux.Handle("GET /v1beta/batches/{id}", a.handle(a.getBatch))
	mux.Handle("POST /v1beta/interactions", a.handle(a.createInteraction))
	mux.Handle("GET /v1beta/interactions/{id}", a.handle(a.getInteraction))
	mux.Handle("POST /v1beta/models/{model}", a.handle(a.predictLongRunning)) // {model}:predictLongRunning
	mux.Handle("GET /v1beta/models/{model}/operations/{id}", a.handle(a.getOperation))
	// The public keys of webhook_config deliveries.
	mux.Handle("GET /.well-known/jwks.json", a.handle(a.jwks))
	mux.Handle("/", a.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound(r.Method + " " + r.URL.Path)
	}))
	return localOnly(mux)
}

// handle adapts a handler that returns an error, answering the error as
// Google's APIs do. It checks the x-project header first.
func (a *app) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if validID(project(r)) {
			err = h(w, r)
		} else {
			err = invalidArgument("invalid x-project header: %s", idRule)
		}
		if err != nil {
			ae := toAPIError(err, a.log)
			writeJSON(w, ae.Code, map[string]*apiError{"error": ae})
		}
	})
}

// GET /.well-known/jwks.json
func (a *app) jwks(w http.ResponseWriter, r *http.Request) error {
	set, err := a.engine.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(set)
	return nil
}
