package waymark

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

// enter creates an execution of activity id and runs it as far as it can go
// inside this transaction. An instance that has ended or is compensating
// starts nothing new: the path that led here ends.
func (s *instState) enter(id string, tok *token) error {
	if s.status.Finished() || s.status == store.InstanceCompensating {
		return nil
	}
	a := s.cd.def.Activity(id)
	if a == nil {
		return fmt.Errorf("instance %s: no activity %q in %s v%d", s.inst.ID, id, s.inst.DefinitionID, s.inst.DefinitionVersion)
	}
	if tok != nil && len(tok.Scopes) > 0 && !s.scopesRunning(tok) {
		return nil // a scope it would run in was cancelled or failed in this step
	}
	x := s.newExecution(a.ID, string(a.Type), tok)
	s.t.emit(s, EventActivityStarted, x, nil)
	switch {
	case s.status == store.InstanceSuspended:
		return nil // runs after the resume (settle queues it)
	case s.t.budget <= 0:
		return s.enqueue(x, "", s.t.now) // runs in a step of its own
	}
	return s.run(a, x)
}

// run executes a scheduled execution of a, and arms its boundary timers if
// it is left running or waiting.
func (s *instState) run(a *definition.Activity, x *execution) error {
	if err := s.runActivity(a, x); err != nil {
		return err
	}
	if len(a.Boundary) > 0 && x.active() {
		return s.armBoundary(a, x)
	}
	return nil
}

// runActivity does what an activity of a's type does.
func (s *instState) runActivity(a *definition.Activity, x *execution) error {
	s.t.budget--
	ctx := s.t.ctx
	outer, outerTok := s.iter, s.iterTok
	s.iter = iterationOf(x)
	s.iterTok = nil
	if s.iter != nil {
		s.iterTok = x.token().Iter
	}
	defer func() { s.iter, s.iterTok = outer, outerTok }()
	switch a.Type {
	case definition.TypeTask:
		input, err := s.evalInput(a.Input)
		if err != nil {
			return s.failActivity(a, x, ErrorInfo{Code: CodePermanent, Message: err.Error()})
		}
		x.rec.Input = input
		x.dirty = true
		return s.enqueue(x, a.Handler, s.t.now)

	case definition.TypeSet:
		// Assign in the order written, each value seeing the ones before
		// it, on a copy: a failing value leaves the variables as they were.
		c := s.exprContext()
		c.Vars = maps.Clone(s.vars)
		assigned := map[string]any{}
		for _, v := range a.Vars {
			val, err := v.Value.Eval(ctx, c)
			if err != nil {
				return s.failActivity(a, x, evalError("vars."+v.Name, err))
			}
			c.Vars[v.Name] = val
			assigned[v.Name] = val
		}
		if s.iter != nil {
			// An iteration's variables are its own: what it assigns is its
			// result, never the instance's variables.
			return s.complete(a, x, assigned, a.Next)
		}
		s.vars = c.Vars
		return s.complete(a, x, nil, a.Next)

	case definition.TypeSwitch:
		if a.Inclusive {
			return s.runInclusive(a, x)
		}
		c := s.exprContext()
		for i, cs := range a.Cases {
			ok, err := cs.When.EvalBool(ctx, c)
			if err != nil {
				return s.failActivity(a, x, evalError(fmt.Sprintf("cases[%d].when", i), err))
			}
			if ok {
				return s.complete(a, x, map[string]any{"case": i, "next": cs.Next}, cs.Next)
			}
		}
		if a.Default == "" {
			return s.failActivity(a, x, ErrorInfo{Code: CodePermanent, Message: "no case matched and the switch has no default"})
		}
		return s.complete(a, x, map[string]any{"case": "default", "next": a.Default}, a.Default)

	case definition.TypeEmit:
		payload, err := a.Payload.Eval(ctx, s.exprContext())
		if err != nil {
			return s.failActivity(a, x, evalError("payload", err))
		}
		s.t.emitCustom(s, a.Event, x, payload)
		return s.complete(a, x, payload, a.Next)

	case definition.TypeParallel:
		if err := s.complete(a, x, nil, ""); err != nil {
			return err
		}
		for i, b := range a.Branches {
			if err := s.enter(b, x.token().fork(x.rec.ID, i, len(a.Branches))); err != nil {
				return err
			}
		}
		return nil

	case definition.TypeJoin:
		return s.arriveAtJoin(a, x)

	case definition.TypeUserTask:
		return s.openUserTask(a, x)

	case definition.TypeReceive:
		return s.openReceive(a, x)

	case definition.TypeTimer:
		return s.openTimer(a, x)

	case definition.TypeSubworkflow:
		return s.startChild(a, x)

	case definition.TypeFail:
		msg := "failed at " + a.ID
		if a.ErrorMessage != nil {
			m, err := a.ErrorMessage.EvalString(ctx, s.exprContext())
			if err != nil {
				return s.failActivity(a, x, evalError("message", err))
			}
			msg = m
		}
		code := a.ErrorCode
		if code == "" {
			code = CodePermanent
		}
		return s.failActivity(a, x, ErrorInfo{Code: code, Message: msg})

	case definition.TypeEnd:
		if err := s.complete(a, x, nil, ""); err != nil {
			return err
		}
		switch {
		case a.Cancel != "":
			return s.cancelByEnd(a, x)
		case a.Terminate && a.TerminateCompensate && s.pendingCompensations() > 0:
			// Compensate what completed, then end as completed.
			return s.fail(store.InstanceCompleted, &ErrorInfo{Code: CodeTerminated, Message: "terminated at " + a.ID})
		case a.Terminate:
			return s.terminate()
		}
		return nil

	case definition.TypeScope:
		return s.startScope(a, x)

	case definition.TypeHTTP:
		return s.startCall(a, x)

	case definition.TypeForEach:
		return s.startForEach(a, x)

	case definition.TypeFirstOf:
		return s.startRace(a, x)
	}
	return fmt.Errorf("activity %s: unsupported type %q", a.ID, a.Type)
}

