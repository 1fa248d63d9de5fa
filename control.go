package waymark

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// CancelParams cancel an instance.
type CancelParams struct {
	Reason string
	// Compensate runs the compensations of completed activities before the
	// instance is cancelled.
	Compensate bool
	// Actor is who cancels, for the log.
	Actor string
	// Version, if not zero, must be the instance's current version.
	Version int64
}

// Cancel stops an unfinished instance: its waits are closed, its running
// children cancelled, and — when asked — its completed work compensated.
func (e *Engine) Cancel(ctx context.Context, instanceID string, p *CancelParams) error {
	if p == nil {
		p = &CancelParams{}
	}
	return e.control(ctx, instanceID, p.Actor, p.Version, func(s *instState) error {
		if s.status.Finished() {
			return fmt.Errorf("instance %s is already %s: %w", s.inst.ID, s.status, store.ErrConflict)
		}
		info := &ErrorInfo{Code: "cancelled", Message: p.Reason}
		if !p.Compensate {
			// This also stops a compensation under way.
			if err := s.cancelActive(); err != nil {
				return err
			}
			if err := s.cancelChildren(); err != nil {
				return err
			}
			return s.finish(store.InstanceCancelled, info)
		}
		if s.status == store.InstanceCompensating || s.inCompensation() {
			return fmt.Errorf("instance %s is compensating already: %w", s.inst.ID, store.ErrConflict)
		}
		s.status = store.InstanceRunning // compensation runs even when suspended
		return s.fail(store.InstanceCancelled, info)
	})
}

// Suspend pauses an instance: no task handler runs for it and nothing it
// waits for advances it until Resume.
func (e *Engine) Suspend(ctx context.Context, instanceID, actor string, version int64) error {
	return e.control(ctx, instanceID, actor, version, func(s *instState) error {
		if s.status.Finished() || s.status == store.InstanceSuspended {
			return fmt.Errorf("instance %s is %s: %w", s.inst.ID, s.status, store.ErrConflict)
		}
		return s.suspend(nil)
	})
}

// Resume continues a suspended instance where it stopped. An instance
// suspended because a compensation failed goes on compensating: the failed
// compensation runs again.
func (e *Engine) Resume(ctx context.Context, instanceID, actor string, version int64) error {
	return e.control(ctx, instanceID, actor, version, func(s *instState) error {
		if s.status != store.InstanceSuspended {
			return fmt.Errorf("instance %s is %s, not suspended: %w", s.inst.ID, s.status, store.ErrConflict)
		}
		s.t.emit(s, EventInstanceResumed, nil, nil)
		return s.unsuspend()
	})
}

// unsuspend takes a suspended instance back to running, or to compensating
// when a compensation had failed; settle then queues what the suspension
// held back.
func (s *instState) unsuspend() error {
	s.changed = true
	if s.inCompensation() {
		orig, err := s.currentError()
		if err != nil {
			return err
		}
		if orig != nil && orig.Cause != nil {
			orig = orig.Cause
		}
		s.status, s.errInfo = store.InstanceCompensating, orig
		return nil
	}
	s.status = store.InstanceRunning
	s.errInfo = nil
	s.inst.Error = nil
	return nil
}

// rescheduleScheduled queues every scheduled execution that has no work
// item (enqueueing is idempotent): a task whose input was evaluated goes to
// its handler; an execution whose activity never ran (deferred while
// suspended) runs as a step first.
func (s *instState) rescheduleScheduled() error {
	for _, x := range s.execs {
		if x.rec.Status == ExecWaiting && x.rec.Type == string(definition.TypeForEach) {
			// A forEach may have iterations still to start: its next
			// batch (a no-op when there is none).
			if err := s.enqueueKind(x, workStep, "", s.t.now); err != nil {
				return err
			}
			continue
		}
		if x.rec.Status != ExecScheduled || x.isNew {
			continue
		}
		handler, kind := "", workStep
		if a := s.activityFor(x); a != nil && x.rec.Input != nil {
			switch a.Type {
			case definition.TypeTask:
				handler, kind = a.Handler, workTask
			case definition.TypeHTTP:
				kind = workHTTP // its call is recorded: send it
			}
		}
		if err := s.enqueueKind(x, kind, handler, s.t.now); err != nil {
			return err
		}
	}
	return nil
}

