package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/server"
)

// workerBundle is a server whose task handlers only a client.Worker runs.
type workerBundle struct {
	t      *testing.T
	base   string
	admin  *client.Client
	worker *client.Client
	logs   *syncBuffer
}

func setupWorker(t *testing.T) *workerBundle {
	t.Helper()
	base, admin, _ := setup(t, func(cfg *server.Config) {
		cfg.APIKeys = append(cfg.APIKeys, server.APIKey{User: "wes", Hash: server.HashAPIKey("worker-key"), Roles: []string{server.RoleWorker}})
	})
	worker, err := client.New(base, &client.Config{Token: "worker-key"})
	require.NoError(t, err)
	return &workerBundle{t: t, base: base, admin: admin, worker: worker, logs: &syncBuffer{}}
}

// run runs w until the test ends, and checks that Run then returns nil.
func (b *workerBundle) run(w *client.Worker) (stop func()) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(b.t, err)
			case <-time.After(30 * time.Second):
				b.t.Fatal("Run did not return after its context ended")
			}
		})
	}
	b.t.Cleanup(stop)
	return stop
}

func (b *workerBundle) options(o client.WorkerOptions) *client.WorkerOptions {
	o.Logger = slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &o
}

func (b *workerBundle) deploy(src string) {
	b.t.Helper()
	_, err := b.admin.Deploy(context.Background(), []byte(src))
	require.NoError(b.t, err)
}

func (b *workerBundle) start(def string, input string) *waymark.Instance {
	b.t.Helper()
	inst, err := b.admin.StartInstance(context.Background(), &client.StartParams{Definition: def, Input: json.RawMessage(input), BusinessKey: "bk-1"})
	require.NoError(b.t, err)
	return inst
}

// await waits for the instance to end (or wait).
func (b *workerBundle) await(id string) *waymark.Instance {
	b.t.Helper()
	inst, err := b.admin.Instance(context.Background(), id, 20*time.Second)
	require.NoError(b.t, err)
	return inst
}

// syncBuffer is a log sink that handlers on several goroutines may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

const payYAML = `
id: pay
activities:
  - id: charge
    type: task
    handler: charge
    input: {amount: '${ input.amount }'}
    output: receipt
    retry: {maxAttempts: 3, initialInterval: 10ms, maxInterval: 10ms}
    next: done
  - {id: done, type: end}
`

// A definition whose task only a client.Worker handles runs to
// completion; the handler sees the task as in-process handlers do, and a
// retryable error brings the job back as the next attempt.
func TestWorker(t *testing.T) {
	t.Parallel()
	b := setupWorker(t)
	b.deploy(payYAML)
	var attempts []int
	var mu sync.Mutex
	w := client.NewWorker(b.worker, b.options(client.WorkerOptions{Name: "pay-worker"})).
		Handle("charge", func(ctx context.Context, task *waymark.Task) (any, error) {
			mu.Lock()
			attempts = append(attempts, task.Attempt)
			mu.Unlock()
			if task.Attempt == 1 {
				return nil, errors.New("gateway timeout")
			}
			var in struct{ Amount int }
			if err := task.Decode(&in); err != nil {
				return nil, waymark.Permanent(err)
			}
			return map[string]any{"charged": in.Amount, "key": task.IdempotencyKey, "exec": task.ExecutionID,
				"instance": task.InstanceID, "activity": task.ActivityID, "handler": task.Handler, "bk": task.BusinessKey}, nil
		})
	require.Equal(t, "pay-worker", w.Name())
	b.run(w)

	inst := b.start("pay", `{"amount":12}`)
	done := b.await(inst.ID)
	require.Equal(t, waymark.InstanceStatus("completed"), done.Status, "%+v", done.Error)
	var vars struct {
		Receipt map[string]any `json:"receipt"`
	}
	require.NoError(t, json.Unmarshal(done.Variables, &vars))
	require.Equal(t, 12.0, vars.Receipt["charged"])
	require.Equal(t, vars.Receipt["exec"], vars.Receipt["key"])
	require.Equal(t, inst.ID, vars.Receipt["instance"])
	require.Equal(t, "charge", vars.Receipt["activity"])
	require.Equal(t, "charge", vars.Receipt["handler"])
	require.Equal(t, "bk-1", vars.Receipt["bk"])
	mu.Lock()
	require.Equal(t, []int{1, 2}, attempts)
	mu.Unlock()
}

