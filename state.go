package waymark

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/expr"
	"github.com/waymarkdev/waymark/store"
)

// Activity execution statuses.
const (
	ExecScheduled = "scheduled" // a task waiting for a worker, or a step deferred to later
	ExecWaiting   = "waiting"   // on a bookmark, a join or a child instance
	ExecCompleted = "completed"
	ExecFailed    = "failed"
	ExecCancelled = "cancelled"
	ExecSkipped   = "skipped"
	ExecExpired   = "expired" // a wait that timed out
)

// Work item kinds.
const (
	workTask = "task" // run a task handler
	workStep = "step" // run a deferred activity inside the engine
	// workHTTP (http.go) sends an http activity's request.
)

// instState is one instance inside a transaction.
type instState struct {
	t      *txn
	inst   *store.Instance
	cd     *compiledDef
	isNew  bool
	input  any
	vars   map[string]any
	execs  []*execution
	status store.InstanceStatus
	// errInfo and output are written with the instance when set.
	errInfo *ErrorInfo
	output  any
	// changed says the instance row must be written.
	changed bool
	// cached says the record and executions came from the state cache:
	// a step that does not write the instance asserts its version.
	cached bool
	// steps holds the outputs of completed activities for expressions;
	// built on first use, then kept up to date by setStatus.
	steps map[string]any
	// task and message are what expressions see as task and message in
	// the step that completes a user task or receives a message.
	task    *expr.Task
	message any
	// rescheduled is set once the step has queued again what a suspension
	// held back.
	rescheduled bool
	// raceWon holds the firstOf executions whose race was won in this step.
	raceWon map[string]bool
	// byID indexes execs by id once the instance has many (see exec).
	byID map[string]*execution
	// doneCount counts the executions completed in this transaction.
	doneCount int
	// iter is the forEach iteration of the execution being run, which
	// expressions see as item and index.
	iter *expr.Iteration
	// iterTok is that iteration's token: steps, for its expressions, has
	// the outputs of its own executions over the instance's.
	iterTok *iteration
	// headers caches traceHeaders.
	headers []byte
}

// execution is an activity execution inside a transaction.
type execution struct {
	rec   *store.ActivityExecution
	isNew bool
	dirty bool
	// compensates is set on a compensation execution: the id of the
	// execution it undoes (see compensationOf).
	compensates string
	// tok is the path that led to the execution (see token); legacy is
	// set on an execution stored before tokens existed.
	tok        *token
	tokDecoded bool
	legacy     bool
	// loop is a forEach execution's state, decoded once per step; write
	// stores it when loopDirty. fanning is set while it starts iterations.
	loop               *loopState
	loopDirty, fanning bool
	// doneSeq orders the executions completed (or skipped) in this
	// transaction: 1, 2, … in the order they completed; 0 for the others.
	doneSeq int
}

func (x *execution) active() bool {
	return x.rec.Status == ExecScheduled || x.rec.Status == ExecWaiting
}

func (s *instState) traceID() string { return instanceTrace(s.inst).TraceID().String() }

func (s *instState) exec(id string) *execution {
	if len(s.execs) < 64 {
		for _, x := range s.execs {
			if x.rec.ID == id {
				return x
			}
		}
		return nil
	}
	if len(s.byID) != len(s.execs) { // built on first use; rebuilt when out of step
		s.byID = make(map[string]*execution, len(s.execs))
		for _, x := range s.execs {
			s.byID[x.rec.ID] = x
		}
	}
	return s.byID[id]
}

// exprContext is what expressions of this instance see.
func (s *instState) exprContext() *expr.Context {
	steps := s.steps
	it := s.iterTok
	if it != nil {
		steps = nil // built on use, with the iteration's own outputs
	}
	return &expr.Context{
		Input: s.input,
		Vars:  s.vars,
		Steps: steps,
		StepsFunc: func() map[string]any {
			if s.steps == nil {
				s.buildSteps()
			}
			if it != nil {
				return s.iterationSteps(it)
			}
			return s.steps
		},
		Instance: expr.Instance{
			ID: s.inst.ID, BusinessKey: s.inst.BusinessKey,
			Definition: s.inst.DefinitionID, Version: s.inst.DefinitionVersion,
		},
		Now:       s.t.now,
		Task:      s.task,
		Message:   s.message,
		Iteration: s.iter,
	}
}

// activityFor returns the definition activity of an execution.
func (s *instState) activityFor(x *execution) *definition.Activity {
	return s.cd.def.Activity(x.rec.ActivityID)
}

