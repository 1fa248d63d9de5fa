package waymark_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

const jobsDef = `
id: external
activities:
  - id: charge
    type: task
    handler: charge
    input: {amount: '${ input.amount }'}
    output: receipt
    retry: {maxAttempts: 2, initialInterval: 10ms, maxInterval: 10ms}
    onError: {declined: declined}
    next: done
  - {id: declined, type: set, vars: {declined: true}}
  - {id: done, type: end}
`

func TestExternalWorkerJobs(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{tweak: func(cfg *waymark.Config) { cfg.LeaseDuration = 2 * time.Second }})
		b.deploy(jobsDef)
		poll := func(worker string, wait time.Duration) []*waymark.Job {
			t.Helper()
			jobs, err := b.e.PollJobs(b.ctx, &waymark.PollJobsParams{Handlers: []string{"charge"}, Worker: worker, Wait: wait})
			require.NoError(t, err)
			return jobs
		}
		require.Empty(t, poll("w1", 0), "nothing queued")

		// A long poll is answered as soon as a job is queued.
		got := make(chan []*waymark.Job, 1)
		go func() { got <- poll("w1", 20*time.Second) }()
		inst := b.start("external", `{"amount":12}`)
		var jobs []*waymark.Job
		select {
		case jobs = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the long poll was not answered")
		}
		require.Len(t, jobs, 1)
		job := jobs[0]
		require.Equal(t, "charge", job.Handler)
		require.Equal(t, inst.ID, job.InstanceID)
		require.Equal(t, 1, job.Attempt)
		require.Equal(t, job.ExecutionID, job.IdempotencyKey)
		require.JSONEq(t, `{"amount":12}`, string(job.Input))
		require.Empty(t, poll("w2", 0), "leased to w1")

		until, err := b.e.HeartbeatJob(b.ctx, job.ID, "w1", 0)
		require.NoError(t, err)
		require.True(t, until.After(job.LeaseExpiresAt) || until.Equal(job.LeaseExpiresAt))
		_, err = b.e.HeartbeatJob(b.ctx, job.ID, "w2", 0)
		require.ErrorIs(t, err, waymark.ErrConflict)
		require.ErrorIs(t, b.e.CompleteJob(b.ctx, job.ID, "w2", json.RawMessage(`{}`)), waymark.ErrConflict)

		// A transient failure is retried: the job comes back, attempt 2.
		require.NoError(t, b.e.FailJob(b.ctx, job.ID, "w1", &waymark.JobFailure{Message: "gateway timeout"}))
		jobs = poll("w2", 10*time.Second)
		require.Len(t, jobs, 1)
		require.Equal(t, 2, jobs[0].Attempt)
		require.Equal(t, job.IdempotencyKey, jobs[0].IdempotencyKey)
		require.NoError(t, b.e.CompleteJob(b.ctx, jobs[0].ID, "w2", json.RawMessage(`{"id":"rcpt-1"}`)))
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Equal(t, map[string]any{"id": "rcpt-1"}, vars(t, done)["receipt"])
		require.ErrorIs(t, b.e.CompleteJob(b.ctx, jobs[0].ID, "w2", nil), waymark.ErrNotFound, "completed already")

		// A business error follows onError; a permanent one fails.
		biz := b.start("external", `{"amount":1}`)
		jobs = poll("w1", 10*time.Second)
		require.NoError(t, b.e.FailJob(b.ctx, jobs[0].ID, "w1", &waymark.JobFailure{Business: "declined"}))
		require.Equal(t, true, vars(t, b.waitStatus(biz.ID, store.InstanceCompleted))["declined"])
		perm := b.start("external", `{"amount":1}`)
		jobs = poll("w1", 10*time.Second)
		require.NoError(t, b.e.FailJob(b.ctx, jobs[0].ID, "w1", &waymark.JobFailure{Message: "bad card", Permanent: true}))
		failed := b.waitStatus(perm.ID, store.InstanceFailed)
		require.Contains(t, string(failed.Error), "bad card")

		// An expired lease returns the job; the old worker's late
		// completion is refused and changes nothing.
		late := b.start("external", `{"amount":3}`)
		jobs = poll("slow", 10*time.Second)
		slow := jobs[0]
		jobs = poll("fast", 10*time.Second) // waits out slow's 2s lease
		require.Len(t, jobs, 1)
		require.Equal(t, slow.ID, jobs[0].ID)
		require.ErrorIs(t, b.e.CompleteJob(b.ctx, slow.ID, "slow", json.RawMessage(`{"id":"late"}`)), waymark.ErrConflict)
		require.NoError(t, b.e.CompleteJob(b.ctx, jobs[0].ID, "fast", json.RawMessage(`{"id":"fast"}`)))
		require.Equal(t, map[string]any{"id": "fast"}, vars(t, b.waitStatus(late.ID, store.InstanceCompleted))["receipt"])

		// A job given back is polled again at once, as the same attempt.
		rel := b.start("external", `{"amount":2}`)
		jobs = poll("w1", 10*time.Second)
		require.ErrorIs(t, b.e.ReleaseJob(b.ctx, jobs[0].ID, "w2"), waymark.ErrConflict)
		require.NoError(t, b.e.ReleaseJob(b.ctx, jobs[0].ID, "w1"))
		again := poll("w2", 0)
		require.Len(t, again, 1)
		require.Equal(t, jobs[0].ID, again[0].ID)
		require.Equal(t, 1, again[0].Attempt)
		require.NoError(t, b.e.CompleteJob(b.ctx, again[0].ID, "w2", nil))
		b.waitStatus(rel.ID, store.InstanceCompleted)

		// A cancelled activity's job is gone: the heartbeat says so.
		gone := b.start("external", `{"amount":4}`)
		jobs = poll("w1", 10*time.Second)
		require.NoError(t, b.e.Cancel(b.ctx, gone.ID, &waymark.CancelParams{Reason: "r"}))
		_, err = b.e.HeartbeatJob(b.ctx, jobs[0].ID, "w1", 0)
		require.ErrorIs(t, err, waymark.ErrNotFound)

		// Bad input changes nothing.
		for _, p := range []*waymark.PollJobsParams{
			nil, {Worker: "w"}, {Handlers: []string{"charge"}}, {Handlers: []string{""}, Worker: "w"},
			{Handlers: []string{"charge"}, Worker: "w", Max: 101},
			{Handlers: []string{"charge"}, Worker: "w", Wait: time.Hour},
		} {
			_, err := b.e.PollJobs(b.ctx, p)
			require.ErrorIs(t, err, waymark.ErrInvalid)
		}
		require.ErrorIs(t, b.e.FailJob(b.ctx, "x", "w", &waymark.JobFailure{}), waymark.ErrInvalid)
		require.ErrorIs(t, b.e.CompleteJob(b.ctx, "x", "w", json.RawMessage(`{`)), waymark.ErrInvalid)
		require.ErrorIs(t, b.e.CompleteJob(b.ctx, "", "w", nil), waymark.ErrInvalid)
		require.ErrorIs(t, b.e.CompleteJob(b.ctx, "nope", "w", nil), waymark.ErrNotFound)
	})
}

// A job runs without the engine started, and its result is logged with the
// worker as the actor.
func TestJobWithoutStartedEngine(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(jobsDef)
		inst := b.start("external", `{"amount":1}`)
		jobs, err := b.e.PollJobs(context.Background(), &waymark.PollJobsParams{Handlers: []string{"charge"}, Worker: "w", Max: 5})
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.NoError(t, b.e.CompleteJob(b.ctx, jobs[0].ID, "w", json.RawMessage(`"ok"`)))
		got, err := b.e.Instance(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		log, err := b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: inst.ID})
		require.NoError(t, err)
		require.Equal(t, "w", log.Items[len(log.Items)-1].Actor, "the worker is the actor of its result")
	})
}
