package waymark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// workPool runs work items, at most Config.Workers at once, handlers
// under its ctx. A slot is reserved before an item is claimed — by the
// work loop, or by a step that schedules a task this engine runs and
// enqueues it already claimed (txn.inlineSlot) — and freed when the
// item's run ends. A run that commits the next task of its instance,
// claimed for this engine, goes on with it in the same slot.
type workPool struct {
	e     *Engine
	ctx   context.Context
	slots chan struct{}
	freed chan struct{} // a run ended: the work loop may claim again
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  bool
}

func newWorkPool(e *Engine, ctx context.Context) *workPool {
	return &workPool{e: e, ctx: ctx, slots: make(chan struct{}, e.cfg.Workers), freed: make(chan struct{}, 1), open: true}
}

// reserve takes a slot if one is free and the pool is open.
func (p *workPool) reserve() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open {
		return false
	}
	select {
	case p.slots <- struct{}{}:
		p.wg.Add(1)
		return true
	default:
		return false
	}
}

// release frees a slot; ran says a run ended in it (not a reservation
// left unused), which lets the work loop look for more.
func (p *workPool) release(ran bool) {
	<-p.slots
	p.wg.Done()
	if ran {
		select {
		case p.freed <- struct{}{}:
		default:
		}
	}
}

func (p *workPool) free() int { return cap(p.slots) - len(p.slots) }

// run runs item in a slot reserved for it, then every next task its
// commits hand on; via says how the engine got item (claim, inline).
// Once the pool is closing, a handed-on task is given back unattempted
// for whoever claims it next.
func (p *workPool) run(item *store.WorkItem, via string) {
	go func() {
		defer p.release(true)
		for item != nil {
			if p.closing() {
				p.e.giveBackUnrun(item)
				return
			}
			telemetry.Add(p.ctx, p.e.tel.WorkStarted, 1,
				attribute.String(telemetry.LabelKind, item.Kind), attribute.String(telemetry.LabelVia, via))
			item, via = p.e.runWork(p.ctx, item), viaInline
		}
	}()
}

// How a pool got the work it runs (the via label of WorkStarted).
const (
	viaClaim  = "claim"
	viaInline = "inline"
)

func (p *workPool) closing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.open
}

// close stops reservations and waits for every reserved slot: each run
// ends, each reservation is used or released.
func (p *workPool) close() {
	p.mu.Lock()
	p.open = false
	p.mu.Unlock()
	p.wg.Wait()
}

// giveBackUnrun releases the lease on an item this engine will not run
// after all (it is stopping), so that another engine need not wait for
// the lease to run out.
func (e *Engine) giveBackUnrun(item *store.WorkItem) {
	ctx := context.Background()
	if err := e.release(ctx, item, 0); err != nil {
		e.cfg.Logger.WarnContext(ctx, "engine: give back work", slog.String("work_id", item.ID), slog.Any("error", err))
	}
}

// release gives the lease on item back unattempted, claimable again after
// the delay. A lease already lost (or work already gone) is no error.
func (e *Engine) release(ctx context.Context, item *store.WorkItem, after time.Duration) error {
	err := e.store.WorkRelease(ctx, &store.WorkReleaseParams{ID: item.ID, Owner: e.cfg.NodeID, RunAt: e.clock.Now().UTC().Add(after)})
	if errors.Is(err, store.ErrConflict) || isNotFound(err) {
		return nil
	}
	return err
}

// extendLease prolongs this engine's lease on item by a whole lease.
func (e *Engine) extendLease(ctx context.Context, item *store.WorkItem) (*store.WorkItem, error) {
	return e.store.WorkExtend(ctx, &store.WorkExtendParams{
		ID: item.ID, Owner: e.cfg.NodeID, Until: e.clock.Now().UTC().Add(e.cfg.LeaseDuration),
	})
}

