package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

// chargeYAML has a task that no in-process handler runs: only external
// workers do.
const chargeYAML = `
id: external
activities:
  - id: charge
    type: task
    handler: charge
    input: {amount: '${ input.amount }'}
    output: receipt
    timeout: 90s
    retry: {maxAttempts: 2, initialInterval: 10ms, maxInterval: 10ms}
    onError: {declined: declined}
    next: done
  - {id: declined, type: set, vars: {declined: true}}
  - {id: done, type: end}
`

const workerKey = "test-worker-key"

// withWorkerKey adds an API key with the worker role.
func withWorkerKey(cfg *server.Config) {
	cfg.APIKeys = append(cfg.APIKeys, server.APIKey{User: "wes", Hash: server.HashAPIKey(workerKey), Roles: []string{server.RoleWorker}})
}

// jobJSON is a job as a worker reads it.
type jobJSON struct {
	ID             string          `json:"id"`
	Handler        string          `json:"handler"`
	InstanceID     string          `json:"instanceId"`
	ActivityID     string          `json:"activityId"`
	ExecutionID    string          `json:"executionId"`
	Attempt        int             `json:"attempt"`
	IdempotencyKey string          `json:"idempotencyKey"`
	Input          json.RawMessage `json:"input"`
	LeaseExpiresAt time.Time       `json:"leaseExpiresAt"`
	LeaseSeconds   float64         `json:"leaseSeconds"`
	TimeoutSeconds float64         `json:"timeoutSeconds"`
	TraceParent    string          `json:"traceParent"`
}

func (b *testBundle) pollJobs(token string, body map[string]any) *response {
	b.t.Helper()
	return b.do(req{method: http.MethodPost, path: server.Prefix + "/jobs/poll", token: token, body: body})
}

// poll polls as worker and returns the jobs.
func (b *testBundle) poll(worker string, waitSeconds float64, extra map[string]any) []jobJSON {
	b.t.Helper()
	body := map[string]any{"handlers": []string{"charge"}, "worker": worker, "waitSeconds": waitSeconds}
	for k, v := range extra {
		body[k] = v
	}
	resp := b.pollJobs(workerKey, body)
	require.Equal(b.t, http.StatusOK, resp.status, "body: %s", resp.body)
	var out struct {
		Items []jobJSON `json:"items"`
	}
	resp.decode(b.t, &out)
	require.NotNil(b.t, out.Items, "items is a list, also when empty: %s", resp.body)
	return out.Items
}

// pollOne waits for the one job the next instance makes.
func (b *testBundle) pollOne(worker string, extra map[string]any) jobJSON {
	b.t.Helper()
	jobs := b.poll(worker, 10, extra)
	require.Len(b.t, jobs, 1)
	return jobs[0]
}

func (b *testBundle) job(verb, id string, body any) *response {
	b.t.Helper()
	return b.do(req{method: http.MethodPost, path: server.Prefix + "/jobs/" + id + "/" + verb, token: workerKey, body: body})
}

func TestJobs(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s, tweak: withWorkerKey})
		b.deploy(chargeYAML)
		require.Empty(t, b.poll("w1", 0, nil), "nothing queued")

		// A long poll is answered as soon as an instance makes a job.
		got := make(chan []jobJSON, 1)
		go func() { got <- b.poll("w1", 20, nil) }()
		inst, _ := b.start("external", map[string]any{"amount": 12}, "", nil)
		var jobs []jobJSON
		select {
		case jobs = <-got:
		case <-time.After(15 * time.Second):
			t.Fatal("the long poll was not answered")
		}
		require.Len(t, jobs, 1)
		job := jobs[0]
		require.Equal(t, "charge", job.Handler)
		require.Equal(t, inst.ID, job.InstanceID)
		require.Equal(t, "charge", job.ActivityID)
		require.Equal(t, 1, job.Attempt)
		require.Equal(t, job.ExecutionID, job.IdempotencyKey)
		require.JSONEq(t, `{"amount":12}`, string(job.Input))
		require.Equal(t, 90.0, job.TimeoutSeconds)
		require.InDelta(t, 30, job.LeaseSeconds, 2, "the engine's default lease")
		require.False(t, job.LeaseExpiresAt.IsZero())
		require.Empty(t, b.poll("w2", 0, nil), "leased to w1")

		// A heartbeat extends the lease.
		resp := b.job("heartbeat", job.ID, map[string]any{"worker": "w1", "leaseSeconds": 120})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var hb server.HeartbeatResult
		resp.decode(t, &hb)
		require.True(t, hb.LeaseExpiresAt.After(job.LeaseExpiresAt), "%s after %s", hb.LeaseExpiresAt, job.LeaseExpiresAt)
		require.InDelta(t, 120, hb.LeaseSeconds, 2)

		// A retryable failure: the job comes back, attempt 2, same key.
		resp = b.job("fail", job.ID, map[string]any{"worker": "w1", "message": "gateway timeout"})
		require.Equal(t, http.StatusNoContent, resp.status, "body: %s", resp.body)
		again := b.pollOne("w2", nil)
		require.Equal(t, 2, again.Attempt)
		require.Equal(t, job.IdempotencyKey, again.IdempotencyKey)

		// The completion advances the instance; a second one finds no job.
		resp = b.job("complete", again.ID, map[string]any{"worker": "w2", "output": map[string]any{"id": "rcpt-1"}})
		require.Equal(t, http.StatusNoContent, resp.status, "body: %s", resp.body)
		done, _ := b.instance(inst.ID, "?wait=10s")
		require.Equal(t, store.InstanceCompleted, done.Status)
		require.JSONEq(t, `{"receipt":{"id":"rcpt-1"}}`, string(done.Variables))
		b.job("complete", again.ID, map[string]any{"worker": "w2"}).requireError(t, http.StatusNotFound, server.CodeNotFound)

		// A business error follows onError; a permanent one fails the
		// instance.
		biz, _ := b.start("external", map[string]any{"amount": 1}, "", nil)
		job = b.pollOne("w1", nil)
		resp = b.job("fail", job.ID, map[string]any{"worker": "w1", "message": "card declined", "business": "declined"})
		require.Equal(t, http.StatusNoContent, resp.status, "body: %s", resp.body)
		done, _ = b.instance(biz.ID, "?wait=10s")
		require.Equal(t, store.InstanceCompleted, done.Status)
		require.JSONEq(t, `{"declined":true}`, string(done.Variables))

		perm, _ := b.start("external", map[string]any{"amount": 1}, "", nil)
		job = b.pollOne("w1", nil)
		resp = b.job("fail", job.ID, map[string]any{"worker": "w1", "message": "bad card", "permanent": true})
		require.Equal(t, http.StatusNoContent, resp.status, "body: %s", resp.body)
		done, _ = b.instance(perm.ID, "?wait=10s")
		require.Equal(t, store.InstanceFailed, done.Status)
		require.NotNil(t, done.Error)
		require.Contains(t, done.Error.Message, "bad card")
		require.Equal(t, waymark.CodePermanent, done.Error.Code)
	})
}