// buildSteps fills steps with the output of each activity's latest
// completion: the executions completed before this transaction in the order
// they finished (creation order for those finished at once), then those
// completed in it in the order they completed. So a path that goes on from
// an execution of an activity that ran several times sees that execution's
// output, however the completions interleaved.
func (s *instState) buildSteps() {
	s.steps = map[string]any{}
	done := make([]*execution, 0, len(s.execs))
	for _, x := range s.execs {
		if x.rec.Status == ExecCompleted || x.rec.Status == ExecSkipped {
			done = append(done, x)
		}
	}
	slices.SortStableFunc(done, func(a, b *execution) int {
		if a.doneSeq != b.doneSeq {
			return a.doneSeq - b.doneSeq // earlier transactions (0) first
		}
		return finishedAt(a).Compare(finishedAt(b))
	})
	for _, x := range done {
		s.noteOutput(x)
	}
}

// iterationSteps is steps as an iteration of a forEach sees it: the
// outputs of the executions of that iteration (its body, and a scope's
// activities inside it) over the instance's, so that parallel iterations
// never see each other's results.
func (s *instState) iterationSteps(it *iteration) map[string]any {
	var own []*execution
	for _, x := range s.execs {
		if x.rec.Status != ExecCompleted && x.rec.Status != ExecSkipped || isCompensation(x) || x.legacy {
			continue
		}
		if tok := x.token(); tok != nil && tok.Iter != nil && tok.Iter.Loop == it.Loop && tok.Iter.Index == it.Index {
			own = append(own, x)
		}
	}
	if len(own) == 0 {
		return s.steps
	}
	slices.SortStableFunc(own, func(a, b *execution) int {
		if a.doneSeq != b.doneSeq {
			return a.doneSeq - b.doneSeq
		}
		return finishedAt(a).Compare(finishedAt(b))
	})
	out := maps.Clone(s.steps)
	for _, x := range own {
		var v any
		if decodeJSON(x.rec.Output, &v) == nil {
			out[x.rec.ActivityID] = v
		}
	}
	return out
}

// newExecution starts an execution of activity id. Executions are listed
// in creation order (store: by created_at, then id), so an execution is
// never created before the instance's latest one, even when this node's
// clock is behind the one that made it.
func (s *instState) newExecution(activityID, typ string, tok *token) *execution {
	start, now := s.t.now, s.t.now
	if n := len(s.execs); n > 0 && !s.execs[n-1].rec.CreatedAt.Before(now) {
		now = s.execs[n-1].rec.CreatedAt
		if !s.execs[n-1].isNew {
			now = now.Add(time.Microsecond) // another node's id may sort after ours
		}
	}
	x := &execution{
		rec: &store.ActivityExecution{
			ID: newID(), InstanceID: s.inst.ID, ActivityID: activityID, Type: typ,
			Status: ExecScheduled, StartedAt: &start, CreatedAt: now,
		},
		isNew: true, dirty: true, tok: tok, tokDecoded: true,
	}
	s.execs = append(s.execs, x)
	if s.byID != nil {
		s.byID[x.rec.ID] = x
	}
	s.changed = true
	return x
}

func (s *instState) setStatus(x *execution, status string) {
	x.rec.Status = status
	x.dirty = true
	s.changed = true
	if status != ExecScheduled && status != ExecWaiting {
		now := s.t.now
		x.rec.FinishedAt = &now
	}
	if status == ExecCompleted || status == ExecSkipped {
		s.doneCount++
		x.doneSeq = s.doneCount
	}
	if s.steps != nil {
		s.noteOutput(x)
	}
}

// noteOutput records a completed or skipped execution's output in steps.
func (s *instState) noteOutput(x *execution) {
	if x.rec.Status != ExecCompleted && x.rec.Status != ExecSkipped {
		return
	}
	var out any
	if decodeJSON(x.rec.Output, &out) == nil {
		s.steps[x.rec.ActivityID] = out
	}
}

// hasActive reports whether any execution still runs or waits.
func (s *instState) hasActive() bool {
	return slices.ContainsFunc(s.execs, (*execution).active)
}

