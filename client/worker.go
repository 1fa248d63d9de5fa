package client

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/waymarkdev/waymark"
)

// Why a handler's context ends before the handler does. Test with
// errors.Is on context.Cause(ctx).
var (
	// ErrJobLost: the job is no longer this worker's — another worker
	// holds it now (its lease expired), it is gone (completed, or its
	// activity cancelled), or the lease could not be extended in time.
	// Whatever the handler returns then is not reported.
	ErrJobLost = errors.New("client: the job's lease was lost")
	// ErrWorkerStopped: Run's context ended and WorkerOptions.StopGrace
	// passed. A handler that then returns an error has nothing reported:
	// its job goes back to the queue when its lease expires. A handler
	// that returns a result anyway has it reported.
	ErrWorkerStopped = errors.New("client: the worker is stopping")
)

// Log attribute keys of the worker.
const (
	logWorker     = "worker"
	logJobID      = "job_id"
	logHandler    = "handler"
	logInstanceID = "instance_id"
	logActivityID = "activity_id"
	logAttempt    = "attempt"
	logError      = "error"
)

// maxJobsPerPoll is the most jobs the server hands out in one poll.
const maxJobsPerPoll = waymark.MaxPollJobs

// WorkerOptions configure a Worker. A nil *WorkerOptions means all
// defaults.
type WorkerOptions struct {
	// Name names the worker to the server, which leases jobs to it by
	// name: it must be unique among the workers running at once. Defaults
	// to HOSTNAME-PID-RANDOM.
	Name string
	// Concurrency is how many handlers run at once. Defaults to 4.
	Concurrency int
	// PollWait is how long one poll waits for a job when none is ready (a
	// long poll; the server caps it at its maxWait). Defaults to 30s.
	PollWait time.Duration
	// Lease is how long a job stays the worker's without a heartbeat, at
	// least 1s. Defaults to the server's lease. The worker heartbeats
	// every third of it while a handler runs.
	Lease time.Duration
	// StopGrace is how long Run, once its context ends, lets running
	// handlers finish before it cancels their contexts (with the cause
	// ErrWorkerStopped). Defaults to 10s; negative cancels them at once.
	StopGrace time.Duration
	// Logger receives the worker's logs. Defaults to discarding them.
	Logger *slog.Logger
}

// WithDefaults returns a copy of o with every unset field defaulted.
func (o *WorkerOptions) WithDefaults() *WorkerOptions {
	out := WorkerOptions{}
	if o != nil {
		out = *o
	}
	if out.Name == "" {
		out.Name = defaultWorkerName()
	}
	out.Concurrency = cmp.Or(out.Concurrency, 4)
	out.PollWait = cmp.Or(out.PollWait, 30*time.Second)
	out.StopGrace = cmp.Or(out.StopGrace, 10*time.Second)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

func (o *WorkerOptions) validate() error {
	switch {
	case o.Concurrency < 1:
		return fmt.Errorf("client: WorkerOptions.Concurrency %d: must be at least 1", o.Concurrency)
	case o.PollWait < 0:
		return fmt.Errorf("client: WorkerOptions.PollWait %s: must not be negative", o.PollWait)
	case o.Lease != 0 && o.Lease < time.Second:
		return fmt.Errorf("client: WorkerOptions.Lease %s: must be at least 1s", o.Lease)
	}
	return nil
}

func defaultWorkerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(randomBytes(4))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails
	return b
}

// Worker runs task handlers for a Waymark server: an external worker. It
// polls the server for jobs of its handlers, runs each under a
// waymark.TaskHandler — the same signature as handlers registered with the
// engine in-process — heartbeats while the handler runs, and reports what
// the handler returned the way the engine does in-process: a nil error
// completes the job with the JSON of the output; waymark.Permanent(err)
// fails the activity at once; a *waymark.BusinessError is routed by the
// activity's onError; a panic, or the activity's timeout passing (the
// handler's ctx has that deadline), is a failure that is retried; so is
// any other error.
//
// As in-process, a handler runs at least once per activity execution and
// may run more than once; Task.IdempotencyKey is the same every time.
//
//	err := client.NewWorker(c, &client.WorkerOptions{Concurrency: 8}).
//		Handle("charge", charge).
//		Run(ctx)
//
// The client's token needs the worker (or admin) role.
type Worker struct {
	c    *Client
	opts *WorkerOptions
	log  *slog.Logger

	mu       sync.Mutex
	handlers map[string]waymark.TaskHandler
	err      error // the first mistake of Handle, returned by Run
	running  bool
}

