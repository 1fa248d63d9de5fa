package waymark

import (
	"fmt"
	"slices"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// A scope is entered as one activity: its execution waits while the paths
// of its sub-graph run, each carrying the scope execution in its token, and
// completes, in the settle of the step, once none of them runs or waits.
// Cancelling a scope (an interrupting boundary event of it, a cancel end)
// or failing it (an error of an activity inside it that nothing inside
// handles) cancels everything still active inside it in the same step,
// then runs the compensations of the activities that completed inside it,
// latest first, each in a step of its own like the instance's, and only
// then goes on: with the boundary event's path, the scope's onCancel, or
// the scope's own error routing.

// Scope phases, kept in a scope execution's input.
const (
	scopeCompensating = "compensating"
	// After the compensation: the scope is cancelled and goes on with
	// Next, or fails with Error.
	scopeThenCancel = "cancel"
	scopeThenFail   = "fail"
)

// scopeState is what a scope execution keeps in its input once it is being
// cancelled or failed; a running scope has none.
type scopeState struct {
	Phase string     `json:"phase"`
	Then  string     `json:"then"`
	Next  string     `json:"next,omitempty"`
	Error *ErrorInfo `json:"error,omitempty"`
}

func (x *execution) scopeState() *scopeState {
	if len(x.rec.Input) == 0 {
		return nil
	}
	st := &scopeState{}
	if decodeJSON(x.rec.Input, st) != nil || st.Phase == "" {
		return nil
	}
	return st
}

// startScope enters a scope: its execution waits, and its sub-graph
// starts with a path of its own.
func (s *instState) startScope(a *definition.Activity, x *execution) error {
	s.setStatus(x, ExecWaiting)
	return s.enter(a.Start, x.token().enterScope(x.rec.ID))
}

// settleScopes completes the running scopes none of whose paths runs or
// waits any more, and moves on the compensation of scopes being cancelled.
// Completing a scope may end the last path of the one around it, so it
// repeats until nothing changes.
func (s *instState) settleScopes() error {
	if !s.cd.def.HasScopes() {
		return nil
	}
	for pass := 0; pass < 64; pass++ {
		active := map[string]int{}
		comp := map[string]int{}
		var scopes []*execution
		for _, x := range s.execs {
			if !x.active() {
				continue
			}
			if x.rec.Type == string(definition.TypeScope) && x.rec.Status == ExecWaiting {
				scopes = append(scopes, x)
			}
			tok := x.token()
			if tok == nil {
				continue
			}
			for _, id := range tok.Scopes {
				active[id]++
			}
			if tok.Comp != "" {
				comp[tok.Comp]++
			}
		}
		progressed := false
		for _, x := range scopes {
			if !x.active() || s.status.Finished() || s.status == store.InstanceSuspended {
				continue
			}
			st := x.scopeState()
			switch {
			case st == nil && active[x.rec.ID] == 0:
				progressed = true
				if err := s.completeScope(s.activityFor(x), x); err != nil {
					return err
				}
			case st != nil && comp[x.rec.ID] == 0:
				progressed = true
				if err := s.scopeCompensateNext(x, st); err != nil {
					return err
				}
			}
		}
		if !progressed {
			return nil
		}
	}
	return nil
}

// completeScope completes a scope whose paths all ended. Its output is an
// object of the outputs of its own activities, by id (the latest
// completion of each).
func (s *instState) completeScope(a *definition.Activity, x *execution) error {
	var done []*execution
	for _, o := range s.execs {
		if (o.rec.Status == ExecCompleted || o.rec.Status == ExecSkipped) && !isCompensation(o) && o.token().innerScope() == x.rec.ID {
			done = append(done, o)
		}
	}
	slices.SortStableFunc(done, func(a, b *execution) int {
		if a.doneSeq != b.doneSeq {
			return a.doneSeq - b.doneSeq
		}
		return finishedAt(a).Compare(finishedAt(b))
	})
	out := map[string]any{}
	for _, o := range done {
		var v any
		if decodeJSON(o.rec.Output, &v) == nil {
			out[o.rec.ActivityID] = v
		}
	}
	return s.complete(a, x, out, a.Next)
}

// scopesRunning reports whether every scope execution the path runs in
// still runs: not ended, not being cancelled.
func (s *instState) scopesRunning(tok *token) bool {
	for _, id := range tok.Scopes {
		sx := s.exec(id)
		if sx == nil || sx.rec.Status != ExecWaiting || sx.scopeState() != nil {
			return false
		}
	}
	return true
}

// enclosingScope returns the innermost running scope execution x's path
// runs in (directly, or in a forEach iteration inside it), or nil.
func (s *instState) enclosingScope(x *execution) *execution {
	tok := x.token()
	if tok == nil || len(tok.Scopes) == 0 {
		return nil
	}
	sx := s.exec(tok.Scopes[len(tok.Scopes)-1])
	if sx == nil || sx.rec.Status != ExecWaiting || sx.scopeState() != nil {
		return nil
	}
	return sx
}

// cancelScope cancels a running scope: everything inside it that runs or
// waits is cancelled in this step (work items, open tasks, messages and
// timers, children), then its completed activities are compensated, then
// it goes on as then says.
func (s *instState) cancelScope(x *execution, st *scopeState) error {
	if !x.active() || x.scopeState() != nil {
		return nil // ended, or being cancelled already
	}
	if err := s.closeExecBookmarks(x); err != nil { // its boundary events
		return err
	}
	cancelled := map[string]bool{}
	for _, o := range s.execs {
		if o == x || !o.active() || !o.token().inScope(x.rec.ID) {
			continue
		}
		cancelled[o.rec.ID] = true
		if err := s.cancelExec(o); err != nil {
			return err
		}
		if o.rec.Type == string(definition.TypeSubworkflow) {
			if err := s.cancelChild(o, "scope "+x.rec.ActivityID+" cancelled"); err != nil {
				return err
			}
		}
	}
	if err := s.closeBookmarksOfAll(cancelled); err != nil {
		return err
	}
	st.Phase = scopeCompensating
	x.rec.Input = mustJSON(st)
	x.dirty = true
	s.changed = true
	s.t.emit(s, EventScopeCancelling, x, map[string]any{"then": st.Then, "cancelled": len(cancelled)})
	return s.scopeCompensateNext(x, st)
}

// scopeCompensationPlan lists, latest completion first, the executions
// completed inside scope execution sx still to be compensated.
func (s *instState) scopeCompensationPlan(sx *execution) []*execution {
	var plan []*execution
	for _, x := range s.compensationPlan() {
		if x.token().inScope(sx.rec.ID) {
			plan = append(plan, x)
		}
	}
	return plan
}

// scopeCompensateNext starts the next compensation of a scope being
// cancelled, or, when none is left, ends the scope as its state says.
func (s *instState) scopeCompensateNext(sx *execution, st *scopeState) error {
	if plan := s.scopeCompensationPlan(sx); len(plan) > 0 {
		return s.startCompensation(plan[0], &token{Comp: sx.rec.ID})
	}
	a := s.activityFor(sx)
	if st.Then == scopeThenFail {
		info := ErrorInfo{Code: CodePermanent, Message: "scope failed"}
		if st.Error != nil {
			info = *st.Error
		}
		sx.rec.Input = nil
		return s.failActivity(a, sx, info)
	}
	s.setStatus(sx, ExecCancelled)
	s.t.emit(s, EventActivityCancelled, sx, nil)
	tok := sx.token()
	if st.Next != "" {
		return s.enter(st.Next, tok)
	}
	if tok != nil && tok.Iter != nil && tok.innerScope() == "" && s.endsIteration(sx) {
		return s.iterationDone(sx) // a cancelled iteration has no result
	}
	return nil
}

// failScope fails the running scope sx because an activity inside it
// failed with info and nothing inside handled it.
func (s *instState) failScope(sx *execution, info ErrorInfo) error {
	return s.cancelScope(sx, &scopeState{Then: scopeThenFail, Error: &info})
}

// cancelByEnd runs the cancel of an end activity: the scope it names,
// enclosing the end or in the end's own region, is cancelled and goes on
// with its onCancel. A scope that is not running is left alone.
func (s *instState) cancelByEnd(a *definition.Activity, x *execution) error {
	target := s.cd.def.Activity(a.Cancel)
	if target == nil {
		return fmt.Errorf("instance %s: no scope %q in %s v%d", s.inst.ID, a.Cancel, s.inst.DefinitionID, s.inst.DefinitionVersion)
	}
	tok := x.token()
	var sx *execution
	if tok != nil {
		for _, id := range slices.Backward(tok.Scopes) {
			if o := s.exec(id); o != nil && o.rec.ActivityID == a.Cancel {
				sx = o
				break
			}
		}
	}
	if sx == nil && target.Parent == a.Parent {
		// A scope beside the end: the one running in the same region
		// execution (same enclosing scopes, same iteration).
		for _, o := range s.execs {
			if o.rec.ActivityID == a.Cancel && o.active() && sameRegion(o.token(), tok) {
				sx = o
				break
			}
		}
	}
	if sx == nil || !sx.active() {
		s.t.emit(s, EventScopeCancelling, x, map[string]any{"scope": a.Cancel, "running": false})
		return nil
	}
	return s.cancelScope(sx, &scopeState{Then: scopeThenCancel, Next: target.OnCancel})
}

// sameRegion reports whether two paths run in the same execution of a
// region: inside the same scope executions and the same iteration.
func sameRegion(a, b *token) bool {
	var as, bs []string
	var ai, bi *iteration
	if a != nil {
		as, ai = a.Scopes, a.Iter
	}
	if b != nil {
		bs, bi = b.Scopes, b.Iter
	}
	if !slices.Equal(as, bs) {
		return false
	}
	for ai != nil && bi != nil {
		if ai.Loop != bi.Loop || ai.Index != bi.Index {
			return false
		}
		ai, bi = ai.Outer, bi.Outer
	}
	return ai == nil && bi == nil
}

// coveredByScope reports whether x completed inside a scope that completed
// and names a compensation of its own: that handler undoes the scope as a
// whole, in place of the compensations of the activities inside it.
func (s *instState) coveredByScope(x *execution) bool {
	tok := x.token()
	if tok == nil {
		return false
	}
	for _, id := range tok.Scopes {
		sx := s.exec(id)
		if sx == nil || sx.rec.Status != ExecCompleted {
			continue
		}
		if a := s.activityFor(sx); a != nil && a.Compensate != "" {
			return true
		}
	}
	return false
}

// startCompensation starts the compensation of orig, with tok (nil for the
// instance's own compensation).
func (s *instState) startCompensation(orig *execution, tok *token) error {
	a := s.cd.def.Activity(s.cd.def.Activity(orig.rec.ActivityID).Compensate)
	x := s.newExecution(a.ID, string(a.Type), tok)
	x.compensates = orig.rec.ID
	in, err := encodeJSON(compensationInput{Compensates: orig.rec.ID, ActivityID: orig.rec.ActivityID, Output: orig.rec.Output})
	if err != nil {
		return err
	}
	x.rec.Input = in
	s.t.emit(s, EventActivityStarted, x, map[string]any{"compensates": orig.rec.ActivityID})
	if a.Type == definition.TypeTask {
		return s.enqueue(x, a.Handler, s.t.now)
	}
	return s.run(a, x)
}
