package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald/engine"
)

// runner stands in for the workers that would do the jobs: it moves each
// job through its states on its simulated schedule and, when the job ends,
// hands Herald the event that says so. Herald then delivers the event,
// durably and with retries, while the job runner gets on with other work.
type runner struct {
	engine *engine.Engine
	jobs   *jobStore
	log    *slog.Logger
	ctx    context.Context // ends when the job runner stops
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func newRunner(e *engine.Engine, jobs *jobStore, log *slog.Logger) *runner {
	ctx, stop := context.WithCancel(context.Background())
	return &runner{engine: e, jobs: jobs, log: log, ctx: ctx, stop: stop}
}

// resume picks up, on start, every job that was running when the job
// runner stopped, and every finished one whose event was not handed over.
func (r *runner) resume() {
	for _, j := range r.jobs.all() {
		if !j.finished() || (j.MessageID == "" && j.NotifyError == "") {
			r.start(j)
		}
	}
}

// start runs a job in the background.
func (r *runner) start(j job) { r.wg.Go(func() { r.run(j) }) }

// close stops the jobs in progress, where the next start resumes them.
func (r *runner) close() {
	r.stop()
	r.wg.Wait()
}

// run takes a job from its state to the end and hands over its event.
func (r *runner) run(j job) {
	name := j.name()
	var err error
	if j.State == statePending {
		if !r.sleepUntil(j.runAt()) {
			return
		}
		if j, err = r.jobs.update(j.ID, func(j *job) { j.State = stateRunning }); err != nil {
			r.log.Error("cannot save the job", "job", name, "error", err)
			return
		}
	}
	if j.State == stateRunning {
		if !r.sleepUntil(j.doneAt()) {
			return
		}
		end := stateSucceeded
		if j.Simulate.Outcome == "failed" {
			end = stateFailed
		}
		if j, err = r.jobs.update(j.ID, func(j *job) { j.State = end }); err != nil {
			r.log.Error("cannot save the job", "job", name, "error", err)
			return
		}
	}
	r.notify(j)
}

// notify hands Herald the finished job's event: for the job's
// webhook_config URIs if it has some, else for the project's webhooks
// subscribed to the event. Enqueue returns once Herald has committed the
// message; from then on Herald delivers it, through restarts, retrying for
// 24 hours.
//
// The idempotency key names the job and its event. Should the job runner
// stop after Enqueue but before it records the message, the next start
// hands the event over again, and Herald answers with the first message
// instead of sending a second.
func (r *runner) notify(j job) {
	typ, data := j.event()
	payload, _ := json.Marshal(data) // strings and a number: cannot fail
	in := engine.MessageInput{Tenant: j.Project, Type: typ, Data: payload, IdempotencyKey: j.name() + "/" + typ}
	if wc := j.Webhook; wc != nil {
		in.URIs, in.UserMetadata = wc.URIs, wc.UserMetadata
	}
	for {
		msg, _, err := r.engine.Enqueue(r.ctx, in)
		var invalid *engine.InvalidError
		switch {
		case err == nil:
			r.log.Info("event handed to Herald", "job", j.name(), "event", typ, "message", msg.ID)
			r.record(j, func(j *job) { j.MessageID = msg.ID })
			return
		case errors.As(err, &invalid):
			r.log.Warn("Herald refused the event", "job", j.name(), "event", typ, "error", err)
			r.record(j, func(j *job) { j.NotifyError = err.Error() })
			return
		case r.ctx.Err() != nil:
			return // stopping: the next start hands the event over
		}
		r.log.Warn("cannot hand the event to Herald; retrying in a second", "job", j.name(), "error", err)
		if !r.sleepUntil(time.Now().Add(time.Second)) {
			return
		}
	}
}

// record saves what became of a job's event.
func (r *runner) record(j job, f func(*job)) {
	if _, err := r.jobs.update(j.ID, f); err != nil {
		r.log.Error("cannot save the job", "job", j.name(), "error", err)
	}
}

// sleepUntil waits until t; it reports false if the job runner stops first.
func (r *runner) sleepUntil(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}