// NewWorker returns a worker that uses c. Add handlers with Handle, then
// call Run. A mistake in the options is returned by Run.
func NewWorker(c *Client, opts *WorkerOptions) *Worker {
	o := opts.WithDefaults()
	return &Worker{c: c, opts: o, handlers: map[string]waymark.TaskHandler{},
		log: o.Logger.With(slog.String(logWorker, o.Name))}
}

// Name is the worker's name: WorkerOptions.Name or its default.
func (w *Worker) Name() string { return w.opts.Name }

// Handle makes the worker run fn for the jobs of the handler name (the
// handler of the definition's task activities). Call it before Run; a name
// given twice, an empty one or a nil fn make Run return an error.
func (w *Worker) Handle(name string, fn waymark.TaskHandler) *Worker {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	switch {
	case name == "":
		err = errors.New("client: Worker.Handle: the handler name is empty")
	case fn == nil:
		err = fmt.Errorf("client: Worker.Handle(%q): the handler is nil", name)
	case w.handlers[name] != nil:
		err = fmt.Errorf("client: Worker.Handle(%q): the handler is given twice", name)
	}
	if err != nil {
		w.err = cmp.Or(w.err, err)
		return w
	}
	w.handlers[name] = fn
	return w
}

// Run polls for jobs and runs them until ctx ends. Then it stops polling,
// lets running handlers finish for up to WorkerOptions.StopGrace, cancels
// the contexts of those still running (cause ErrWorkerStopped), waits for
// them to return and for their results to be reported, and returns nil. A
// handler that ignores its context holds Run up.
//
// While the server cannot be reached, or answers 429 or 5xx, Run retries
// with a jittered exponential backoff (from 250ms to 30s, and at least the
// server's Retry-After). An answer that retrying cannot fix — 401, 403, or
// a request the server refuses as invalid — ends Run with that error, after
// the same stop. Run returns an error at once for a worker without
// handlers or with wrong options.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	handlers, err, running := maps.Clone(w.handlers), w.err, w.running
	switch {
	case err != nil:
	case running:
		err = errors.New("client: Worker.Run: already running")
	case w.c == nil:
		err = errors.New("client: NewWorker: the client is nil")
	case len(handlers) == 0:
		err = errors.New("client: Worker.Run: no handlers; add them with Handle")
	default:
		err = w.opts.validate()
	}
	if err != nil {
		w.mu.Unlock()
		return err
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	r := &workerRun{w: w, ctx: ctx, handlers: handlers, names: slices.Sorted(maps.Keys(handlers)),
		slots: make(chan struct{}, w.opts.Concurrency)}
	var stop context.CancelCauseFunc
	r.handlerCtx, stop = context.WithCancelCause(context.WithoutCancel(ctx))
	defer stop(nil)
	w.log.InfoContext(ctx, "worker: started", slog.Any("handlers", r.names), slog.Int("concurrency", w.opts.Concurrency))
	runErr := r.pollLoop()
	w.log.InfoContext(r.handlerCtx, "worker: stopping; letting running handlers finish", slog.Duration("grace", max(w.opts.StopGrace, 0)))

	finished := make(chan struct{})
	go func() {
		r.jobs.Wait()
		close(finished)
	}()
	if w.opts.StopGrace > 0 {
		grace := time.NewTimer(w.opts.StopGrace)
		select {
		case <-finished:
		case <-grace.C:
		}
		grace.Stop()
	}
	stop(ErrWorkerStopped)
	<-finished
	w.log.InfoContext(r.handlerCtx, "worker: stopped")
	return runErr
}

// workerRun is one Run of a Worker.
type workerRun struct {
	w          *Worker
	ctx        context.Context // Run's: polling stops when it ends
	handlerCtx context.Context // the handlers': cancelled after the stop grace
	handlers   map[string]waymark.TaskHandler
	names      []string
	slots      chan struct{} // one per running handler
	jobs       sync.WaitGroup
}

