package waymark

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// taskPayload is what a user task's bookmark carries.
type taskPayload struct {
	Title          string   `json:"title,omitempty"`
	CandidateRoles []string `json:"candidateRoles,omitempty"`
	Outcomes       []string `json:"outcomes,omitempty"`
	DueAt          string   `json:"dueAt,omitempty"`
	// Form is the JSON Schema of the completion data.
	Form json.RawMessage `json:"form,omitempty"`
}

// ConsumeKeys the engine writes when it, not a user or a message, consumes
// a bookmark.
const (
	consumeClosed  = "closed"  // the instance ended or moved on
	consumeTimer   = "timer"   // the bookmark's due time passed
	consumeSkipped = "skipped" // an operator skipped the activity
)

// deadlineKey is the key of the Timer bookmark that enforces an instance's
// deadline (it has no activity).
const deadlineKey = "instance-deadline"

func (s *instState) openUserTask(a *definition.Activity, x *execution) error {
	c := s.exprContext()
	p := taskPayload{CandidateRoles: a.CandidateRoles, Outcomes: a.Outcomes, Form: a.Form}
	var err error
	if a.Title != nil {
		if p.Title, err = a.Title.EvalString(s.t.ctx, c); err != nil {
			return s.failActivity(a, x, evalError("title", err))
		}
	}
	assignee := ""
	if a.Assignee != nil {
		v, err := a.Assignee.Eval(s.t.ctx, c)
		if err != nil {
			return s.failActivity(a, x, evalError("assignee", err))
		}
		if v != nil {
			assignee = fmt.Sprint(v)
		}
	}
	var due *time.Time
	if a.Due > 0 {
		d := s.t.now.Add(a.Due)
		p.DueAt = d.Format(time.RFC3339Nano)
		if a.OnTimeout != "" {
			// Only an overdue task with somewhere to go is the timer
			// service's business.
			due = &d
		}
	}
	payload, err := encodeJSON(p)
	if err != nil {
		return err
	}
	b, err := s.t.tx.BookmarkInsert(s.t.ctx, &store.BookmarkInsertParams{
		ID: newID(), InstanceID: s.inst.ID, ExecutionID: x.rec.ID, ActivityID: a.ID,
		Type: store.BookmarkUserAction, Payload: payload, Assignee: assignee, DueAt: due, CreatedAt: s.t.now,
	})
	if err != nil {
		return err
	}
	s.setStatus(x, ExecWaiting)
	s.t.wakeTimers = s.t.wakeTimers || due != nil
	s.t.emit(s, EventTaskCreated, x, map[string]any{"taskId": b.ID, "title": p.Title, "assignee": assignee})
	return nil
}

// messageKeySep joins a message's name and correlation in a bookmark key.
const messageKeySep = "\x1f"

// messageKey is the bookmark key a receive waits under.
func messageKey(name, correlation string) string { return name + messageKeySep + correlation }

func (s *instState) openReceive(a *definition.Activity, x *execution) error {
	correlation := ""
	if a.Correlation != nil {
		var err error
		if correlation, err = a.Correlation.EvalString(s.t.ctx, s.exprContext()); err != nil {
			return s.failActivity(a, x, evalError("correlation", err))
		}
	}
	// A message that arrived before this receive is waiting for it. The
	// lock keeps a delivery of this (name, correlation) from slipping in
	// between: it either committed before (and is taken here) or waits and
	// then finds the bookmark.
	if err := s.t.tx.MessageLock(s.t.ctx, a.Message, correlation); err != nil {
		return err
	}
	m, err := s.t.tx.MessageTake(s.t.ctx, &store.MessageTakeParams{
		Name: a.Message, Correlation: correlation, ConsumedBy: x.rec.ID, Now: s.t.now,
	})
	switch {
	case err == nil:
		return s.receive(a, x, m.Payload, m.ID)
	case !isNotFound(err):
		return err
	}
	var due *time.Time
	if a.Timeout > 0 {
		d := s.t.now.Add(a.Timeout)
		due = &d
	}
	if _, err := s.t.tx.BookmarkInsert(s.t.ctx, &store.BookmarkInsertParams{
		ID: newID(), InstanceID: s.inst.ID, ExecutionID: x.rec.ID, ActivityID: a.ID,
		Type: store.BookmarkExternalMessage, Key: messageKey(a.Message, correlation), DueAt: due, CreatedAt: s.t.now,
	}); err != nil {
		return err
	}
	s.setStatus(x, ExecWaiting)
	s.t.wakeTimers = s.t.wakeTimers || due != nil
	return nil
}