// outcomeYAML runs one handler with no retries and routes the business
// error "declined".
const outcomeYAML = `
id: %[1]s
activities:
  - id: work
    type: task
    handler: %[1]s
    timeout: 300ms
    retry: {maxAttempts: 1}
    onError: {declined: declined}
    next: done
  - {id: declined, type: set, vars: {declined: true}}
  - {id: done, type: end}
`

// What a handler returns is reported as the engine does in-process.
func TestWorkerOutcomes(t *testing.T) {
	t.Parallel()
	b := setupWorker(t)
	handlers := map[string]waymark.TaskHandler{
		"business": func(context.Context, *waymark.Task) (any, error) {
			return nil, fmt.Errorf("charge: %w", waymark.Business("declined", "card declined"))
		},
		"permanent": func(context.Context, *waymark.Task) (any, error) {
			return nil, waymark.Permanent(errors.New("bad card"))
		},
		"panics": func(context.Context, *waymark.Task) (any, error) { panic("oops") },
		"slow": func(ctx context.Context, _ *waymark.Task) (any, error) {
			if _, ok := ctx.Deadline(); !ok {
				return nil, waymark.Permanent(errors.New("no deadline from the activity's timeout"))
			}
			<-ctx.Done()
			return nil, ctx.Err()
		},
		"unencodable": func(context.Context, *waymark.Task) (any, error) { return make(chan int), nil },
		"nothing":     func(context.Context, *waymark.Task) (any, error) { return nil, nil },
	}
	w := client.NewWorker(b.worker, b.options(client.WorkerOptions{Concurrency: 8}))
	for name, h := range handlers {
		b.deploy(fmt.Sprintf(outcomeYAML, name))
		w.Handle(name, h)
	}
	b.run(w)

	for _, tt := range []struct {
		handler string
		status  waymark.InstanceStatus
		code    string
		message string
	}{
		{"business", "completed", "", ""},
		{"permanent", "failed", waymark.CodePermanent, "bad card"},
		{"panics", "failed", waymark.CodeTransient, "handler panics panicked: oops"},
		{"slow", "failed", waymark.CodeTimeout, "deadline exceeded"},
		{"unencodable", "failed", waymark.CodePermanent, "handler output"},
		{"nothing", "completed", "", ""},
	} {
		t.Run(tt.handler, func(t *testing.T) {
			done := b.await(b.start(tt.handler, `{}`).ID)
			require.Equal(t, tt.status, done.Status, "%+v", done.Error)
			if tt.code == "" {
				require.Nil(t, done.Error)
				return
			}
			require.NotNil(t, done.Error)
			require.Equal(t, tt.code, done.Error.Code, "%+v", done.Error)
			require.Contains(t, done.Error.Message, tt.message)
		})
	}
	done := b.await(b.start("business", `{}`).ID)
	require.JSONEq(t, `{"declined":true}`, string(done.Variables), "onError routed the business error")
	require.Contains(t, b.logs.String(), "worker: handler panicked")
}

const blockYAML = `
id: block
activities:
  - {id: work, type: task, handler: block, next: done}
  - {id: done, type: end}
`