// pollLoop polls for as many jobs as there are free slots and starts them,
// until Run's ctx ends (nil) or the server refuses the worker (the error).
func (r *workerRun) pollLoop() error {
	w := r.w
	failures := 0
	for {
		// Wait for a free slot, then take every free one.
		select {
		case r.slots <- struct{}{}:
		case <-r.ctx.Done():
			return nil
		}
		free := 1
	take:
		for free < min(cap(r.slots), maxJobsPerPoll) {
			select {
			case r.slots <- struct{}{}:
				free++
			default:
				break take
			}
		}
		began := time.Now()
		jobs, err := r.poll(free)
		for range free - len(jobs) {
			<-r.slots
		}
		for _, job := range jobs {
			r.jobs.Go(func() {
				defer func() { <-r.slots }()
				r.run(job)
			})
		}
		var pause time.Duration
		switch {
		case r.ctx.Err() != nil:
			return nil
		case err != nil && fatal(err):
			w.log.ErrorContext(r.ctx, "worker: the server refuses the worker", slog.String(logError, err.Error()))
			return fmt.Errorf("client: worker %s: poll: %w", w.opts.Name, err)
		case err != nil:
			failures++
			pause = backoff(failures)
			var apiErr *Error
			if errors.As(err, &apiErr) {
				pause = max(pause, apiErr.RetryAfter)
			}
			w.log.WarnContext(r.ctx, "worker: poll failed; retrying", slog.String(logError, err.Error()),
				slog.Int("failures", failures), slog.Duration("retry_in", pause))
		case len(jobs) == 0 && time.Since(began) < minEmptyPoll && w.opts.PollWait >= minEmptyPoll:
			// A server that answers long polls at once (one shutting
			// down, say) is not polled in a tight loop.
			failures = 0
			pause = minEmptyPoll + rand.N(minEmptyPoll)
		default:
			failures = 0
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-r.ctx.Done():
				t.Stop()
				return nil
			}
		}
	}
}

// minEmptyPoll is how quickly an empty answer to a long poll comes back
// before the next poll waits a little.
const minEmptyPoll = 100 * time.Millisecond

// poll asks the server for up to n jobs.
func (r *workerRun) poll(n int) ([]*Job, error) {
	w := r.w
	// A poll that outlives its wait by far hangs (a dead connection).
	ctx, cancel := context.WithTimeout(r.ctx, w.opts.PollWait+30*time.Second)
	defer cancel()
	return w.c.PollJobs(ctx, &waymark.PollJobsParams{
		Handlers: r.names, Worker: w.opts.Name, Max: n, Wait: w.opts.PollWait, LeaseFor: w.opts.Lease,
	})
}

// fatal reports a poll error that retrying cannot fix.
func fatal(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, waymark.ErrForbidden) ||
		errors.Is(err, waymark.ErrInvalid) || errors.Is(err, waymark.ErrNotFound)
}

// backoff is the pause after the n-th failure in a row: from 250ms,
// doubling, at most 30s, jittered to between half and all of it.
func backoff(n int) time.Duration {
	d := min(250*time.Millisecond<<min(n-1, 7), 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// run runs one job and reports its result.
func (r *workerRun) run(job *Job) {
	w := r.w
	log := w.log.With(slog.String(logJobID, job.ID), slog.String(logHandler, job.Handler),
		slog.String(logInstanceID, job.InstanceID), slog.String(logActivityID, job.ActivityID), slog.Int(logAttempt, job.Attempt))
	handler := r.handlers[job.Handler]
	if handler == nil { // the server hands out only the handlers asked for
		log.ErrorContext(r.handlerCtx, "worker: no handler for the job; it returns to the queue when its lease expires")
		return
	}
	task := &waymark.Task{
		InstanceID: job.InstanceID, ActivityID: job.ActivityID, ExecutionID: job.ExecutionID, Handler: job.Handler,
		Attempt: job.Attempt, IdempotencyKey: job.IdempotencyKey, Input: job.Input, BusinessKey: job.BusinessKey,
	}
	hctx, cancel := context.WithCancelCause(r.handlerCtx)
	defer cancel(nil)
	lease := &leaseState{until: time.Now().Add(job.Lease)}
	hbCtx, stopHeartbeat := context.WithCancel(r.handlerCtx)
	var hb sync.WaitGroup
	hb.Go(func() { r.heartbeat(hbCtx, job, lease, cancel, log) })

	log.DebugContext(hctx, "worker: job started")
	output, runErr, timedOut := waymark.RunHandler(hctx, handler, task, job.Timeout)
	var panicked *waymark.HandlerPanic
	if errors.As(runErr, &panicked) {
		log.ErrorContext(hctx, "worker: handler panicked", slog.Any("panic", panicked.Value), slog.String("stack", string(panicked.Stack)))
	}
	stopHeartbeat()
	hb.Wait()
	switch cause := context.Cause(hctx); {
	case errors.Is(cause, ErrJobLost):
		log.InfoContext(r.handlerCtx, "worker: result dropped", slog.String("reason", cause.Error()))
		return
	case errors.Is(cause, ErrWorkerStopped) && runErr != nil:
		// Give it back at once, rather than make it wait out its lease.
		ctx, cancelRelease := context.WithTimeout(context.WithoutCancel(r.handlerCtx), 5*time.Second)
		defer cancelRelease()
		if err := w.c.ReleaseJob(ctx, job.ID, w.opts.Name); err != nil {
			log.InfoContext(ctx, "worker: handler interrupted by the stop; the job returns to the queue when its lease expires",
				slog.Any("error", err))
			return
		}
		log.InfoContext(ctx, "worker: handler interrupted by the stop; job given back")
		return
	}
	r.report(job, lease.until, output, runErr, timedOut, log)
}

// leaseState is what the worker knows of a job's lease: until when it is
// surely its own (by this machine's clock).
type leaseState struct{ until time.Time }

// heartbeat extends the job's lease every third of it until ctx ends. When
// the lease is lost — taken over (409), the job gone (404), or not
// extended for a whole lease — it cancels the handler's context with
// ErrJobLost.
func (r *workerRun) heartbeat(ctx context.Context, job *Job, lease *leaseState, lost context.CancelCauseFunc, log *slog.Logger) {
	w := r.w
	length := cmp.Or(w.opts.Lease, job.Lease)
	every := max(length/3, 100*time.Millisecond)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		reqCtx, cancel := context.WithTimeout(ctx, every)
		_, err := w.c.HeartbeatJob(reqCtx, job.ID, w.opts.Name, w.opts.Lease)
		cancel()
		switch {
		case err == nil:
			lease.until = sent.Add(length)
			t.Reset(every)
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, waymark.ErrNotFound):
			lost(fmt.Errorf("%w: the job is gone (completed, or its activity cancelled)", ErrJobLost))
			return
		case errors.Is(err, waymark.ErrConflict):
			lost(fmt.Errorf("%w: its lease expired and another worker holds it now", ErrJobLost))
			return
		}
		log.WarnContext(ctx, "worker: heartbeat failed", slog.String(logError, err.Error()))
		if time.Until(lease.until) < every/2 {
			lost(fmt.Errorf("%w: the lease could not be extended in time: %w", ErrJobLost, err))
			return
		}
		t.Reset(max(every/4, 50*time.Millisecond)) // try again soon
	}
}

