package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/waymarkdev/waymark"
)

// Job is a job as the server hands it to an external worker: the engine's
// Job, its Timeout included, and the lease it came with.
type Job struct {
	waymark.Job
	// Lease is how long the job is the worker's from the server's answer
	// without a heartbeat. It is measured by the server's clock: time
	// heartbeats by it, on this machine's clock, rather than by
	// LeaseExpiresAt, which is on the server's.
	Lease time.Duration
}

// jobWire is a job as the server sends it.
type jobWire struct {
	waymark.Job
	TimeoutSeconds float64 `json:"timeoutSeconds"`
	LeaseSeconds   float64 `json:"leaseSeconds"`
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// PollJobs leases up to p.Max ready jobs of p.Handlers to the worker
// p.Worker, waiting up to p.Wait for one when none is ready (the server
// caps the wait at its maxWait). No jobs and no error means the wait ran
// out or the server is shutting down. Worker runs the jobs for you.
func (c *Client) PollJobs(ctx context.Context, p *waymark.PollJobsParams) ([]*Job, error) {
	if p == nil {
		return nil, errNilParams
	}
	body := map[string]any{"handlers": p.Handlers, "worker": p.Worker}
	if p.Max > 0 {
		body["max"] = p.Max
	}
	if p.Wait > 0 {
		body["waitSeconds"] = p.Wait.Seconds()
	}
	if p.LeaseFor > 0 {
		body["leaseSeconds"] = p.LeaseFor.Seconds()
	}
	var out struct {
		Items []*jobWire `json:"items"`
	}
	if _, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("jobs", "poll"), body: body}, &out); err != nil {
		return nil, err
	}
	jobs := make([]*Job, len(out.Items))
	for i, w := range out.Items {
		jobs[i] = &Job{Job: w.Job, Lease: seconds(w.LeaseSeconds)}
		jobs[i].Timeout = seconds(w.TimeoutSeconds)
	}
	return jobs, nil
}

// CompleteJob reports a job's output (any JSON, or none). A worker whose
// lease was taken over gets waymark.ErrConflict and changes nothing; a job
// that is gone (completed, or its activity cancelled) gets
// waymark.ErrNotFound.
func (c *Client) CompleteJob(ctx context.Context, jobID, worker string, output json.RawMessage) error {
	body := map[string]any{"worker": worker}
	if len(output) > 0 {
		body["output"] = output
	}
	_, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("jobs", jobID, "complete"), body: body}, nil)
	return err
}

// ReleaseJob gives a job back unattempted, to be polled again at once.
// Errors as CompleteJob.
func (c *Client) ReleaseJob(ctx context.Context, jobID, worker string) error {
	_, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("jobs", jobID, "release"), body: map[string]any{"worker": worker}}, nil)
	return err
}

// FailJob reports a failed attempt of a job: retried per the activity's
// retry policy, failed at once (Permanent), or routed by onError
// (Business). Errors as CompleteJob.
func (c *Client) FailJob(ctx context.Context, jobID, worker string, f *waymark.JobFailure) error {
	if f == nil {
		return errNilParams
	}
	body := map[string]any{"worker": worker, "message": f.Message}
	if f.Permanent {
		body["permanent"] = true
	}
	if f.Business != "" {
		body["business"] = f.Business
	}
	if f.TimedOut {
		body["timedOut"] = true
	}
	_, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("jobs", jobID, "fail"), body: body}, nil)
	return err
}

// HeartbeatJob extends the worker's lease on a job by leaseFor (0: the
// server's lease) and returns when it now expires, by the server's clock.
// waymark.ErrConflict: the lease was taken over; waymark.ErrNotFound: the
// job is gone. In both cases the worker should stop the job.
func (c *Client) HeartbeatJob(ctx context.Context, jobID, worker string, leaseFor time.Duration) (time.Time, error) {
	body := map[string]any{"worker": worker}
	if leaseFor > 0 {
		body["leaseSeconds"] = leaseFor.Seconds()
	}
	var out struct {
		LeaseExpiresAt time.Time `json:"leaseExpiresAt"`
	}
	if _, err := c.do(ctx, &call{method: http.MethodPost, path: pathOf("jobs", jobID, "heartbeat"), body: body}, &out); err != nil {
		return time.Time{}, err
	}
	return out.LeaseExpiresAt, nil
}