// workLoop claims runnable work while ctx lasts and runs it in pool. It
// returns once every piece of work the pool started has finished.
//
// It claims as many items as the pool has free slots and reserves a slot
// for each as it starts it; an item whose slot a step took meanwhile (for
// a task it handed to this engine at once) is given back unattempted.
// Reserving first instead would hold every free slot for the claim's round
// trip, and send those steps' tasks through a claim.
func (e *Engine) workLoop(ctx context.Context, pool *workPool) {
	handlers := e.handlerNames()
	defer pool.close()
	for {
		free := pool.free()
		claimed, gaveBack := 0, 0
		if free > 0 {
			items, err := e.store.WorkClaim(ctx, &store.WorkClaimParams{
				Owner: e.cfg.NodeID, Now: e.clock.Now().UTC(), LeaseFor: e.cfg.LeaseDuration,
				Limit: free, Handlers: handlers,
			})
			if err != nil && ctx.Err() == nil {
				e.cfg.Logger.WarnContext(ctx, "engine: claim work", slog.Any("error", err))
			}
			claimed = len(items)
			for _, item := range items {
				if pool.reserve() {
					pool.run(item, viaClaim)
					continue
				}
				e.giveBackUnrun(item)
				gaveBack++
			}
		}
		e.services.ran("work")
		if ctx.Err() != nil {
			return
		}
		if claimed > 0 && claimed == free && gaveBack == 0 {
			continue // there may be more
		}
		wait := e.cfg.PollInterval
		if claimed == 0 && free > 0 {
			if next, err := e.store.WorkNextRunAt(ctx, handlers); err == nil && next != nil {
				wait = min(wait, max(time.Until(e.realTime(*next)), time.Millisecond))
			}
		}
		// A freed slot matters only when the slots, not the work, ran
		// out; otherwise the end of a run (most of them inline) is no
		// reason to claim again.
		var freed <-chan struct{}
		if free == 0 || gaveBack > 0 {
			freed = pool.freed
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-e.workWake:
		case <-freed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// handlerNames lists what this engine claims: its internal steps ("") and
// its handlers.
func (e *Engine) handlerNames() []string {
	handlers := make([]string, 0, len(e.cfg.Handlers)+1)
	handlers = append(handlers, "") // internal steps
	for name := range e.cfg.Handlers {
		handlers = append(handlers, name)
	}
	sort.Strings(handlers)
	return handlers
}

// realTime maps a time on the engine's clock to the wall clock, so a loop
// can sleep until it.
func (e *Engine) realTime(t time.Time) time.Time {
	return time.Now().Add(t.Sub(e.clock.Now()))
}

// runWork runs one claimed work item; errors are logged, and the item is
// retried after its lease expires.
func (e *Engine) runWork(ctx context.Context, item *store.WorkItem) (next *store.WorkItem) {
	// The claim read the instance's version: a cached state older than it
	// would only cost the step a failed first try.
	e.states.forgetOlder(item.InstanceID, item.InstanceVersion)
	var err error
	switch item.Kind {
	case workTask:
		next, err = e.runTask(ctx, item)
	case workStep:
		err = e.runStep(context.WithoutCancel(ctx), item)
	case workHTTP:
		err = e.runCall(ctx, item)
	default:
		err = fmt.Errorf("unknown work kind %q", item.Kind)
	}
	if err != nil {
		telemetry.Add(ctx, e.tel.StepErrors, 1, attribute.String(telemetry.LabelKind, item.Kind))
		e.cfg.Logger.WarnContext(ctx, "engine: work failed; it will be retried",
			slog.String(logInstanceID, item.InstanceID), slog.String("execution_id", item.ExecutionID),
			slog.Any("error", err))
		return nil
	}
	return next
}

// runStep runs a deferred (non-task) execution inside the engine.
//
// It goes through the committer, like task results: the steps of one
// instance in this engine then run one after the other instead of racing
// (a forEach's next batch against its iterations' results), and share
// their commits.
func (e *Engine) runStep(ctx context.Context, item *store.WorkItem) error {
	return e.commitResult(ctx, &taskResult{item: item, step: true, done: make(chan error, 1)})
}

// applyStep runs a deferred step inside t.
func (e *Engine) applyStep(t *txn, item *store.WorkItem) error {
	ctx := t.ctx
	if err := t.tx.WorkComplete(ctx, item.ID, e.cfg.NodeID); err != nil {
		return err
	}
	s, err := t.load(item.InstanceID)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	x := s.exec(item.ExecutionID)
	if x != nil && x.rec.Status == ExecWaiting && !s.status.Finished() && s.status != store.InstanceSuspended {
		if a := s.activityFor(x); a.Type == definition.TypeForEach {
			return s.fanOut(a, x) // its next batch of iterations
		}
	}
	if x == nil || x.rec.Status != ExecScheduled || s.status.Finished() || s.status == store.InstanceSuspended {
		return nil // nothing to do any more; the item is dropped
	}
	return s.run(s.activityFor(x), x)
}

// Why a handler's context ends before the handler does.
var (
	errLeaseLost      = errors.New("waymark: the work's lease was lost (taken over or the activity cancelled)")
	errLeaseUncertain = errors.New("waymark: the lease could not be extended in time; another engine may take the work over")
	errCancelled      = errors.New("waymark: the activity was cancelled")
)

// runTask runs a task handler outside any transaction, then records its
// result and advances the instance in one. ctx ends when the engine stops
// (after Config.StopGrace): the handler sees it, and a handler that then
// fails gives its lease back so another engine runs it at once. A finished
// result is committed even while the engine stops.
func (e *Engine) runTask(ctx context.Context, item *store.WorkItem) (next *store.WorkItem, err error) {
	db := context.WithoutCancel(ctx)
	w, err := e.loadClaimed(db, item)
	if err != nil {
		return nil, e.giveBack(db, item, err)
	}
	handler := e.cfg.Handlers[item.Handler]
	if w == nil || handler == nil { // handler: claimed by mistake; the claim filters by handler
		return nil, e.dropWork(db, item)
	}
	inst, x, a := w.inst, w.exec, w.activity
	task := &Task{
		InstanceID: inst.ID, ActivityID: x.ActivityID, ExecutionID: x.ID, Handler: item.Handler,
		Attempt: item.Attempts, IdempotencyKey: x.ID, Input: x.Input, BusinessKey: inst.BusinessKey,
	}

	// A lease taken a while ago — by a step whose commit took long, or by
	// a process that was paused since — is renewed before the handler
	// starts: once it has run out, another engine may be running the work.
	if ok, err := e.renewIfOld(db, item); !ok {
		return nil, err
	}
	// The lease is kept alive from here until the result is committed.
	hctx, release := e.holdLease(ctx, item, x.ID)
	defer release()

	hctx, span := e.startTaskSpan(hctx, inst, x, item)
	started := time.Now()
	raw, runErr, timedOut := RunHandler(hctx, handler, task, a.Timeout)
	e.endTaskSpan(hctx, span, item.Handler, started, runErr, timedOut)
	db = trace.ContextWithSpan(db, span) // log lines below carry the trace
	switch cause := context.Cause(hctx); {
	case errors.Is(cause, errLeaseLost), errors.Is(cause, errLeaseUncertain), errors.Is(cause, errCancelled):
		// Another engine has (or may have) the work, or there is none
		// left: this result counts for nothing.
		e.cfg.Logger.InfoContext(db, "engine: handler result discarded",
			slog.String(logInstanceID, item.InstanceID), slog.String(logActivityID, x.ActivityID),
			slog.String("reason", cause.Error()))
		return nil, nil
	case ctx.Err() != nil && runErr != nil:
		// Stopping: give the work back unattempted rather than count the
		// interrupted attempt as a failure.
		return nil, e.release(db, item, 0)
	}
	r := &taskResult{item: item, activity: a, output: raw, err: runErr, timedOut: timedOut}
	// Hold the result until it is committed: through a database outage
	// too, for as long as the lease may still be ours.
	for try := 1; ; try++ {
		r.done = make(chan error, 1)
		err = e.commitResult(db, r)
		if err == nil {
			return r.next, nil // the next task of the instance, if it runs here
		}
		if !store.IsRetryable(err) || errors.Is(context.Cause(hctx), errLeaseLost) {
			return nil, err
		}
		e.cfg.Logger.WarnContext(db, "engine: commit task result; retrying",
			slog.String(logInstanceID, item.InstanceID), slog.Any("error", err))
		time.Sleep(retryPause(20 + try))
	}
}

// claimed is what a claimed work item is for.
type claimed struct {
	inst     *store.Instance
	exec     *store.ActivityExecution
	def      *compiledDef
	activity *definition.Activity
}

// loadClaimed reads what a claimed item is for. It returns nil, and no
// error, when nothing is left to run: the instance or execution is gone,
// the instance ended or is suspended, or the activity no longer waits for
// the work (cancelled). An error means the records could not be read.
func (e *Engine) loadClaimed(ctx context.Context, item *store.WorkItem) (*claimed, error) {
	// The state cache may only say yes: the commit of the result checks
	// the instance's version, but work dropped because a stale cache said
	// the instance was suspended would be lost.
	inst, x, ok := e.states.lookup(item.InstanceID, item.ExecutionID)
	if ok && (x.Status != ExecScheduled || inst.Status.Finished() || inst.Status == store.InstanceSuspended) {
		ok = false
	}
	var err, xerr error
	if !ok {
		inst, err = e.store.InstanceGet(ctx, item.InstanceID)
		if err != nil && !isNotFound(err) {
			return nil, err
		}
		x, xerr = e.store.ExecutionGet(ctx, item.ExecutionID)
		if xerr != nil && !isNotFound(xerr) {
			return nil, xerr
		}
	}
	if err != nil || xerr != nil || x.Status != ExecScheduled || inst.Status.Finished() || inst.Status == store.InstanceSuspended {
		return nil, nil
	}
	if item.Attempts > x.Attempt+1 {
		// A claim with no recorded attempt behind it: the holder before
		// died or lost its lease.
		telemetry.Add(ctx, e.tel.LeaseTakeovers, 1, attribute.String(telemetry.LabelKind, item.Kind))
	}
	cd, err := e.definition(ctx, e.store, inst.DefinitionID, inst.DefinitionVersion)
	if err != nil {
		return nil, err
	}
	a := cd.def.Activity(x.ActivityID)
	if a == nil {
		return nil, fmt.Errorf("instance %s: no activity %q in %s v%d", inst.ID, x.ActivityID, inst.DefinitionID, inst.DefinitionVersion)
	}
	return &claimed{inst: inst, exec: x, def: cd, activity: a}, nil
}

// holdLease keeps the lease on item alive (see heartbeat) and registers the
// execution's work as running here, until release is called. The returned
// context ends, with a cause, when the lease is lost, cannot be extended,
// or the activity is cancelled — or when ctx ends.
func (e *Engine) holdLease(ctx context.Context, item *store.WorkItem, executionID string) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	unregister := e.running.add(executionID, cancel)
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Go(func() { e.heartbeat(hbCtx, item, cancel) })
	return wctx, func() {
		stopHeartbeat()
		hb.Wait()
		unregister()
		cancel(nil)
	}
}

// renewIfOld extends the lease on item when less than two-thirds of it
// is left, and reports whether the lease is still this engine's: false
// with a nil error when another engine has the work (or none is left).
func (e *Engine) renewIfOld(ctx context.Context, item *store.WorkItem) (bool, error) {
	if item.LeaseExpiresAt == nil || item.LeaseExpiresAt.Sub(e.clock.Now()) >= e.cfg.LeaseDuration*2/3 {
		return true, nil
	}
	ext, err := e.extendLease(ctx, item)
	switch {
	case errors.Is(err, store.ErrConflict) || isNotFound(err):
		e.cfg.Logger.InfoContext(ctx, "engine: work not run: its lease ran out before it started",
			slog.String(logInstanceID, item.InstanceID), slog.String("work_id", item.ID))
		return false, nil
	case err != nil:
		return false, err // the lease runs out; whoever claims the item then runs it
	}
	item.LeaseExpiresAt = ext.LeaseExpiresAt
	return true, nil
}

// heartbeat extends the lease on item every third of the lease until ctx
// ends. When the lease is lost (another engine took the work over, or the
// activity was cancelled and its work deleted), or cannot be extended for a
// whole lease, it cancels the handler: another engine may be running it.
func (e *Engine) heartbeat(ctx context.Context, item *store.WorkItem, cancelHandler context.CancelCauseFunc) {
	every := e.cfg.LeaseDuration / 3
	// When the lease was last made sure of: its start, on this process's
	// monotonic clock, so immune to clock steps.
	lastOK := time.Now()
	if item.LeaseExpiresAt != nil {
		if age := e.cfg.LeaseDuration - item.LeaseExpiresAt.Sub(e.clock.Now()); age > 0 {
			lastOK = lastOK.Add(-age)
		}
	}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := e.extendLease(ctx, item)
		switch {
		case err == nil:
			lastOK = time.Now()
			t.Reset(every)
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrConflict) || isNotFound(err):
			cancelHandler(errLeaseLost)
			return
		default:
			e.cfg.Logger.WarnContext(ctx, "engine: extend lease", slog.String("work_id", item.ID), slog.Any("error", err))
			if time.Since(lastOK) >= e.cfg.LeaseDuration-every/2 {
				cancelHandler(errLeaseUncertain)
			}
			t.Reset(every / 4) // try again soon
		}
	}
}

