package waymark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// workLoop claims runnable work and runs it, up to Config.Workers at once.
func (e *Engine) workLoop(ctx context.Context) {
	handlers := make([]string, 0, len(e.cfg.Handlers)+1)
	handlers = append(handlers, "") // internal steps
	for name := range e.cfg.Handlers {
		handlers = append(handlers, name)
	}
	sort.Strings(handlers)
	slots := make(chan struct{}, e.cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	freed := make(chan struct{}, 1)
	for {
		free := e.cfg.Workers - len(slots)
		claimed := 0
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
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					e.runWork(ctx, item)
				})
			}
		}
		if ctx.Err() != nil {
			return
		}
		if claimed > 0 && claimed == free {
			continue // there may be more
		}
		wait := e.cfg.PollInterval
		if claimed == 0 && free > 0 {
			if next, err := e.store.WorkNextRunAt(ctx, handlers); err == nil && next != nil {
				wait = min(wait, max(time.Until(e.realTime(*next)), time.Millisecond))
			}
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

// realTime maps a time on the engine's clock to the wall clock, so a loop
// can sleep until it.
func (e *Engine) realTime(t time.Time) time.Time {
	return time.Now().Add(t.Sub(e.clock.Now()))
}

// runWork runs one claimed work item; errors are logged, and the item is
// retried after its lease expires.
func (e *Engine) runWork(ctx context.Context, item *store.WorkItem) {
	var err error
	switch item.Kind {
	case workTask:
		err = e.runTask(ctx, item)
	case workStep:
		err = e.runStep(ctx, item)
	default:
		err = fmt.Errorf("unknown work kind %q", item.Kind)
	}
	if err != nil && ctx.Err() == nil {
		e.cfg.Logger.WarnContext(ctx, "engine: work failed; it will be retried",
			slog.String(logInstanceID, item.InstanceID), slog.String("execution_id", item.ExecutionID),
			slog.Any("error", err))
	}
}

// runStep runs a deferred (non-task) execution inside the engine.
func (e *Engine) runStep(ctx context.Context, item *store.WorkItem) error {
	return e.inTx(ctx, "", func(t *txn) error {
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
		if x == nil || x.rec.Status != ExecScheduled || s.status.Finished() || s.status == store.InstanceSuspended {
			return nil // nothing to do any more; the item is dropped
		}
		return s.run(s.activityFor(x), x)
	})
}

// runTask runs a task handler outside any transaction, then records its
// result and advances the instance in one.
func (e *Engine) runTask(ctx context.Context, item *store.WorkItem) error {
	inst, err := e.store.InstanceGet(ctx, item.InstanceID)
	if err != nil && !isNotFound(err) {
		return err
	}
	x, xerr := e.store.ExecutionGet(ctx, item.ExecutionID)
	if err != nil || xerr != nil || x.Status != ExecScheduled || inst.Status.Finished() || inst.Status == store.InstanceSuspended {
		// Nothing to run any more (cancelled, finished, suspended): drop it.
		return e.dropWork(ctx, item)
	}
	handler := e.cfg.Handlers[item.Handler]
	if handler == nil {
		return e.dropWork(ctx, item) // claimed by mistake; cannot happen with the handler filter
	}
	cd, err := e.definition(ctx, e.store, inst.DefinitionID, inst.DefinitionVersion)
	if err != nil {
		return err
	}
	a := cd.def.Activity(x.ActivityID)
	task := &Task{
		InstanceID: inst.ID, ActivityID: x.ActivityID, ExecutionID: x.ID, Handler: item.Handler,
		Attempt: item.Attempts, IdempotencyKey: x.ID, Input: x.Input, BusinessKey: inst.BusinessKey,
	}
	output, runErr, timedOut := e.callHandler(ctx, handler, task, a.Timeout, item)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the lease expires and another attempt follows
	}
	var raw json.RawMessage
	if runErr == nil {
		if raw, err = encodeJSON(output); err != nil {
			runErr = Permanent(fmt.Errorf("handler output: %w", err))
		}
	}
	return e.commitResult(ctx, &taskResult{
		item: item, activity: a, output: raw, err: runErr, timedOut: timedOut, done: make(chan error, 1),
	})
}

// callHandler runs a handler with the activity's timeout, keeps the lease
// alive while it runs, and turns a panic into an error.
func (e *Engine) callHandler(ctx context.Context, h TaskHandler, task *Task, timeout time.Duration, item *store.WorkItem) (out any, err error, timedOut bool) {
	hctx, cancel := context.WithCancel(ctx)
	if timeout > 0 {
		hctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { e.heartbeat(hctx, item, stop) })
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("handler %s panicked: %v", task.Handler, r)
			}
		}()
		out, err = h(hctx, task)
	}()
	close(stop)
	wg.Wait()
	timedOut = err != nil && errors.Is(hctx.Err(), context.DeadlineExceeded)
	return out, err, timedOut
}

// heartbeat extends the lease on item until stop closes.
func (e *Engine) heartbeat(ctx context.Context, item *store.WorkItem, stop <-chan struct{}) {
	every := e.cfg.LeaseDuration / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			_, err := e.store.WorkExtend(ctx, &store.WorkExtendParams{
				ID: item.ID, Owner: e.cfg.NodeID, Until: e.clock.Now().UTC().Add(e.cfg.LeaseDuration),
			})
			if err != nil && ctx.Err() == nil {
				e.cfg.Logger.WarnContext(ctx, "engine: extend lease", slog.String("work_id", item.ID), slog.Any("error", err))
			}
		}
	}
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
func (s *instState) taskFailed(a *definition.Activity, x *execution, item *store.WorkItem, info ErrorInfo) error {
	t := s.t
	policy := s.cd.def.RetryPolicy(a)
	suspendAfter := s.cd.def.Defaults.SuspendAfterFailures
	retry := info.Retryable && item.Attempts < policy.MaxAttempts &&
		(suspendAfter <= 0 || item.Attempts < suspendAfter)
	delay := backoff(policy, item.Attempts)
	var err error
	if retry {
		_, err = t.tx.WorkRetry(t.ctx, &store.WorkRetryParams{ID: item.ID, Owner: t.e.cfg.NodeID, RunAt: t.now.Add(delay)})
	} else {
		err = t.tx.WorkComplete(t.ctx, item.ID, t.e.cfg.NodeID)
	}
	if err != nil {
		return err
	}
	x.rec.Attempt = item.Attempts
	x.rec.Error = info.json()
	x.dirty = true
	s.changed = true
	switch {
	case retry:
		t.emit(s, EventActivityRetrying, x, map[string]any{"error": info, "attempt": item.Attempts, "retryIn": delay.String()})
		return nil
	case info.Retryable && suspendAfter > 0 && item.Attempts >= suspendAfter:
		info.ActivityID = a.ID
		t.emit(s, EventActivityFailed, x, map[string]any{"error": info, "attempt": item.Attempts})
		return s.suspend(&info)
	}
	return s.failActivity(a, x, info)
}

// backoff is the wait before the attempt after attempt: exponential, capped,
// with ±20% jitter so that many failing tasks spread out.
func backoff(p definition.RetryPolicy, attempt int) time.Duration {
	d := float64(p.InitialInterval) * math.Pow(p.BackoffCoefficient, float64(attempt-1))
	d = min(d, float64(p.MaxInterval))
	d *= 0.8 + 0.4*rand.Float64()
	return time.Duration(d)
}