func evalError(field string, err error) ErrorInfo {
	return ErrorInfo{Code: CodePermanent, Message: field + ": " + err.Error()}
}

// evalInput evaluates a task's input, or passes the instance input on.
func (s *instState) evalInput(v *definition.Value) (json.RawMessage, error) {
	if v == nil {
		if len(s.inst.Input) == 0 {
			return json.RawMessage("null"), nil
		}
		return s.inst.Input, nil
	}
	val, err := v.Eval(s.t.ctx, s.exprContext())
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return encodeJSON(val)
}

// complete finishes an execution with output and follows next ("" ends the
// path). A compensation execution never follows next.
func (s *instState) complete(a *definition.Activity, x *execution, output any, next string) error {
	out, err := encodeJSON(output)
	if err != nil {
		return err
	}
	x.rec.Output = out
	s.setStatus(x, ExecCompleted)
	if len(a.Boundary) > 0 {
		if err := s.closeExecBookmarks(x); err != nil {
			return err
		}
	}
	tok := x.token()
	inLoop := tok != nil && tok.Iter != nil
	if a.Output != "" && output != nil && !inLoop {
		s.vars[a.Output] = output
	}
	s.t.emit(s, EventActivityCompleted, x, nil)
	if isCompensation(x) {
		return nil
	}
	if tok != nil && tok.Race != "" {
		// The first branch of a firstOf to finish wins, in this step.
		if err := s.winRace(x, tok.Race); err != nil {
			return err
		}
		tok = tok.won()
	}
	if next == "" {
		if inLoop && tok.innerScope() == "" && s.endsIteration(x) {
			return s.iterationDone(x)
		}
		return nil
	}
	return s.enter(next, tok)
}

// failActivity records a failed execution and routes the error: a business
// error to the activity's onError target, anything else fails the instance.
func (s *instState) failActivity(a *definition.Activity, x *execution, info ErrorInfo) error {
	info.ActivityID = a.ID
	x.rec.Error = info.json()
	s.setStatus(x, ExecFailed)
	if len(a.Boundary) > 0 {
		if err := s.closeExecBookmarks(x); err != nil {
			return err
		}
	}
	s.t.emit(s, EventActivityFailed, x, map[string]any{"error": info, "class": info.Code})
	if isCompensation(x) {
		// A compensation that fails leaves the instance for an operator;
		// resuming it runs the compensation again.
		return s.suspendCompensation(info)
	}
	if info.Code == CodeBusiness {
		if to := a.ErrorTarget(info.Name); to != "" {
			return s.enter(to, x.token())
		}
	}
	if sx := s.enclosingScope(x); sx != nil {
		return s.failScope(sx, info) // the scope fails: its onError may route it
	}
	return s.fail(store.InstanceFailed, &info)
}