// A handler whose instance is cancelled sees its context cancelled: the
// next heartbeat is answered 404. Its result is not reported.
func TestWorkerCancelledInstance(t *testing.T) {
	t.Parallel()
	b := setupWorker(t)
	b.deploy(blockYAML)
	started := make(chan struct{}, 1)
	causes := make(chan error, 1)
	b.run(client.NewWorker(b.worker, b.options(client.WorkerOptions{Lease: time.Second})).
		Handle("block", func(ctx context.Context, _ *waymark.Task) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return "too late", nil
		}))
	inst := b.start("block", `{}`)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not start")
	}
	_, err := b.admin.Cancel(context.Background(), inst.ID, &client.CancelParams{Reason: "customer left"})
	require.NoError(t, err)
	select {
	case cause := <-causes:
		require.ErrorIs(t, cause, client.ErrJobLost)
		require.Contains(t, cause.Error(), "gone")
	case <-time.After(20 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
	require.Eventually(t, func() bool { return strings.Contains(b.logs.String(), "worker: result dropped") },
		10*time.Second, 10*time.Millisecond)
	got, err := b.admin.Instance(context.Background(), inst.ID, 0)
	require.NoError(t, err)
	require.Equal(t, waymark.InstanceStatus("cancelled"), got.Status)
}

// When Run's context ends, a running handler may finish within StopGrace
// and its result is reported; past the grace its context is cancelled.
func TestWorkerStop(t *testing.T) {
	t.Parallel()
	t.Run("FinishWithinGrace", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t)
		b.deploy(blockYAML)
		started, release := make(chan struct{}, 1), make(chan struct{})
		stop := b.run(client.NewWorker(b.worker, b.options(client.WorkerOptions{StopGrace: time.Minute})).
			Handle("block", func(ctx context.Context, _ *waymark.Task) (any, error) {
				started <- struct{}{}
				select {
				case <-release:
					return "finished", nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}))
		inst := b.start("block", `{}`)
		<-started
		stopped := make(chan struct{})
		go func() {
			stop()
			close(stopped)
		}()
		require.Eventually(t, func() bool { return strings.Contains(b.logs.String(), "worker: stopping") },
			10*time.Second, time.Millisecond, "Run saw its context end while the handler runs")
		close(release)
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return")
		}
		require.Equal(t, waymark.InstanceStatus("completed"), b.await(inst.ID).Status)
	})
	t.Run("CancelAfterGrace", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t)
		b.deploy(blockYAML)
		started, causes := make(chan struct{}, 1), make(chan error, 1)
		stop := b.run(client.NewWorker(b.worker, b.options(client.WorkerOptions{StopGrace: -1})).
			Handle("block", func(ctx context.Context, _ *waymark.Task) (any, error) {
				started <- struct{}{}
				<-ctx.Done()
				causes <- context.Cause(ctx)
				return nil, ctx.Err()
			}))
		inst := b.start("block", `{}`)
		<-started
		stop()
		require.ErrorIs(t, <-causes, client.ErrWorkerStopped)
		got, err := b.admin.Instance(context.Background(), inst.ID, 0)
		require.NoError(t, err)
		require.Equal(t, waymark.InstanceStatus("running"), got.Status, "the interrupted attempt is not reported")
		require.Contains(t, b.logs.String(), "job given back")
		// Given back: another worker gets it at once, as the same attempt.
		jobs, err := b.worker.PollJobs(context.Background(), &waymark.PollJobsParams{
			Handlers: []string{"block"}, Worker: "next", Wait: 5 * time.Second,
		})
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, 1, jobs[0].Attempt)
	})
}

// No more handlers run at once than Concurrency.
func TestWorkerConcurrency(t *testing.T) {
	t.Parallel()
	b := setupWorker(t)
	b.deploy(blockYAML)
	var running, most atomic.Int32
	started, release := make(chan struct{}, 3), make(chan struct{})
	b.run(client.NewWorker(b.worker, b.options(client.WorkerOptions{Concurrency: 2})).
		Handle("block", func(ctx context.Context, _ *waymark.Task) (any, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			started <- struct{}{}
			<-release
			return nil, nil
		}))
	var ids []string
	for range 3 {
		ids = append(ids, b.start("block", `{}`).ID)
	}
	<-started
	<-started
	close(release)
	for _, id := range ids {
		require.Equal(t, waymark.InstanceStatus("completed"), b.await(id).Status)
	}
	require.Equal(t, int32(2), most.Load())
}