// Retry runs the failed activity of a failed or suspended instance again.
// For a failed instance it also revives what the failure cancelled: the
// running or waiting executions of other paths start again, and a join
// that waited keeps the arrivals it had, so the instance can finish.
func (e *Engine) Retry(ctx context.Context, instanceID, actor string, version int64) error {
	return e.RetryWith(ctx, instanceID, &RetryParams{Actor: actor, Version: version})
}

// RetryParams retry an instance with RetryWith.
type RetryParams struct {
	// Vars, when set, are assigned to the instance's variables before
	// anything runs again: a retry with corrected data (the activity's
	// input expressions see them).
	Vars map[string]json.RawMessage
	// Actor and Reason go into the log.
	Actor, Reason string
	// Version, if not zero, must be the instance's current version.
	Version int64
}

// RetryWith is Retry with variables changed first, and a reason logged.
func (e *Engine) RetryWith(ctx context.Context, instanceID string, p *RetryParams) error {
	if p == nil {
		p = &RetryParams{}
	}
	assign := make(map[string]any, len(p.Vars))
	for name, raw := range p.Vars {
		if name == "" {
			return invalid("vars", "a variable name is empty")
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return invalid("vars."+name, "is not valid JSON")
		}
		assign[name] = v
	}
	return e.control(ctx, instanceID, p.Actor, p.Version, func(s *instState) error {
		return s.retry(assign, p.Reason)
	})
}

// retry is RetryWith inside the step.
func (s *instState) retry(assign map[string]any, reason string) error {
	if s.status != store.InstanceFailed && s.status != store.InstanceSuspended {
		return fmt.Errorf("instance %s is %s: only failed or suspended instances are retried: %w",
			s.inst.ID, s.status, store.ErrConflict)
	}
	if s.status == store.InstanceSuspended && s.inCompensation() {
		// Retrying a failed compensation is resuming the compensation.
		s.t.emit(s, EventInstanceResumed, nil, map[string]any{"retry": 1})
		return s.unsuspend()
	}
	maps.Copy(s.vars, assign)
	var retried int
	wasFailed := s.status == store.InstanceFailed
	if wasFailed {
		n, err := s.reviveCancelled()
		if err != nil {
			return err
		}
		retried += n
	}
	for _, x := range s.execs {
		if x.rec.Status != ExecFailed || isCompensation(x) {
			continue
		}
		if wasFailed && s.hasLaterActivity(x) {
			continue
		}
		retried++
		a := s.activityFor(x)
		s.status = store.InstanceRunning
		nx := s.newExecution(a.ID, string(a.Type), x.token())
		s.t.emit(s, EventActivityStarted, nx, map[string]any{"retryOf": x.rec.ID})
		if err := s.run(a, nx); err != nil {
			return err
		}
	}
	if s.status == store.InstanceSuspended {
		s.status = store.InstanceRunning
	}
	if retried == 0 && s.status != store.InstanceRunning {
		return fmt.Errorf("instance %s has no failed activity to retry: %w", s.inst.ID, store.ErrConflict)
	}
	s.errInfo = nil
	s.inst.Error = nil
	s.changed = true
	data := map[string]any{"retry": retried}
	if reason != "" {
		data["reason"] = reason
	}
	if len(assign) > 0 {
		data["vars"] = slices.Sorted(maps.Keys(assign))
	}
	s.t.emit(s, EventInstanceResumed, nil, data)
	return nil
}

// reviveCancelled starts again, in a failed instance being retried, the
// executions its failure cancelled (the latest of each activity): a join
// waits again with the arrivals it had; anything else runs anew. Joins go
// first, so that a retried branch reaching its join inline finds it.
func (s *instState) reviveCancelled() (int, error) {
	var joins, others []*execution
	for _, x := range s.execs {
		if x.rec.Status != ExecCancelled || isCompensation(x) || s.hasLaterActivity(x) {
			continue
		}
		if a := s.activityFor(x); a != nil && a.Type == definition.TypeJoin {
			joins = append(joins, x)
		} else if a != nil {
			others = append(others, x)
		}
	}
	if len(joins)+len(others) > 0 {
		s.status = store.InstanceRunning
	}
	for _, x := range append(joins, others...) {
		a := s.activityFor(x)
		nx := s.newExecution(a.ID, string(a.Type), x.token())
		s.t.emit(s, EventActivityStarted, nx, map[string]any{"revives": x.rec.ID})
		if a.Type == definition.TypeJoin {
			nx.rec.Input = x.rec.Input
			s.setStatus(nx, ExecWaiting)
			continue
		}
		if err := s.run(a, nx); err != nil {
			return 0, err
		}
	}
	return len(joins) + len(others), nil
}