// fail ends the instance with status after compensating what it completed.
// Every other path stops at once: running and waiting executions are
// cancelled, children cancelled, and nothing new starts (see enter). The
// first failure wins: an instance already compensating or ended keeps its
// error and its compensation.
func (s *instState) fail(status store.InstanceStatus, info *ErrorInfo) error {
	if s.status.Finished() || s.status == store.InstanceCompensating {
		return nil
	}
	if err := s.cancelActive(); err != nil {
		return err
	}
	if err := s.cancelChildren(); err != nil {
		return err
	}
	if s.pendingCompensations() > 0 {
		s.status = store.InstanceCompensating
		s.errInfo = info
		s.changed = true
		s.setFinalStatus(status)
		s.t.emit(s, EventInstanceCompensate, nil, map[string]any{"then": status})
		return s.compensateNext()
	}
	return s.finish(status, info)
}

// suspendCompensation suspends an instance whose compensation failed. Its
// error record keeps what it needs to go on compensating when resumed: the
// error that started the compensation (Cause) and the final status (Then).
func (s *instState) suspendCompensation(info ErrorInfo) error {
	orig, err := s.currentError()
	if err != nil {
		return err
	}
	if orig != nil {
		if orig.Cause != nil { // it failed before: keep the first cause
			orig = orig.Cause
		}
		info.Then, info.Cause = orig.Then, orig
	}
	return s.suspend(&info)
}

// currentError is the instance's error record: set in this step, or stored.
func (s *instState) currentError() (*ErrorInfo, error) {
	if s.errInfo != nil {
		return s.errInfo, nil
	}
	info, err := errorInfoFrom(s.inst.Error)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", s.inst.ID, err)
	}
	return info, nil
}

// inCompensation reports whether the instance has started compensating.
func (s *instState) inCompensation() bool {
	return slices.ContainsFunc(s.execs, func(x *execution) bool {
		return isCompensation(x) && (x.token() == nil || x.token().Comp == "")
	})
}

func (s *instState) suspend(info *ErrorInfo) error {
	s.status = store.InstanceSuspended
	s.changed = true
	if info != nil {
		s.errInfo = info
	}
	s.t.emit(s, EventInstanceSuspended, nil, map[string]any{"error": info})
	return nil
}

// joinState is what a waiting join execution keeps in its input: how many
// branches arrived, and, for a join of forks, which fork execution they
// belong to and the share of it they cover.
type joinState struct {
	Arrived int    `json:"arrived"`
	Fork    string `json:"fork,omitempty"`
	Share   string `json:"share,omitempty"`
}

// arriveAtJoin records a branch arriving at a join and continues once the
// arrivals cover the fork the join closes: every branch of it, however the
// branches forked again on the way (see definition.JoinDepth). Arrivals of
// different forks of the same join (a join inside a loop) wait apart.
// An arrival that has not forked since the join's depth (a switch skipped
// the parallel) passes straight through. Executions stored before tokens
// existed are counted as before: the branches of the parallel that feeds
// the join.
func (s *instState) arriveAtJoin(a *definition.Activity, x *execution) error {
	depth := s.cd.def.JoinDepth(a.ID)
	tok := x.token()
	byToken := !x.legacy
	if byToken && (tok == nil || len(tok.Frames) <= depth) {
		return s.complete(a, x, nil, a.Next)
	}
	if byToken && tok.Side > 0 && depth < tok.Side-1 {
		// A path started beside a branch by a non-interrupting boundary
		// event: the join counts the branch, so this path ends here.
		return s.complete(a, x, map[string]any{"absorbed": true}, "")
	}
	fork := ""
	if byToken {
		fork = tok.Frames[depth].Fork
	}
	var open *execution
	var state joinState
	for _, o := range s.execs {
		if o == x || o.rec.ActivityID != a.ID || o.rec.Status != ExecWaiting {
			continue
		}
		var st joinState
		if err := decodeJSON(o.rec.Input, &st); err != nil {
			return fmt.Errorf("join %s state: %w", a.ID, err)
		}
		if st.Fork == fork {
			open, state = o, st
			break
		}
	}
	switch {
	case open == nil:
		open = x
		state = joinState{Fork: fork}
	case x.isNew:
		// This arrival folds into the open join execution.
		s.execs = slices.DeleteFunc(s.execs, func(o *execution) bool { return o == x })
		delete(s.byID, x.rec.ID)
		s.t.events = slices.DeleteFunc(s.t.events, func(ev *Event) bool { return ev.ExecutionID == x.rec.ID })
	default:
		// A deferred arrival was stored already: close it.
		s.setStatus(x, ExecCompleted)
	}
	state.Arrived++
	ready := state.Arrived >= max(s.cd.joinExpect[a.ID], 1)
	if byToken {
		covered := new(big.Rat)
		if state.Share != "" {
			if _, ok := covered.SetString(state.Share); !ok {
				return fmt.Errorf("join %s state: share %q", a.ID, state.Share)
			}
		}
		covered.Add(covered, tok.share(depth))
		state.Share = covered.RatString()
		ready = covered.Cmp(big.NewRat(1, 1)) >= 0
	}
	open.rec.Input = mustJSON(state)
	open.dirty = true
	if !ready {
		s.setStatus(open, ExecWaiting)
		return nil
	}
	if byToken {
		open.tok, open.tokDecoded = tok.up(depth), true // what goes on from the join
	}
	return s.complete(a, open, nil, a.Next)
}