// receive completes a receive with a message's payload.
func (s *instState) receive(a *definition.Activity, x *execution, payload json.RawMessage, messageID string) error {
	var msg any
	if err := decodeJSON(payload, &msg); err != nil {
		return fmt.Errorf("message payload: %w", err)
	}
	s.t.emit(s, EventMessageCorrelated, x, map[string]any{"message": a.Message, "messageId": messageID})
	s.message = msg
	if s.message == nil {
		s.message = map[string]any{}
	}
	return s.complete(a, x, msg, a.Next)
}

func (s *instState) openTimer(a *definition.Activity, x *execution) error {
	due := s.t.now.Add(a.Duration)
	if a.Until != nil {
		v, err := a.Until.EvalString(s.t.ctx, s.exprContext())
		if err != nil {
			return s.failActivity(a, x, evalError("until", err))
		}
		if due, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return s.failActivity(a, x, evalError("until", fmt.Errorf("%q is not an RFC 3339 time", v)))
		}
	}
	due = due.UTC().Truncate(time.Microsecond)
	if _, err := s.t.tx.BookmarkInsert(s.t.ctx, &store.BookmarkInsertParams{
		ID: newID(), InstanceID: s.inst.ID, ExecutionID: x.rec.ID, ActivityID: a.ID,
		Type: store.BookmarkTimer, DueAt: &due, CreatedAt: s.t.now,
	}); err != nil {
		return err
	}
	x.rec.Input, _ = encodeJSON(map[string]any{"dueAt": due})
	s.setStatus(x, ExecWaiting)
	s.t.wakeTimers = true
	return nil
}

// armDeadline creates the bookmark that times the instance out.
func (s *instState) armDeadline(deadline time.Time) error {
	_, err := s.t.tx.BookmarkInsert(s.t.ctx, &store.BookmarkInsertParams{
		ID: newID(), InstanceID: s.inst.ID, Type: store.BookmarkTimer, Key: deadlineKey,
		DueAt: &deadline, CreatedAt: s.t.now,
	})
	s.t.wakeTimers = true
	return err
}

// startChild starts a subworkflow instance; the execution waits for it.
func (s *instState) startChild(a *definition.Activity, x *execution) error {
	input, err := a.Input.Eval(s.t.ctx, s.exprContext())
	if err != nil {
		return s.failActivity(a, x, evalError("input", err))
	}
	raw, err := encodeJSON(input)
	if err != nil {
		return err
	}
	s.setStatus(x, ExecWaiting)
	child, err := s.t.startInstance(newID(), &StartParams{
		Definition: a.Definition, Version: a.Version, Input: raw, BusinessKey: s.inst.BusinessKey,
		// The child's spans join the parent's trace.
		TraceParent: telemetry.FormatTraceparent(instanceTrace(s.inst)),
	}, s.inst.ID, x.rec.ID)
	if err != nil {
		if isNotFound(err) || isInvalid(err) {
			return s.failActivity(a, x, ErrorInfo{Code: CodePermanent, Message: "start subworkflow: " + err.Error()})
		}
		return err
	}
	x.rec.Input, _ = encodeJSON(map[string]any{"childId": child.inst.ID})
	x.dirty = true
	if a.Timeout > 0 && x.rec.Status == ExecWaiting {
		// The activity's own timeout: a timer of the parent's execution,
		// closed when the child ends first (see resumeParent).
		due := s.t.now.Add(a.Timeout)
		if _, err := s.t.tx.BookmarkInsert(s.t.ctx, &store.BookmarkInsertParams{
			ID: newID(), InstanceID: s.inst.ID, ExecutionID: x.rec.ID, ActivityID: a.ID,
			Type: store.BookmarkTimer, Key: subworkflowTimeoutKey, DueAt: &due, CreatedAt: s.t.now,
		}); err != nil {
			return err
		}
		s.t.wakeTimers = true
	}
	return nil
}