// settle decides the instance status once the step's activities have run.
func (s *instState) settle() error {
	if s.status.Finished() || s.status == store.InstanceSuspended {
		return nil
	}
	if s.inst.Status == store.InstanceSuspended && !s.rescheduled {
		// Leaving a suspension (resume, retry, skip, cancel): whatever it
		// held back runs now. Enqueueing is idempotent per execution.
		s.rescheduled = true
		if err := s.rescheduleScheduled(); err != nil {
			return err
		}
	}
	if err := s.settleScopes(); err != nil {
		return err
	}
	if s.status.Finished() || s.status == store.InstanceSuspended {
		return nil
	}
	if s.hasActive() {
		status := store.InstanceWaiting
		for _, x := range s.execs {
			if x.rec.Status == ExecScheduled {
				status = store.InstanceRunning
				break
			}
		}
		if s.status == store.InstanceCompensating {
			status = store.InstanceCompensating
		}
		if status != s.status {
			s.status = status
			s.changed = true
		}
		return nil
	}
	if s.status == store.InstanceCompensating {
		return s.compensateNext()
	}
	// No path is left running: the instance is complete.
	s.output = s.vars
	return s.finish(store.InstanceCompleted, nil)
}

// finish moves the instance to a final status and, for a child instance,
// resumes the parent.
func (s *instState) finish(status store.InstanceStatus, info *ErrorInfo) error {
	// A completed instance has no waiting path left, so its only possible
	// open bookmark is its deadline's; otherwise close whatever is open.
	mayHaveOpen := status != store.InstanceCompleted || s.inst.Deadline != nil
	s.status = status
	s.errInfo = info
	s.changed = true
	s.inst.Deadline = nil
	if mayHaveOpen {
		if err := s.closeBookmarks(); err != nil {
			return err
		}
	}
	data := map[string]any{}
	if info != nil {
		data["error"] = info
	}
	typ := map[store.InstanceStatus]string{
		store.InstanceCompleted: EventInstanceCompleted,
		store.InstanceFailed:    EventInstanceFailed,
		store.InstanceCancelled: EventInstanceCancelled,
		store.InstanceTimedOut:  EventInstanceTimedOut,
	}[status]
	s.t.emit(s, typ, nil, data)
	if s.inst.ParentID != "" {
		return s.resumeParent()
	}
	return nil
}

// closeBookmarks consumes every open bookmark of the instance: nothing may
// wake a finished instance.
func (s *instState) closeBookmarks() error {
	open, err := s.t.tx.BookmarkListOpen(s.t.ctx, &store.BookmarkListParams{InstanceID: s.inst.ID, Limit: 1000})
	if err != nil {
		return err
	}
	for _, b := range open {
		if _, err := s.t.tx.BookmarkConsume(s.t.ctx, &store.BookmarkConsumeParams{
			ID: b.ID, ConsumedBy: "engine", ConsumeKey: consumeClosed, At: s.t.now,
		}); err != nil {
			return raced(err)
		}
	}
	return nil
}

// raced turns a bookmark consumed meanwhile by a concurrent step (a
// completion, a message, a timer) into a retry of the whole unit of work,
// which then sees that step's outcome.
func raced(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: %w", store.ErrRetryable, err)
	}
	return err
}

// cancelActive cancels every running or waiting execution: its work item
// goes, and a handler running it sees its context cancelled (here at once
// after the commit; in another engine at its next heartbeat).
func (s *instState) cancelActive() error {
	for _, x := range s.execs {
		if !x.active() {
			continue
		}
		if err := s.cancelExec(x); err != nil {
			return err
		}
	}
	return nil
}

// cancelExec cancels one running or waiting execution (not its bookmarks
// or child instance).
func (s *instState) cancelExec(x *execution) error {
	s.setStatus(x, ExecCancelled)
	s.t.emit(s, EventActivityCancelled, x, nil)
	if _, err := s.t.tx.WorkDeleteByExecution(s.t.ctx, x.rec.ID); err != nil {
		return err // (a new execution may have queued its work in this step)
	}
	if x.isNew {
		return nil
	}
	if err := s.abandonCall(x, "cancelled"); err != nil {
		return err
	}
	s.t.cancelled = append(s.t.cancelled, x.rec.ID)
	return nil
}

