package server

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
)

// The /jobs routes serve external workers: processes that run task handlers
// outside the server. A worker polls for jobs of the handlers it has, runs
// each, heartbeats while it runs and reports the result. A job is leased
// to the worker that polled it: when the lease expires without a heartbeat
// the job goes back to the queue, and the old worker's report is refused
// (409).

// Limits of the /jobs requests.
const (
	// engineMaxPollWait is the longest wait Engine.PollJobs takes in one
	// call; longer polls (a MaxWait above it) call it again.
	engineMaxPollWait = waymark.MaxPollWait
	// maxLeaseSeconds bounds leaseSeconds: a worker that needs longer
	// heartbeats.
	maxLeaseSeconds = 3600
)

// PollRequest asks for jobs.
type PollRequest struct {
	Handlers     []string `json:"handlers" minItems:"1" maxItems:"100" doc:"the handlers the worker runs"`
	Worker       string   `json:"worker" minLength:"1" maxLength:"200" doc:"the worker's name; it holds the leases, so it must be unique among the workers running at once"`
	Max          int      `json:"max,omitempty" minimum:"0" maximum:"100" doc:"how many jobs to take at most, 1 by default"`
	WaitSeconds  float64  `json:"waitSeconds,omitempty" minimum:"0" doc:"how long to wait for a job when none is ready (a long poll), capped by the server's maxWait; 0 answers at once"`
	LeaseSeconds float64  `json:"leaseSeconds,omitempty" minimum:"0" maximum:"3600" doc:"how long the jobs are the worker's without a heartbeat, at least 1; the server's lease (30s by default) when left out"`
}

// Job is a job as the API hands it to a worker: the engine's job, with the
// activity's timeout and what is left of the lease, in seconds.
type Job struct {
	waymark.Job
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty" doc:"the activity's timeout: give up after it and fail the job with timedOut; absent when it has none"`
	LeaseSeconds   float64 `json:"leaseSeconds" doc:"how long the job stays the worker's from this answer without a heartbeat; by the server's clock, so time heartbeats by it rather than by leaseExpiresAt"`
}

// PollResult is the answer of a poll: the jobs leased to the worker, none
// when the wait ran out (or the server is stopping).
type PollResult struct {
	Items []*Job `json:"items"`
}

// CompleteJobRequest reports a job's output.
type CompleteJobRequest struct {
	Worker string          `json:"worker" minLength:"1" doc:"the worker the job is leased to"`
	Output json.RawMessage `json:"output,omitempty" doc:"the activity's output, any JSON"`
}

// FailJobRequest reports a failed attempt of a job.
type FailJobRequest struct {
	Worker    string `json:"worker" minLength:"1" doc:"the worker the job is leased to"`
	Message   string `json:"message,omitempty" doc:"what went wrong (required unless business is set)"`
	Permanent bool   `json:"permanent,omitempty" doc:"fail the activity at once instead of retrying it per its retry policy"`
	Business  string `json:"business,omitempty" doc:"a named business error, routed by the activity's onError (never retried)"`
	TimedOut  bool   `json:"timedOut,omitempty" doc:"the worker gave up after the activity's timeout (retried like a transient failure)"`
}

// ReleaseJobRequest gives a job back.
type ReleaseJobRequest struct {
	Worker string `json:"worker" minLength:"1" doc:"the worker the job is leased to"`
}

type releaseJobInput struct {
	ID   string `path:"id" doc:"the job id"`
	Body ReleaseJobRequest
}

// HeartbeatRequest extends a job's lease.
type HeartbeatRequest struct {
	Worker       string  `json:"worker" minLength:"1" doc:"the worker the job is leased to"`
	LeaseSeconds float64 `json:"leaseSeconds,omitempty" minimum:"0" maximum:"3600" doc:"how long to extend the lease by, at least 1; the server's lease when left out"`
}