// runningHandlers maps the executions whose handlers run in this engine to
// the cancel functions of their contexts.
type runningHandlers struct {
	mu sync.Mutex
	m  map[string]context.CancelCauseFunc
}

func (r *runningHandlers) add(executionID string, cancel context.CancelCauseFunc) func() {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]context.CancelCauseFunc{}
	}
	r.m[executionID] = cancel
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.m, executionID)
		r.mu.Unlock()
	}
}

func (r *runningHandlers) cancel(executionID string) {
	r.mu.Lock()
	cancel := r.m[executionID]
	r.mu.Unlock()
	if cancel != nil {
		cancel(errCancelled)
	}
}

// giveBack returns a claimed item that could not even be looked at (the
// database hiccuped) to be claimed again in a second, instead of after its
// lease, and reports why.
func (e *Engine) giveBack(ctx context.Context, item *store.WorkItem, cause error) error {
	_ = e.release(ctx, item, time.Second)
	return cause
}

func (e *Engine) dropWork(ctx context.Context, item *store.WorkItem) error {
	err := e.store.WorkComplete(ctx, item.ID, e.cfg.NodeID)
	if errors.Is(err, store.ErrConflict) || isNotFound(err) {
		return nil
	}
	return err
}

// taskFailed routes a failed attempt: retry later with backoff, suspend the
// instance after too many failures in a row, or fail the activity. The work
// item is settled first, so that a lost lease changes nothing.
func (s *instState) taskFailed(a *definition.Activity, x *execution, item *store.WorkItem, owner string, info ErrorInfo) error {
	_, err := s.attemptFailed(a, x, item, owner, info, 0)
	return err
}

