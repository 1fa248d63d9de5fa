package waymark

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// External workers run task handlers outside the engine's process: they
// poll for jobs of the handlers they have, run them and report the result,
// through the server's /jobs routes (or these methods, in-process). A job is
// a task's work item leased to the worker: the same at-least-once contract
// as in-process handlers, the same idempotency key on every attempt.

// newWork is the watchers key signalled when work is enqueued here or, on
// PostgreSQL, by another process.
const newWork = "work"

// workerPrefix marks a lease owner as an external worker, so a worker's
// name can never collide with an engine's node id.
const workerPrefix = "worker:"

// Limits of PollJobs.
const (
	// MaxPollJobs is the most jobs one PollJobs hands out.
	MaxPollJobs = 100
	// MaxPollWait is the longest wait of one PollJobs.
	MaxPollWait = time.Minute
)

// Job is one attempt of a task activity handed to an external worker.
type Job struct {
	// ID names the job in CompleteJob, FailJob and HeartbeatJob.
	ID         string `json:"id"`
	Handler    string `json:"handler"`
	InstanceID string `json:"instanceId"`
	ActivityID string `json:"activityId"`
	// ExecutionID is the activity execution the job belongs to.
	ExecutionID string `json:"executionId"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// IdempotencyKey is the same on every attempt of this execution.
	IdempotencyKey string          `json:"idempotencyKey"`
	Input          json.RawMessage `json:"input,omitempty"`
	BusinessKey    string          `json:"businessKey,omitempty"`
	// LeaseExpiresAt is when the job goes back to the queue unless the
	// worker reports or heartbeats first.
	LeaseExpiresAt time.Time `json:"leaseExpiresAt"`
	// TraceParent is the W3C traceparent of the instance's trace, the
	// execution as the parent span: a worker that traces continues it.
	TraceParent string `json:"traceParent"`
	// Timeout is the activity's timeout, 0 when it has none: the worker
	// should give up after it and report a failure (TimedOut).
	Timeout time.Duration `json:"-"`
}

// PollJobsParams ask for jobs.
type PollJobsParams struct {
	// Handlers names the handlers the worker runs (at least one).
	Handlers []string
	// Worker names the worker process; it holds the leases, so it must be
	// unique among the workers running at once.
	Worker string
	// Max is how many jobs to take at most. Defaults to 1, at most
	// MaxPollJobs.
	Max int
	// Wait is how long to wait for a job when none is ready (a long
	// poll). Defaults to 0: answer at once. At most MaxPollWait.
	Wait time.Duration
	// LeaseFor is how long the jobs are the worker's without a heartbeat.
	// Defaults to Config.LeaseDuration.
	LeaseFor time.Duration
}

func (p *PollJobsParams) validate() error {
	switch {
	case p == nil || len(p.Handlers) == 0:
		return invalid("handlers", "name at least one handler")
	case p.Worker == "":
		return invalid("worker", "is required")
	case p.Max < 0 || p.Max > MaxPollJobs:
		return invalid("max", "%d: must be from 1 to %d", p.Max, MaxPollJobs)
	case p.Wait < 0 || p.Wait > MaxPollWait:
		return invalid("waitSeconds", "%s: must be from 0 to %s", p.Wait, MaxPollWait)
	case p.LeaseFor != 0 && p.LeaseFor < time.Second:
		return invalid("leaseFor", "%s: must be at least 1s", p.LeaseFor)
	}
	for _, h := range p.Handlers {
		if h == "" {
			return invalid("handlers", "a handler name is empty")
		}
	}
	return nil
}

// PollJobs leases up to Max ready jobs of the given handlers to the worker,
// waiting up to Wait for one when none is ready. A job whose lease expires
// goes back to the queue and may be handed to another worker.
func (e *Engine) PollJobs(ctx context.Context, p *PollJobsParams) ([]*Job, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	limit, lease := max(p.Max, 1), cmp.Or(p.LeaseFor, e.cfg.LeaseDuration)
	deadline := time.Now().Add(p.Wait)
	for {
		woken, stop := e.watchers.add(newWork)
		jobs, err := e.claimJobs(ctx, p, limit, lease)
		if err != nil || len(jobs) > 0 || !time.Now().Before(deadline) {
			stop()
			return jobs, err
		}
		if err := sleepUntil(ctx, woken, stop, min(time.Until(deadline), e.cfg.PollInterval)); err != nil {
			return nil, err
		}
	}
}

func (e *Engine) claimJobs(ctx context.Context, p *PollJobsParams, limit int, lease time.Duration) ([]*Job, error) {
	owner := workerPrefix + p.Worker
	items, err := e.store.WorkClaim(ctx, &store.WorkClaimParams{
		Owner: owner, Now: e.clock.Now().UTC(), LeaseFor: lease, Limit: limit, Kind: workTask, Handlers: p.Handlers,
	})
	if err != nil {
		return nil, err
	}
	jobs := make([]*Job, 0, len(items))
	for _, item := range items {
		job, err := e.jobFor(ctx, item, owner)
		if err != nil {
			// Give it back for another poll rather than sit on it.
			_ = e.store.WorkRelease(ctx, &store.WorkReleaseParams{ID: item.ID, Owner: owner, RunAt: e.clock.Now().UTC()})
			return jobs, err
		}
		if job != nil {
			jobs = append(jobs, job)
		}
	}
	return jobs, nil
}

// jobFor describes a claimed item, or drops it (nil) when nothing is left
// to run: the instance ended, is suspended, or the activity was cancelled.
func (e *Engine) jobFor(ctx context.Context, item *store.WorkItem, owner string) (*Job, error) {
	e.states.forgetOlder(item.InstanceID, item.InstanceVersion)
	w, err := e.loadClaimed(ctx, item)
	if err != nil {
		return nil, err
	}
	if w == nil {
		err := e.store.WorkComplete(ctx, item.ID, owner)
		if errors.Is(err, store.ErrConflict) || isNotFound(err) {
			err = nil
		}
		return nil, err
	}
	inst, x := w.inst, w.exec
	job := &Job{
		ID: item.ID, Handler: item.Handler, InstanceID: inst.ID, ActivityID: x.ActivityID, ExecutionID: x.ID,
		Attempt: item.Attempts, IdempotencyKey: x.ID, Input: x.Input, BusinessKey: inst.BusinessKey,
		TraceParent: telemetry.ChildTraceparent(instanceTrace(inst), x.ID),
	}
	if item.LeaseExpiresAt != nil {
		job.LeaseExpiresAt = *item.LeaseExpiresAt
	}
	job.Timeout = w.activity.Timeout
	return job, nil
}

// workerJob returns the item of a job that worker holds: ErrNotFound when
// it is gone (completed, or its activity cancelled), ErrConflict when
// another worker or engine holds it now.
func (e *Engine) workerJob(ctx context.Context, jobID, worker string) (*store.WorkItem, string, error) {
	if jobID == "" {
		return nil, "", invalid("job", "is required")
	}
	if worker == "" {
		return nil, "", invalid("worker", "is required")
	}
	owner := workerPrefix + worker
	item, err := e.store.WorkGet(ctx, jobID)
	if err != nil {
		if isNotFound(err) {
			return nil, "", fmt.Errorf("job %s is gone (completed, or its activity cancelled): %w", jobID, store.ErrNotFound)
		}
		return nil, "", err
	}
	if item.LeaseOwner != owner || item.Kind != workTask {
		return nil, "", fmt.Errorf("job %s is not leased to worker %q (its lease expired and it was taken over): %w",
			jobID, worker, store.ErrConflict)
	}
	return item, owner, nil
}

// CompleteJob records a job's output (any JSON) and advances the instance.
// A worker whose lease was taken over gets ErrConflict and changes nothing;
// a job already completed or cancelled gets ErrNotFound.
func (e *Engine) CompleteJob(ctx context.Context, jobID, worker string, output json.RawMessage) error {
	if len(output) > 0 && !json.Valid(output) {
		return invalid("output", "is not valid JSON")
	}
	return e.reportJob(ctx, jobID, worker, &taskResult{output: output})
}

// JobFailure is how a worker reports a failed job.
type JobFailure struct {
	// Message says what went wrong.
	Message string
	// Permanent fails the activity at once; otherwise the activity's
	// retry policy applies.
	Permanent bool
	// Business, when set, is a named business error that follows the
	// activity's onError transition (never retried).
	Business string
	// TimedOut says the worker gave up after the activity's timeout.
	TimedOut bool
}

// FailJob records a failed attempt of a job: retried per the activity's
// policy, failed at once (Permanent), or routed by onError (Business). A
// job that comes back after its lease expired counts as an attempt, as an
// in-process handler's does after a crash.
func (e *Engine) FailJob(ctx context.Context, jobID, worker string, f *JobFailure) error {
	if f == nil || f.Message == "" && f.Business == "" {
		return invalid("message", "is required: say what went wrong")
	}
	var err error = errors.New(f.Message)
	switch {
	case f.Business != "":
		err = Business(f.Business, f.Message)
	case f.Permanent:
		err = Permanent(err)
	}
	return e.reportJob(ctx, jobID, worker, &taskResult{err: err, timedOut: f.TimedOut})
}

func (e *Engine) reportJob(ctx context.Context, jobID, worker string, r *taskResult) error {
	item, owner, err := e.workerJob(ctx, jobID, worker)
	if err != nil {
		return err
	}
	inst, err := e.store.InstanceGet(ctx, item.InstanceID)
	if err != nil {
		return notFoundInstance(item.InstanceID, err)
	}
	cd, err := e.definition(ctx, e.store, inst.DefinitionID, inst.DefinitionVersion)
	if err != nil {
		return err
	}
	x, err := e.store.ExecutionGet(ctx, item.ExecutionID)
	if err != nil {
		return err
	}
	r.item, r.activity, r.owner = item, cd.def.Activity(x.ActivityID), owner
	if err := e.inTx(ctx, worker, func(t *txn) error { return e.applyResult(t, r) }); err != nil {
		return err
	}
	if r.lost {
		return fmt.Errorf("job %s: the activity no longer waits for it (cancelled, or the lease was taken over): %w",
			jobID, store.ErrConflict)
	}
	return nil
}

// HeartbeatJob extends the worker's lease on a job to leaseFor from now
// (Config.LeaseDuration when 0) and returns the new expiry.
// ErrConflict: the lease was taken over; ErrNotFound: the job is gone (its
// activity was cancelled). In both cases the worker should stop the job.
func (e *Engine) HeartbeatJob(ctx context.Context, jobID, worker string, leaseFor time.Duration) (time.Time, error) {
	if leaseFor != 0 && leaseFor < time.Second {
		return time.Time{}, invalid("leaseFor", "%s: must be at least 1s", leaseFor)
	}
	item, owner, err := e.workerJob(ctx, jobID, worker)
	if err != nil {
		return time.Time{}, err
	}
	until := e.clock.Now().UTC().Add(cmp.Or(leaseFor, e.cfg.LeaseDuration))
	w, err := e.store.WorkExtend(ctx, &store.WorkExtendParams{ID: item.ID, Owner: owner, Until: until})
	if err != nil {
		return time.Time{}, fmt.Errorf("job %s: %w", jobID, err)
	}
	return *w.LeaseExpiresAt, nil
}

// ReleaseJob gives a job back unattempted, to be polled again at once: for
// a worker that stops before it could run the job. ErrConflict: the lease
// was taken over; ErrNotFound: the job is gone.
func (e *Engine) ReleaseJob(ctx context.Context, jobID, worker string) error {
	item, owner, err := e.workerJob(ctx, jobID, worker)
	if err != nil {
		return err
	}
	if err := e.store.WorkRelease(ctx, &store.WorkReleaseParams{ID: item.ID, Owner: owner, RunAt: e.clock.Now().UTC()}); err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	e.wakeWork()
	e.announcer.announce(ctx, kindWork)
	return nil
}