// HeartbeatResult is the lease after a heartbeat.
type HeartbeatResult struct {
	LeaseExpiresAt time.Time `json:"leaseExpiresAt" doc:"when the job goes back to the queue unless the worker reports or heartbeats first"`
	LeaseSeconds   float64   `json:"leaseSeconds" doc:"how long that is from this answer, by the server's clock"`
}

type pollInput struct {
	Body PollRequest
}

type pollOutput struct {
	Body *PollResult
}

type completeJobInput struct {
	ID   string `path:"id" doc:"the job id"`
	Body CompleteJobRequest
}

type failJobInput struct {
	ID   string `path:"id" doc:"the job id"`
	Body FailJobRequest
}

type heartbeatInput struct {
	ID   string `path:"id" doc:"the job id"`
	Body HeartbeatRequest
}

type heartbeatOutput struct {
	Body *HeartbeatResult
}

// jobGone is how every job operation describes its 404 and 409.
const jobGone = "404: the job is gone (completed, or its activity cancelled); 409: the lease expired and another worker " +
	"holds the job now. Nothing changes in either case; the worker should stop the job and drop its result."

func (s *Server) registerJobs() {
	register(s, huma.Operation{
		OperationID: "poll-jobs", Method: http.MethodPost, Path: Prefix + "/jobs/poll",
		Tags: []string{"jobs"}, Summary: "Lease ready jobs of the worker's handlers, waiting up to waitSeconds for one",
		Description: "A long poll: it answers as soon as a job is ready, when waitSeconds pass (with no items), " +
			"or at once when the server shuts down. A job is the worker's until its lease expires; " +
			"then it goes back to the queue and may be handed to another worker.",
		Errors: []int{http.StatusBadRequest, http.StatusForbidden},
	}, permWork, func(ctx context.Context, _ *Principal, in *pollInput) (*pollOutput, error) {
		lease, err := leaseFor(in.Body.LeaseSeconds)
		if err != nil {
			return nil, err
		}
		jobs, err := s.pollJobs(ctx, &waymark.PollJobsParams{
			Handlers: in.Body.Handlers, Worker: in.Body.Worker, Max: in.Body.Max, LeaseFor: lease,
		}, secondsUpTo(in.Body.WaitSeconds, s.cfg.MaxWait))
		if err != nil {
			return nil, err
		}
		now := s.engine.Clock().Now()
		out := &PollResult{Items: make([]*Job, len(jobs))}
		for i, j := range jobs {
			out.Items[i] = &Job{Job: *j, TimeoutSeconds: j.Timeout.Seconds(), LeaseSeconds: secondsUntil(j.LeaseExpiresAt, now)}
		}
		return &pollOutput{Body: out}, nil
	})

	jobErrors := []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict}
	register(s, huma.Operation{
		OperationID: "complete-job", Method: http.MethodPost, Path: Prefix + "/jobs/{id}/complete",
		Tags: []string{"jobs"}, Summary: "Report a job's output and advance its instance",
		Description: jobGone, Errors: jobErrors,
	}, permWork, func(ctx context.Context, _ *Principal, in *completeJobInput) (*struct{}, error) {
		return &struct{}{}, s.engine.CompleteJob(ctx, in.ID, in.Body.Worker, in.Body.Output)
	})

	register(s, huma.Operation{
		OperationID: "fail-job", Method: http.MethodPost, Path: Prefix + "/jobs/{id}/fail",
		Tags: []string{"jobs"}, Summary: "Report a failed attempt of a job",
		Description: "Retried per the activity's retry policy by default; permanent fails the activity at once; " +
			"business names an error that the activity's onError routes. " + jobGone,
		Errors: jobErrors,
	}, permWork, func(ctx context.Context, _ *Principal, in *failJobInput) (*struct{}, error) {
		f := &in.Body
		if f.Permanent && f.Business != "" {
			return nil, newError(http.StatusBadRequest, CodeInvalid,
				"permanent and business exclude each other: a business error is never retried anyway",
				ErrorDetail{Path: "body.permanent", Message: "leave it out with business"})
		}
		return &struct{}{}, s.engine.FailJob(ctx, in.ID, f.Worker, &waymark.JobFailure{
			Message: f.Message, Permanent: f.Permanent, Business: f.Business, TimedOut: f.TimedOut,
		})
	})

	register(s, huma.Operation{
		OperationID: "release-job", Method: http.MethodPost, Path: Prefix + "/jobs/{id}/release",
		Tags: []string{"jobs"}, Summary: "Give a job back unattempted, to be polled again at once",
		Description: "For a worker that stops before it could run or finish the job. " + jobGone,
		Errors:      jobErrors,
	}, permWork, func(ctx context.Context, _ *Principal, in *releaseJobInput) (*struct{}, error) {
		return &struct{}{}, s.engine.ReleaseJob(ctx, in.ID, in.Body.Worker)
	})

	register(s, huma.Operation{
		OperationID: "heartbeat-job", Method: http.MethodPost, Path: Prefix + "/jobs/{id}/heartbeat",
		Tags: []string{"jobs"}, Summary: "Extend the worker's lease on a job",
		Description: "Heartbeat well within the lease (every third of it) while the job runs. " + jobGone,
		Errors:      jobErrors,
	}, permWork, func(ctx context.Context, _ *Principal, in *heartbeatInput) (*heartbeatOutput, error) {
		lease, err := leaseFor(in.Body.LeaseSeconds)
		if err != nil {
			return nil, err
		}
		until, err := s.engine.HeartbeatJob(ctx, in.ID, in.Body.Worker, lease)
		if err != nil {
			return nil, err
		}
		return &heartbeatOutput{Body: &HeartbeatResult{
			LeaseExpiresAt: until, LeaseSeconds: secondsUntil(until, s.engine.Clock().Now()),
		}}, nil
	})
}