// attemptFailed is taskFailed for tasks and http calls alike; a positive
// retryAfter (the other system's Retry-After) replaces the backoff. It
// reports whether the attempt is retried.
func (s *instState) attemptFailed(a *definition.Activity, x *execution, item *store.WorkItem, owner string, info ErrorInfo, retryAfter time.Duration) (bool, error) {
	t := s.t
	policy := s.cd.def.RetryPolicy(a)
	suspendAfter := s.cd.def.Defaults.SuspendAfterFailures
	retry := info.Retryable && item.Attempts < policy.MaxAttempts &&
		(suspendAfter <= 0 || item.Attempts < suspendAfter)
	delay := backoff(policy, item.Attempts)
	if retryAfter > 0 {
		delay = retryAfter
	}
	info.Attempt = item.Attempts
	if prev, _ := errorInfoFrom(x.rec.Error); prev != nil {
		info.Timeouts = prev.Timeouts
	}
	if info.Code == CodeTimeout {
		info.Timeouts++
	}
	var err error
	if retry {
		_, err = t.tx.WorkRetry(t.ctx, &store.WorkRetryParams{ID: item.ID, Owner: owner, RunAt: t.now.Add(delay)})
	} else {
		err = t.tx.WorkComplete(t.ctx, item.ID, owner)
	}
	if err != nil {
		return false, err
	}
	x.rec.Attempt = item.Attempts
	x.rec.Error = info.json()
	x.dirty = true
	s.changed = true
	switch {
	case retry:
		t.emit(s, EventActivityRetrying, x, map[string]any{
			"error": info, "class": info.Code, "attempt": item.Attempts, "retryIn": delay.String(),
		})
		return true, nil
	case info.Retryable && suspendAfter > 0 && item.Attempts >= suspendAfter:
		info.ActivityID = a.ID
		t.emit(s, EventActivityFailed, x, map[string]any{"error": info, "class": info.Code, "attempt": item.Attempts})
		return false, s.suspend(&info)
	}
	return false, s.failActivity(a, x, info)
}

// backoff is the wait before the attempt after attempt: exponential, capped,
// with ±20% jitter so that many failing tasks spread out.
func backoff(p definition.RetryPolicy, attempt int) time.Duration {
	d := float64(p.InitialInterval) * math.Pow(p.BackoffCoefficient, float64(attempt-1))
	d = min(d, float64(p.MaxInterval))
	d *= 0.8 + 0.4*rand.Float64()
	return time.Duration(d)
}