// A server that cannot serve is polled with a growing pause, not in a
// tight loop; one that refuses the worker ends Run with the error.
func TestWorkerBackoff(t *testing.T) {
	t.Parallel()
	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		var polls atomic.Int32
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			polls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"unavailable","message":"the database is unavailable; try again"}}`)
		}))
		defer hs.Close()
		c, err := client.New(hs.URL, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		err = client.NewWorker(c, nil).Handle("h", func(context.Context, *waymark.Task) (any, error) { return nil, nil }).Run(ctx)
		require.NoError(t, err)
		// 250ms doubling with jitter: about 4 polls in 1.5s, never hundreds.
		require.GreaterOrEqual(t, polls.Load(), int32(2))
		require.LessOrEqual(t, polls.Load(), int32(10))
	})
	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		hs := httptest.NewServer(http.NotFoundHandler())
		base := hs.URL
		hs.Close()
		c, err := client.New(base, nil)
		require.NoError(t, err)
		logs := &syncBuffer{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = client.NewWorker(c, &client.WorkerOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))}).
			Handle("h", func(context.Context, *waymark.Task) (any, error) { return nil, nil }).Run(ctx)
		require.NoError(t, err)
		n := strings.Count(logs.String(), "worker: poll failed; retrying")
		require.GreaterOrEqual(t, n, 1)
		require.LessOrEqual(t, n, 10)
	})
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		b := setupWorker(t)
		anon, err := client.New(b.base, nil)
		require.NoError(t, err)
		err = client.NewWorker(anon, nil).Handle("h", func(context.Context, *waymark.Task) (any, error) { return nil, nil }).
			Run(context.Background())
		require.ErrorIs(t, err, client.ErrUnauthorized)
	})
}

// Mistakes in the worker's set-up are returned by Run.
func TestWorkerConfig(t *testing.T) {
	t.Parallel()
	c, err := client.New("http://127.0.0.1:1", nil)
	require.NoError(t, err)
	h := func(context.Context, *waymark.Task) (any, error) { return nil, nil }
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		w    *client.Worker
		want string
	}{
		{"NoHandlers", client.NewWorker(c, nil), "no handlers"},
		{"Twice", client.NewWorker(c, nil).Handle("h", h).Handle("h", h), "twice"},
		{"NilHandler", client.NewWorker(c, nil).Handle("h", nil), "nil"},
		{"EmptyName", client.NewWorker(c, nil).Handle("", h), "empty"},
		{"NilClient", client.NewWorker(nil, nil).Handle("h", h), "client is nil"},
		{"Concurrency", client.NewWorker(c, &client.WorkerOptions{Concurrency: -1}).Handle("h", h), "Concurrency"},
		{"Lease", client.NewWorker(c, &client.WorkerOptions{Lease: time.Millisecond}).Handle("h", h), "Lease"},
		{"PollWait", client.NewWorker(c, &client.WorkerOptions{PollWait: -time.Second}).Handle("h", h), "PollWait"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorContains(t, tt.w.Run(ctx), tt.want)
		})
	}
	require.NotEmpty(t, client.NewWorker(c, nil).Name(), "a default name")
	require.NotEqual(t, client.NewWorker(c, nil).Name(), client.NewWorker(c, nil).Name(), "default names differ")
}

// The job routes themselves, for a worker loop of one's own.
func TestClientJobs(t *testing.T) {
	t.Parallel()
	b := setupWorker(t)
	b.deploy(payYAML)
	ctx := context.Background()
	poll := func(worker string, lease time.Duration) []*client.Job {
		t.Helper()
		jobs, err := b.worker.PollJobs(ctx, &waymark.PollJobsParams{Handlers: []string{"charge"}, Worker: worker, Max: 2,
			Wait: 10 * time.Second, LeaseFor: lease})
		require.NoError(t, err)
		return jobs
	}
	inst := b.start("pay", `{"amount":3}`)
	jobs := poll("w1", 2*time.Second)
	require.Len(t, jobs, 1)
	job := jobs[0]
	require.Equal(t, inst.ID, job.InstanceID)
	require.JSONEq(t, `{"amount":3}`, string(job.Input))
	require.InDelta(t, 2, job.Lease.Seconds(), 0.5)
	require.Zero(t, job.Timeout)

	until, err := b.worker.HeartbeatJob(ctx, job.ID, "w1", time.Minute)
	require.NoError(t, err)
	require.True(t, until.After(job.LeaseExpiresAt))
	require.NoError(t, b.worker.FailJob(ctx, job.ID, "w1", &waymark.JobFailure{Message: "try again"}))
	require.ErrorContains(t, b.worker.FailJob(ctx, job.ID, "w1", nil), "params are required")
	_, err = b.worker.PollJobs(ctx, nil)
	require.ErrorContains(t, err, "params are required")

	// The retry's lease runs out; another worker takes it over.
	jobs = poll("w1", time.Second)
	require.Len(t, jobs, 1)
	require.Equal(t, 2, jobs[0].Attempt)
	taken := poll("w2", 0)
	require.Len(t, taken, 1)
	require.ErrorIs(t, b.worker.CompleteJob(ctx, jobs[0].ID, "w1", json.RawMessage(`"late"`)), waymark.ErrConflict)
	_, err = b.worker.HeartbeatJob(ctx, jobs[0].ID, "w1", 0)
	require.ErrorIs(t, err, waymark.ErrConflict)
	require.NoError(t, b.worker.CompleteJob(ctx, taken[0].ID, "w2", json.RawMessage(`{"id":"r"}`)))
	require.Equal(t, waymark.InstanceStatus("completed"), b.await(inst.ID).Status)
	require.ErrorIs(t, b.worker.CompleteJob(ctx, taken[0].ID, "w2", nil), waymark.ErrNotFound)
	_, err = b.admin.PollJobs(ctx, &waymark.PollJobsParams{Handlers: []string{"charge"}, Worker: ""})
	require.ErrorIs(t, err, waymark.ErrInvalid)
}