// hasLaterActivity reports whether a newer execution of the same activity
// exists (it was retried already).
func (s *instState) hasLaterActivity(x *execution) bool {
	for _, o := range s.execs {
		if o != x && o.rec.ActivityID == x.rec.ActivityID && o.rec.CreatedAt.After(x.rec.CreatedAt) {
			return true
		}
	}
	return false
}

// Skip completes an activity that is scheduled, waiting or failed with the
// given output, as if it had run, and continues after it.
func (e *Engine) Skip(ctx context.Context, instanceID, activityID string, output json.RawMessage, actor string, version int64) error {
	if activityID == "" {
		return invalid("activity", "is required")
	}
	if len(output) > 0 && !json.Valid(output) {
		return invalid("output", "is not valid JSON")
	}
	return e.control(ctx, instanceID, actor, version, func(s *instState) error {
		var target *execution
		for _, x := range s.execs {
			if x.rec.ActivityID == activityID && (x.active() || x.rec.Status == ExecFailed) {
				target = x
			}
		}
		if target == nil {
			return fmt.Errorf("activity %q of instance %s is not scheduled, waiting or failed: %w",
				activityID, s.inst.ID, store.ErrConflict)
		}
		if s.status.Finished() && !isCompensation(target) {
			s.status = store.InstanceRunning // a failed instance goes on
		}
		var out any
		if err := decodeJSON(output, &out); err != nil {
			return err
		}
		if err := s.closeBookmarksOf(target); err != nil {
			return err
		}
		if target.active() {
			if err := s.abandonCall(target, "skipped by "+s.t.actor); err != nil {
				return err
			}
		}
		a := s.activityFor(target)
		target.rec.Output = output
		s.setStatus(target, ExecSkipped)
		s.t.emit(s, EventActivitySkipped, target, nil)
		if s.status == store.InstanceSuspended {
			if err := s.unsuspend(); err != nil {
				return err
			}
		}
		if isCompensation(target) {
			// A skipped compensation counts as done; compensation goes on
			// with the next one (settle).
			return nil
		}
		if a.Output != "" && out != nil {
			s.vars[a.Output] = out
		}
		s.errInfo = nil
		s.inst.Error = nil
		next := a.Next
		if a.Type == definition.TypeUserTask && len(a.OutcomeNext) > 0 {
			if m, ok := out.(map[string]any); ok {
				if o, ok := m["outcome"].(string); ok {
					next = a.NextFor(o)
				}
			}
		}
		if next == "" {
			return nil
		}
		return s.enter(next, target.token())
	})
}

// closeBookmarksOf consumes the open bookmarks of one execution.
func (s *instState) closeBookmarksOf(x *execution) error {
	open, err := s.t.tx.BookmarkListOpen(s.t.ctx, &store.BookmarkListParams{InstanceID: s.inst.ID, Limit: 1000})
	if err != nil {
		return err
	}
	for _, b := range open {
		if b.ExecutionID != x.rec.ID {
			continue
		}
		if _, err := s.t.tx.BookmarkConsume(s.t.ctx, &store.BookmarkConsumeParams{
			ID: b.ID, ConsumedBy: s.t.actor, ConsumeKey: consumeSkipped, At: s.t.now,
		}); err != nil {
			return raced(err)
		}
	}
	return nil
}

// control runs a manual intervention on one instance in one transaction.
func (e *Engine) control(ctx context.Context, instanceID, actor string, version int64, fn func(s *instState) error) error {
	if instanceID == "" {
		return invalid("instance", "is required")
	}
	return e.inTx(ctx, actor, func(t *txn) error {
		s, err := t.load(instanceID)
		if err != nil {
			return err
		}
		if version != 0 && version != s.inst.Version {
			return fmt.Errorf("instance %s is at revision %d, not %d: %w", instanceID, s.inst.Version, version, ErrVersionMismatch)
		}
		return fn(s)
	})
}