// report tells the server what the handler returned, retrying what can be
// retried for as long as the lease is surely the worker's.
func (r *workerRun) report(job *Job, until time.Time, raw json.RawMessage, runErr error, timedOut bool, log *slog.Logger) {
	w := r.w
	ctx, cancel := context.WithDeadline(context.WithoutCancel(r.ctx), until)
	defer cancel()
	send := func() error {
		if runErr == nil {
			return w.c.CompleteJob(ctx, job.ID, w.opts.Name, raw)
		}
		return w.c.FailJob(ctx, job.ID, w.opts.Name, failure(runErr, timedOut))
	}
	for try := 1; ; try++ {
		err := send()
		switch {
		case err == nil:
			log.DebugContext(ctx, "worker: job reported", slog.Bool("failed", runErr != nil))
			return
		case runErr == nil && errors.Is(err, ErrTooLarge):
			// The output is beyond what the server takes: that will not
			// change on another attempt.
			runErr = waymark.Permanent(fmt.Errorf("handler output: %d bytes are more than the server accepts", len(raw)))
			continue
		case errors.Is(err, waymark.ErrNotFound), errors.Is(err, waymark.ErrConflict):
			log.InfoContext(ctx, "worker: result dropped", slog.String("reason", err.Error()))
			return
		case fatal(err) || ctx.Err() != nil:
			log.ErrorContext(ctx, "worker: report the job; it returns to the queue when its lease expires", slog.String(logError, err.Error()))
			return
		}
		pause := backoff(try)
		log.WarnContext(ctx, "worker: report the job; retrying", slog.String(logError, err.Error()), slog.Duration("retry_in", pause))
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			log.ErrorContext(ctx, "worker: report the job: the lease ran out; the job returns to the queue", slog.String(logError, err.Error()))
			return
		}
	}
}

// maxFailureMessage bounds the message of a failure report.
const maxFailureMessage = 8 << 10

// failure describes a handler error as the engine classifies it
// in-process.
func failure(err error, timedOut bool) *waymark.JobFailure {
	var biz *waymark.BusinessError
	var perm *waymark.PermanentError
	switch {
	case errors.As(err, &biz):
		return &waymark.JobFailure{Message: message(cmp.Or(biz.Message, biz.Name)), Business: biz.Name}
	case errors.As(err, &perm):
		return &waymark.JobFailure{Message: message(err.Error()), Permanent: true}
	}
	return &waymark.JobFailure{Message: message(err.Error()), TimedOut: timedOut}
}

func message(s string) string {
	if s == "" {
		return "the handler failed without a message"
	}
	if len(s) > maxFailureMessage {
		cut := maxFailureMessage
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