// An expired lease hands the job to another worker; the first worker's
// late heartbeat and completion are refused with 409 and change nothing.
func TestJobLeaseExpiry(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s, tweak: withWorkerKey})
		b.deploy(chargeYAML)
		inst, _ := b.start("external", map[string]any{"amount": 3}, "", nil)
		slow := b.pollOne("slow", map[string]any{"leaseSeconds": 1})
		require.InDelta(t, 1, slow.LeaseSeconds, 0.5)
		fast := b.pollOne("fast", nil) // waits out slow's lease
		require.Equal(t, slow.ID, fast.ID)
		require.Equal(t, 2, fast.Attempt, "a taken-over job counts as another attempt")

		b.job("heartbeat", slow.ID, map[string]any{"worker": "slow"}).requireError(t, http.StatusConflict, server.CodeConflict)
		e := b.job("complete", slow.ID, map[string]any{"worker": "slow", "output": map[string]any{"id": "late"}}).
			requireError(t, http.StatusConflict, server.CodeConflict)
		require.Contains(t, e.Error.Message, "taken over")
		b.job("fail", slow.ID, map[string]any{"worker": "slow", "message": "x"}).requireError(t, http.StatusConflict, server.CodeConflict)
		got, _ := b.instance(inst.ID, "")
		require.Equal(t, store.InstanceRunning, got.Status, "the stale completion changed nothing")

		resp := b.job("complete", fast.ID, map[string]any{"worker": "fast", "output": map[string]any{"id": "fast"}})
		require.Equal(t, http.StatusNoContent, resp.status, "body: %s", resp.body)
		done, _ := b.instance(inst.ID, "?wait=10s")
		require.Equal(t, store.InstanceCompleted, done.Status)
		require.JSONEq(t, `{"receipt":{"id":"fast"}}`, string(done.Variables))
	})
}

// A job whose activity was cancelled is gone: heartbeat and completion get
// 404, so the worker stops.
func TestJobOfCancelledActivity(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s, tweak: withWorkerKey})
		b.deploy(chargeYAML)
		inst, _ := b.start("external", map[string]any{"amount": 4}, "", nil)
		job := b.pollOne("w1", nil)
		resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/instances/" + inst.ID + "/cancel", token: operatorKey,
			body: map[string]any{"reason": "customer left"}})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		e := b.job("heartbeat", job.ID, map[string]any{"worker": "w1"}).requireError(t, http.StatusNotFound, server.CodeNotFound)
		require.Contains(t, e.Error.Message, "gone")
		b.job("complete", job.ID, map[string]any{"worker": "w1"}).requireError(t, http.StatusNotFound, server.CodeNotFound)
		b.job("fail", job.ID, map[string]any{"worker": "w1", "message": "x"}).requireError(t, http.StatusNotFound, server.CodeNotFound)
		b.job("release", job.ID, map[string]any{"worker": "w1"}).requireError(t, http.StatusNotFound, server.CodeNotFound)
		got, _ := b.instance(inst.ID, "")
		require.Equal(t, store.InstanceCancelled, got.Status)
	})
}