// pollJobs polls the engine for up to wait, in calls of at most the
// engine's own limit. It answers with no jobs, and no error, when the
// server starts shutting down.
func (s *Server) pollJobs(ctx context.Context, p *waymark.PollJobsParams, wait time.Duration) ([]*waymark.Job, error) {
	if wait > 0 {
		s.holdOpen(ctx, wait)
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-done:
		}
	}()
	deadline := time.Now().Add(wait)
	for first := true; ; first = false {
		p.Wait = min(max(time.Until(deadline), 0), engineMaxPollWait)
		if first && p.Wait > 0 && s.testAwaiting != nil {
			s.testAwaiting <- struct{}{}
		}
		jobs, err := s.engine.PollJobs(waitCtx, p)
		switch {
		case len(jobs) > 0:
			if err != nil {
				// The jobs are leased to the worker already: hand them
				// over rather than leave them to wait out their lease.
				s.log.WarnContext(ctx, "server: poll jobs: some jobs could not be read", logErrorAttr(err))
			}
			return jobs, nil
		case ctx.Err() == nil && waitCtx.Err() != nil:
			return nil, nil // shutting down
		case err != nil:
			return nil, err
		case !time.Now().Before(deadline):
			return nil, nil
		}
	}
}

// leaseFor reads a leaseSeconds: 0 for the server's lease, else at least
// one second.
func leaseFor(secs float64) (time.Duration, error) {
	if secs != 0 && secs < 1 {
		return 0, newError(http.StatusBadRequest, CodeInvalid,
			"leaseSeconds "+strconv.FormatFloat(secs, 'g', -1, 64)+": must be at least 1, or left out for the server's lease",
			ErrorDetail{Path: "body.leaseSeconds", Message: "must be at least 1"})
	}
	return secondsUpTo(secs, maxLeaseSeconds*time.Second), nil
}

// secondsUpTo turns seconds into a duration of at most limit (checked
// before converting, so that no number overflows).
func secondsUpTo(secs float64, limit time.Duration) time.Duration {
	if secs >= limit.Seconds() {
		return limit
	}
	return time.Duration(secs * float64(time.Second))
}

// secondsUntil is how many seconds from now until t, to the millisecond,
// never negative.
func secondsUntil(t, now time.Time) float64 {
	return max(math.Round(t.Sub(now).Seconds()*1000)/1000, 0)
}