// write stores the instance and the executions that changed.
func (s *instState) write() error {
	ctx, tx := s.t.ctx, s.t.tx
	for _, x := range s.execs {
		if !x.dirty {
			continue
		}
		// The instance is written with any change to its executions: its
		// version then tells which executions it has (see execCache).
		s.changed = true
		if x.loopDirty {
			x.rec.Input = mustJSON(x.loop)
			x.loopDirty = false
		}
		if x.isNew {
			rec, err := tx.ExecutionInsert(ctx, &store.ExecutionInsertParams{
				ID: x.rec.ID, InstanceID: x.rec.InstanceID, ActivityID: x.rec.ActivityID, Type: x.rec.Type,
				Status: x.rec.Status, Attempt: x.rec.Attempt, Input: x.rec.Input, Output: x.rec.Output,
				Error: x.rec.Error, StartedAt: x.rec.StartedAt, FinishedAt: x.rec.FinishedAt, CreatedAt: x.rec.CreatedAt,
				Token: x.token().encode(),
			})
			if err != nil {
				return err
			}
			if rec == nil { // pipelined: the row as the insert makes it
				inserted := *x.rec
				inserted.Version, inserted.Token = 1, x.token().encode()
				rec = &inserted
			}
			x.rec = rec
			continue
		}
		rec, err := tx.ExecutionUpdate(ctx, s.execUpdate(x))
		if err != nil {
			return err
		}
		if rec == nil { // pipelined: the row as the update leaves it
			updated := *x.rec
			updated.Version++
			rec = &updated
		}
		x.rec = rec
	}
	if !s.changed && !s.isNew {
		if s.cached {
			// What the step decided rests on the cached state: it
			// commits only if the instance is still at that version.
			return tx.InstanceCheckVersion(ctx, s.inst.ID, s.inst.Version)
		}
		return nil
	}
	vars, err := encodeJSON(s.vars)
	if err != nil {
		return err
	}
	upd := &store.InstanceUpdateParams{
		ID: s.inst.ID, Version: s.inst.Version, Status: s.status, Variables: vars,
		Output: s.inst.Output, Error: s.inst.Error, Deadline: s.inst.Deadline, UpdatedAt: s.t.now,
	}
	if s.output != nil {
		if upd.Output, err = encodeJSON(s.output); err != nil {
			return err
		}
	}
	if s.errInfo != nil {
		upd.Error = s.errInfo.json()
	}
	updated, err := tx.InstanceUpdate(ctx, upd)
	if err != nil {
		return err
	}
	if updated == nil { // pipelined: the row as the update leaves it
		after := *s.inst
		after.Version, after.Status, after.Variables = s.inst.Version+1, upd.Status, upd.Variables
		after.Output, after.Error, after.Deadline, after.UpdatedAt = upd.Output, upd.Error, upd.Deadline, upd.UpdatedAt
		updated = &after
	}
	s.inst = updated
	return nil
}

func (s *instState) execUpdate(x *execution) *store.ExecutionUpdateParams {
	return &store.ExecutionUpdateParams{
		ID: x.rec.ID, Version: x.rec.Version, Status: x.rec.Status, Attempt: x.rec.Attempt,
		Input: x.rec.Input, Output: x.rec.Output, Error: x.rec.Error,
		StartedAt: x.rec.StartedAt, FinishedAt: x.rec.FinishedAt,
	}
}

// enqueue makes an execution runnable by a worker (a task) or by the
// engine (a deferred step).
func (s *instState) enqueue(x *execution, handler string, runAt time.Time) error {
	kind := workStep
	if handler != "" {
		kind = workTask
	}
	return s.enqueueKind(x, kind, handler, runAt)
}

// enqueueKind queues work of kind for an execution.
func (s *instState) enqueueKind(x *execution, kind, handler string, runAt time.Time) error {
	t := s.t
	p := &store.WorkEnqueueParams{
		ID: newID(), InstanceID: s.inst.ID, ExecutionID: x.rec.ID, Kind: kind, Handler: handler,
		RunAt: runAt, CreatedAt: t.now,
	}
	carrier, inline := t.inlineSlot(x, kind, handler, runAt)
	if inline {
		p.LeaseOwner, p.LeaseExpiresAt = t.e.cfg.NodeID, t.now.Add(t.e.cfg.LeaseDuration)
	}
	_, err := t.tx.WorkEnqueue(t.ctx, p)
	if err != nil && inline && carrier == nil {
		t.pool.release(false)
	}
	if errors.Is(err, store.ErrDuplicate) {
		return nil // it has its work item already
	}
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", x.rec.ActivityID, err)
	}
	if !inline {
		t.wakeWork = true
		return nil
	}
	// The item as the claim would have returned it; the run starts once
	// the step commits.
	lease := p.LeaseExpiresAt
	item := &store.WorkItem{
		ID: p.ID, InstanceID: p.InstanceID, ExecutionID: p.ExecutionID, Kind: kind, Handler: handler,
		RunAt: lease, Attempts: 1, LeaseOwner: p.LeaseOwner, LeaseExpiresAt: &lease, CreatedAt: p.CreatedAt,
	}
	if carrier != nil {
		carrier.next = item
	} else {
		t.inline = append(t.inline, item)
	}
	return nil
}