// A released job is polled again at once, as the same attempt; only its
// worker may release it.
func TestJobRelease(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s, tweak: withWorkerKey})
		b.deploy(chargeYAML)
		b.start("external", map[string]any{"amount": 5}, "", nil)
		job := b.pollOne("w1", nil)
		b.job("release", job.ID, map[string]any{"worker": "w2"}).requireError(t, http.StatusConflict, server.CodeConflict)
		resp := b.job("release", job.ID, map[string]any{"worker": "w1"})
		require.Equal(t, http.StatusNoContent, resp.status, "body: %s", resp.body)
		again := b.pollOne("w2", nil)
		require.Equal(t, job.ID, again.ID)
		require.Equal(t, 1, again.Attempt, "a released job was not attempted")
	})
}

// Only workers and admins use the /jobs routes; workers use nothing else
// of the server's own.
func TestJobsAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: withWorkerKey})
	b.deploy(chargeYAML)
	body := map[string]any{"handlers": []string{"charge"}, "worker": "w"}
	for _, token := range []string{viewerKey, operatorKey, financeKey} {
		e := b.pollJobs(token, body).requireError(t, http.StatusForbidden, server.CodeForbidden)
		require.Contains(t, e.Error.Message, "worker or admin")
	}
	b.pollJobs("", body).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	require.Equal(t, http.StatusOK, b.pollJobs(workerKey, body).status)
	require.Equal(t, http.StatusOK, b.pollJobs(adminKey, body).status)
	b.job("heartbeat", "some-job", map[string]any{"worker": "w"}).requireError(t, http.StatusNotFound, server.CodeNotFound)
	for verb, body := range map[string]any{
		"complete": map[string]any{"worker": "w"}, "fail": map[string]any{"worker": "w", "message": "m"},
		"heartbeat": map[string]any{"worker": "w"},
	} {
		b.do(req{method: http.MethodPost, path: server.Prefix + "/jobs/j/" + verb, token: viewerKey, body: body}).
			requireError(t, http.StatusForbidden, server.CodeForbidden)
	}
	b.do(req{method: http.MethodGet, path: server.Prefix + "/instances", token: workerKey}).
		requireError(t, http.StatusForbidden, server.CodeForbidden)
	b.do(req{method: http.MethodPost, path: server.Prefix + "/instances", token: workerKey,
		body: map[string]any{"definition": "external"}}).requireError(t, http.StatusForbidden, server.CodeForbidden)
}

// Bad requests are 400 naming the field, and change nothing.
func TestJobsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: withWorkerKey})
	b.deploy(chargeYAML)
	b.start("external", map[string]any{"amount": 5}, "", nil)
	for _, tt := range []struct {
		name  string
		path  string
		body  any
		field string
	}{
		{"NoHandlers", "poll", map[string]any{"worker": "w"}, "handlers"},
		{"EmptyHandlers", "poll", map[string]any{"handlers": []string{}, "worker": "w"}, "handlers"},
		{"EmptyHandlerName", "poll", map[string]any{"handlers": []string{""}, "worker": "w"}, "handlers"},
		{"NoWorker", "poll", map[string]any{"handlers": []string{"charge"}}, "worker"},
		{"MaxTooLarge", "poll", map[string]any{"handlers": []string{"charge"}, "worker": "w", "max": 101}, "max"},
		{"NegativeWait", "poll", map[string]any{"handlers": []string{"charge"}, "worker": "w", "waitSeconds": -1}, "waitSeconds"},
		{"ShortLease", "poll", map[string]any{"handlers": []string{"charge"}, "worker": "w", "leaseSeconds": 0.5}, "leaseSeconds"},
		{"LongLease", "poll", map[string]any{"handlers": []string{"charge"}, "worker": "w", "leaseSeconds": 1e9}, "leaseSeconds"},
		{"UnknownField", "poll", map[string]any{"handlers": []string{"charge"}, "worker": "w", "wait": 3}, "wait"},
		{"NotJSON", "poll", []byte(`{"handlers":`), "body"},
		{"CompleteNoWorker", "j/complete", map[string]any{"output": 1}, "worker"},
		{"FailNoMessage", "j/fail", map[string]any{"worker": "w"}, "message"},
		{"FailPermanentBusiness", "j/fail", map[string]any{"worker": "w", "message": "m", "permanent": true, "business": "b"}, "permanent"},
		{"HeartbeatShortLease", "j/heartbeat", map[string]any{"worker": "w", "leaseSeconds": 0.2}, "leaseSeconds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/jobs/" + tt.path, token: workerKey, body: tt.body})
			e := resp.requireError(t, http.StatusBadRequest, server.CodeInvalid)
			require.Contains(t, e.Error.Message, tt.field)
		})
	}
	require.Len(t, b.poll("w", 0, nil), 1, "the job is still there for a good poll")
}

// A poll waits no longer than the server's maxWait, whatever it asks.
func TestJobPollWaitCapped(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(cfg *server.Config) {
		withWorkerKey(cfg)
		cfg.MaxWait = 200 * time.Millisecond
	}})
	began := time.Now()
	require.Empty(t, b.poll("w", 3600, nil))
	require.Less(t, time.Since(began), 10*time.Second)
}