// setFinalStatus remembers, in the instance's error record, which status
// the instance takes when compensation is over.
func (s *instState) setFinalStatus(status store.InstanceStatus) {
	if s.errInfo == nil {
		s.errInfo = &ErrorInfo{Code: CodePermanent, Message: string(status)}
	}
	s.errInfo.Then = string(status)
}

// pendingCompensations counts completed executions whose activity names a
// compensation that has not run yet.
func (s *instState) pendingCompensations() int {
	return len(s.compensationPlan())
}

// compensationPlan lists, latest completion first, the executions still to
// be compensated: an execution counts as compensated once a compensation
// of it completed (or an operator skipped it), and as under way while one
// runs or waits; a failed or cancelled compensation leaves it to do.
func (s *instState) compensationPlan() []*execution {
	done := map[string]bool{}
	for _, x := range s.execs {
		if x.compensates != "" && (x.active() || x.rec.Status == ExecCompleted || x.rec.Status == ExecSkipped) {
			done[x.compensates] = true
		}
	}
	scopes := s.cd.def.HasScopes()
	var plan []*execution
	for _, x := range s.execs {
		if x.rec.Status != ExecCompleted || isCompensation(x) || done[x.rec.ID] || scopes && s.coveredByScope(x) {
			continue
		}
		if a := s.cd.def.Activity(x.rec.ActivityID); a != nil && a.Compensate != "" {
			plan = append(plan, x)
		}
	}
	// Latest completion first; executions finished in the same step in
	// reverse creation order.
	slices.Reverse(plan)
	slices.SortStableFunc(plan, func(a, b *execution) int { return finishedAt(b).Compare(finishedAt(a)) })
	return plan
}

func finishedAt(x *execution) time.Time {
	if x.rec.FinishedAt == nil {
		return time.Time{}
	}
	return *x.rec.FinishedAt
}

// compensationInput marks a compensation execution and carries what it undoes.
type compensationInput struct {
	Compensates string          `json:"$compensates"`
	ActivityID  string          `json:"activityId"`
	Output      json.RawMessage `json:"output,omitempty"`
}

// compensationOf returns the id of the execution that rec compensates, or
// "" when rec is not a compensation. It is read once, when the execution is
// loaded.
func compensationOf(rec *store.ActivityExecution) string {
	if !bytes.Contains(rec.Input, []byte(`"$compensates"`)) {
		return ""
	}
	var in compensationInput
	if json.Unmarshal(rec.Input, &in) != nil {
		return ""
	}
	return in.Compensates
}

func isCompensation(x *execution) bool { return x.compensates != "" }

// compensateNext starts the next compensation, or finishes the instance
// with the status remembered when compensation began.
func (s *instState) compensateNext() error {
	plan := s.compensationPlan()
	if len(plan) == 0 {
		if s.errInfo == nil && len(s.inst.Error) > 0 {
			// Compensation began in an earlier step: its error record,
			// stored with the instance, says how the instance ends.
			s.errInfo = &ErrorInfo{}
			if err := json.Unmarshal(s.inst.Error, s.errInfo); err != nil {
				return fmt.Errorf("instance %s error record: %w", s.inst.ID, err)
			}
		}
		status := store.InstanceFailed
		if s.errInfo != nil && s.errInfo.Then != "" {
			status = store.InstanceStatus(s.errInfo.Then)
		}
		if status == store.InstanceCompleted {
			// A terminate end that compensated: the instance completes,
			// with its variables as output and no error.
			if err := s.closeBookmarks(); err != nil {
				return err
			}
			s.output = s.vars
			s.inst.Error = nil
			return s.finish(store.InstanceCompleted, nil)
		}
		if s.errInfo != nil && s.errInfo.Cause != nil {
			s.errInfo = s.errInfo.Cause // the error that began it all
		}
		return s.finish(status, s.errInfo)
	}
	return s.startCompensation(plan[0], nil)
}