// subworkflowTimeoutKey is the key of the Timer bookmark that enforces a
// subworkflow activity's timeout.
const subworkflowTimeoutKey = "subworkflow-timeout"

// subworkflowTimedOut handles a subworkflow activity whose timeout passed
// before its child ended: the child (and its children) is cancelled,
// and the activity follows onTimeout, or fails with a timeout (which fails
// the instance).
func (s *instState) subworkflowTimedOut(a *definition.Activity, x *execution) error {
	if err := s.cancelChild(x, "subworkflow timed out"); err != nil {
		return err
	}
	if a.OnTimeout != "" {
		s.setStatus(x, ExecExpired)
		return s.enter(a.OnTimeout, x.token())
	}
	return s.failActivity(a, x, ErrorInfo{Code: CodeTimeout, Message: fmt.Sprintf("the subworkflow did not end within %s", a.Timeout)})
}

// closeExecBookmarks consumes the open bookmarks of one execution.
func (s *instState) closeExecBookmarks(x *execution) error {
	open, err := s.t.tx.BookmarkListOpen(s.t.ctx, &store.BookmarkListParams{InstanceID: s.inst.ID, Limit: 1000})
	if err != nil {
		return err
	}
	for _, b := range open {
		if b.ExecutionID != x.rec.ID {
			continue
		}
		if _, err := s.t.tx.BookmarkConsume(s.t.ctx, &store.BookmarkConsumeParams{
			ID: b.ID, ConsumedBy: "engine", ConsumeKey: consumeClosed, At: s.t.now,
		}); err != nil {
			return raced(err)
		}
	}
	return nil
}

// resumeParent hands a finished child's result to the parent's waiting
// subworkflow execution.
func (s *instState) resumeParent() error {
	parent, err := s.t.load(s.inst.ParentID)
	if err != nil {
		return err
	}
	x := parent.exec(s.inst.ParentExecutionID)
	if x == nil || x.rec.Status != ExecWaiting || parent.status.Finished() {
		return nil
	}
	a := parent.cd.def.Activity(x.rec.ActivityID)
	if a.Timeout > 0 {
		if err := parent.closeExecBookmarks(x); err != nil {
			return err
		}
	}
	parent.t.emit(parent, EventSubworkflowFinished, x, map[string]any{"childId": s.inst.ID, "status": s.status})
	if s.status == store.InstanceCompleted {
		return parent.complete(a, x, s.output, a.Next)
	}
	info := ErrorInfo{Code: CodeBusiness, Name: "subworkflow." + string(s.status),
		Message: fmt.Sprintf("subworkflow %s %s", s.inst.ID, s.status)}
	if s.errInfo != nil {
		info.Message += ": " + s.errInfo.Message
	}
	if s.status == store.InstanceTimedOut && a.OnTimeout != "" {
		parent.setStatus(x, ExecExpired)
		return parent.enter(a.OnTimeout, x.token())
	}
	if a.ErrorTarget(info.Name) == "" {
		info.Code = CodePermanent
	}
	return parent.failActivity(a, x, info)
}

// cancelChildren cancels the running children of the instance.
func (s *instState) cancelChildren() error {
	for _, x := range s.execs {
		if x.rec.Type != string(definition.TypeSubworkflow) || x.rec.Status != ExecCancelled {
			continue
		}
		if err := s.cancelChild(x, "parent ended"); err != nil {
			return err
		}
	}
	return nil
}

// cancelChild cancels the child instance a subworkflow execution started,
// with its own children, if it has not ended.
func (s *instState) cancelChild(x *execution, reason string) error {
	var in struct {
		ChildID string `json:"childId"`
	}
	if decodeJSON(x.rec.Input, &in) != nil || in.ChildID == "" {
		return nil
	}
	child, err := s.t.load(in.ChildID)
	if err != nil {
		return err
	}
	if child.status.Finished() {
		return nil
	}
	if err := child.cancelActive(); err != nil {
		return err
	}
	if err := child.cancelChildren(); err != nil {
		return err
	}
	child.status = store.InstanceCancelled
	child.changed = true
	if err := child.closeBookmarks(); err != nil {
		return err
	}
	child.t.emit(child, EventInstanceCancelled, nil, map[string]any{"reason": reason})
	return nil
}
