package waymark

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/waymarkdev/waymark/expr"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// StartParams start an instance.
type StartParams struct {
	// Definition is the definition id.
	Definition string
	// Version of the definition; 0 means the latest.
	Version int
	// Input is the start input (JSON), validated against the definition's
	// input schema.
	Input json.RawMessage
	// BusinessKey is an application key to find the instance by.
	BusinessKey string
	// IdempotencyKey makes a retried start return the instance the first
	// call created instead of starting another. Reusing a key for a start
	// with another definition, version, input or business key is a
	// conflict (ErrConflict).
	IdempotencyKey string
	// Actor is who starts the instance, for the log.
	Actor string
	// TraceParent is a W3C traceparent the instance's trace continues:
	// its spans, log lines, events and outgoing calls carry its trace id.
	// Empty: the span in ctx, if any, else a new trace.
	TraceParent string
}

// StartInstance starts an instance and runs it up to its first wait or
// task, all in one transaction.
//
// An instance that needs nothing from outside may complete inside the call:
// the returned instance then has its final status and output. Its Created
// is false when IdempotencyKey found the instance of an earlier start.
func (e *Engine) StartInstance(ctx context.Context, p *StartParams) (*Instance, error) {
	if p == nil || p.Definition == "" {
		return nil, invalid("definition", "is required")
	}
	if len(p.Input) > 0 && !json.Valid(p.Input) {
		return nil, invalid("input", "is not valid JSON")
	}
	if p.TraceParent != "" {
		sc, err := telemetry.ParseTraceparent(p.TraceParent)
		if err != nil {
			return nil, invalid("traceParent", "%s", err.Error())
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	// The start span: the root of the instance's trace, or a child of the
	// caller's. Its context is stored with the instance.
	ctx, span := e.tel.Tracer.Start(ctx, telemetry.SpanInstanceStart, trace.WithAttributes(
		attribute.String(telemetry.AttrDefinition, p.Definition)))
	var spanErr error
	defer func() { telemetry.EndSpan(span, spanErr) }()
	traceParent := telemetry.Traceparent(ctx) // "" when neither traces
	var inst *store.Instance
	var started *instState
	// The id is chosen once: if a commit whose outcome was unknown (the
	// connection dropped) had succeeded, its retry fails on the id and the
	// instance it created is returned.
	id := newID()
	err := e.inTx(ctx, p.Actor, func(t *txn) error {
		inst, started = nil, nil
		if p.IdempotencyKey != "" {
			existing, err := t.tx.InstanceGetByIdempotencyKey(ctx, p.IdempotencyKey)
			if err == nil {
				inst = existing
				return nil
			}
			if !isNotFound(err) {
				return err
			}
		}
		var err error
		q := *p
		q.TraceParent = traceParent
		started, err = t.startInstance(id, &q, "", "")
		return err
	})
	spanErr = err
	span.SetAttributes(attribute.String(telemetry.AttrInstanceID, id))
	if errors.Is(err, store.ErrDuplicate) {
		if p.IdempotencyKey != "" {
			// A concurrent start with the same key won.
			inst, err = e.store.InstanceGetByIdempotencyKey(ctx, p.IdempotencyKey)
		} else if again, gerr := e.store.InstanceGet(ctx, id); gerr == nil {
			inst, err = again, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if started != nil {
		inst = started.inst // as written at the end of the transaction
	}
	if inst.ID != id {
		if err := sameStart(inst, p); err != nil {
			return nil, err
		}
	}
	out, err := instanceFrom(inst)
	if err != nil {
		return nil, err
	}
	out.Created = inst.ID == id
	return out, nil
}

// sameStart checks that an instance found by idempotency key was started
// with the parameters of p.
func sameStart(inst *store.Instance, p *StartParams) error {
	conflict := func(what string) error {
		return fmt.Errorf("idempotency key %q was used to start instance %s with another %s: %w",
			p.IdempotencyKey, inst.ID, what, store.ErrConflict)
	}
	switch {
	case inst.DefinitionID != p.Definition:
		return conflict("definition")
	case p.Version != 0 && inst.DefinitionVersion != p.Version:
		return conflict("version")
	case inst.BusinessKey != p.BusinessKey:
		return conflict("business key")
	}
	var had, want any
	if decodeJSON(inst.Input, &had) != nil || decodeJSON(p.Input, &want) != nil || !reflect.DeepEqual(had, want) {
		return conflict("input")
	}
	return nil
}

// startInstance creates an instance inside t and runs it from its start.
func (t *txn) startInstance(id string, p *StartParams, parentID, parentExecID string) (*instState, error) {
	var cd *compiledDef
	var err error
	if p.Version == 0 {
		cd, err = t.latestDefinition(p.Definition)
	} else {
		cd, err = t.e.definition(t.ctx, t.tx, p.Definition, p.Version)
	}
	if store.IsRetryable(err) {
		return nil, err // a newer version appeared: the next try reads it
	}
	if err != nil {
		return nil, notDeployed(p.Definition, p.Version, err)
	}
	if err := cd.def.ValidateInput(p.Input); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var deadline *time.Time
	if cd.def.Timeout > 0 {
		d := t.now.Add(cd.def.Timeout)
		deadline = &d
	}
	input := p.Input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	inst, err := t.tx.InstanceInsert(t.ctx, &store.InstanceInsertParams{
		ID: id, DefinitionID: cd.rec.ID, DefinitionVersion: cd.rec.Version, Status: store.InstanceRunning,
		Input: input, Variables: json.RawMessage("{}"), BusinessKey: p.BusinessKey, ParentID: parentID,
		ParentExecutionID: parentExecID, IdempotencyKey: p.IdempotencyKey, Deadline: deadline, CreatedAt: t.now,
		TraceParent: p.TraceParent,
	})
	if err != nil {
		return nil, err
	}
	s, err := t.adopt(inst, true)
	if err != nil {
		return nil, err
	}
	t.emit(s, EventInstanceStarted, nil, map[string]any{"businessKey": p.BusinessKey, "parentId": parentID})
	if deadline != nil {
		if err := s.armDeadline(*deadline); err != nil {
			return nil, err
		}
	}
	return s, s.enter(cd.def.Start, nil)
}

// CompleteTaskParams complete a user task.
type CompleteTaskParams struct {
	// Outcome must be one of the task's outcomes when it declares any.
	Outcome string
	// Data is the form data the user submitted (JSON).
	Data json.RawMessage
	// User and Roles identify who completes the task; the task's assignee
	// and candidate roles guard it. Admin bypasses the guard.
	User  string
	Roles []string
	Admin bool
	// IdempotencyKey makes a repeated completion by the same caller return
	// the first result instead of a conflict.
	IdempotencyKey string
	// Version, if not zero, must be the task's current version (If-Match).
	Version int64
}

// TaskResult is what completing a task produced.
type TaskResult struct {
	TaskID     string          `json:"taskId"`
	InstanceID string          `json:"instanceId"`
	Outcome    string          `json:"outcome"`
	User       string          `json:"user"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// CompleteTask completes an open user task and advances the instance, in one
// transaction. Exactly one of several concurrent completions wins; the
// others get ErrConflict, except a repeat carrying the winner's idempotency
// key, which gets the winner's result.
func (e *Engine) CompleteTask(ctx context.Context, taskID string, p *CompleteTaskParams) (*TaskResult, error) {
	if p == nil {
		p = &CompleteTaskParams{}
	}
	if len(p.Data) > 0 && !json.Valid(p.Data) {
		return nil, invalid("data", "is not valid JSON")
	}
	var result *TaskResult
	err := e.inTx(ctx, p.User, func(t *txn) error {
		b, err := t.tx.BookmarkGet(ctx, taskID)
		if err != nil || b.Type != store.BookmarkUserAction {
			return fmt.Errorf("task %s: %w", taskID, store.ErrNotFound)
		}
		if b.Consumed() {
			if p.IdempotencyKey != "" && b.ConsumeKey == p.IdempotencyKey {
				result = &TaskResult{}
				return json.Unmarshal(b.Result, result)
			}
			return fmt.Errorf("task %s is already completed: %w", taskID, store.ErrConflict)
		}
		if p.Version != 0 && p.Version != b.Version {
			return fmt.Errorf("task %s is at revision %d, not %d: %w", taskID, b.Version, p.Version, ErrVersionMismatch)
		}
		var payload taskPayload
		if err := decodeJSON(b.Payload, &payload); err != nil {
			return err
		}
		if err := mayComplete(b, &payload, p); err != nil {
			return err
		}
		if len(payload.Outcomes) > 0 && !slices.Contains(payload.Outcomes, p.Outcome) {
			return invalid("outcome", "%q is not one of %v", p.Outcome, payload.Outcomes)
		}
		s, err := t.load(b.InstanceID)
		if err != nil {
			return err
		}
		x := s.exec(b.ExecutionID)
		if x == nil || x.rec.Status != ExecWaiting || s.status.Finished() {
			// The bookmark read open, so a concurrent step moved the
			// instance on: run again to see how that step left the task.
			return raced(fmt.Errorf("task %s no longer waits: %w", taskID, store.ErrConflict))
		}
		a := s.cd.def.Activity(x.rec.ActivityID)
		if err := a.ValidateForm(p.Data); err != nil {
			return fmt.Errorf("task %s: %w: %w", taskID, ErrInvalid, err)
		}
		result = &TaskResult{TaskID: b.ID, InstanceID: b.InstanceID, Outcome: p.Outcome, User: p.User, Data: p.Data}
		raw, err := encodeJSON(result)
		if err != nil {
			return err
		}
		if _, err := t.tx.BookmarkConsume(ctx, &store.BookmarkConsumeParams{
			ID: b.ID, ConsumedBy: p.User, ConsumeKey: p.IdempotencyKey, Result: raw, At: t.now,
		}); err != nil {
			// A concurrent completion won: run again, to return its result
			// (same idempotency key) or a clear conflict.
			return raced(err)
		}
		var data any
		if err := decodeJSON(p.Data, &data); err != nil {
			return err
		}
		s.task = &expr.Task{Outcome: p.Outcome, Data: data, User: p.User}
		t.emit(s, EventTaskCompleted, x, map[string]any{"taskId": b.ID, "outcome": p.Outcome, "user": p.User})
		output := map[string]any{"outcome": p.Outcome, "data": data, "user": p.User}
		return s.complete(a, x, output, a.NextFor(p.Outcome))
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// mayComplete guards a task: the assignee, a user in a candidate role, or
// an admin may complete it; a task with neither is open to everyone.
func mayComplete(b *store.Bookmark, payload *taskPayload, p *CompleteTaskParams) error {
	if p.Admin {
		return nil
	}
	if b.Assignee == "" && len(payload.CandidateRoles) == 0 {
		return nil
	}
	if b.Assignee != "" && p.User == b.Assignee {
		return nil
	}
	for _, r := range p.Roles {
		if slices.Contains(payload.CandidateRoles, r) {
			return nil
		}
	}
	return fmt.Errorf("%w: user %q is neither the assignee nor in a candidate role of task %s", ErrForbidden, p.User, b.ID)
}

// ClaimTask assigns an open task to user (who must be allowed to complete
// it), so that it leaves the other candidates' inboxes.
func (e *Engine) ClaimTask(ctx context.Context, taskID string, p *CompleteTaskParams) (*UserTask, error) {
	if p == nil || p.User == "" {
		return nil, invalid("user", "is required to claim a task")
	}
	var claimed *store.Bookmark
	err := e.inTx(ctx, p.User, func(t *txn) error {
		b, err := t.tx.BookmarkGet(ctx, taskID)
		if err != nil || b.Type != store.BookmarkUserAction {
			return fmt.Errorf("task %s: %w", taskID, store.ErrNotFound)
		}
		if b.Consumed() {
			return fmt.Errorf("task %s is already completed: %w", taskID, store.ErrConflict)
		}
		var payload taskPayload
		if err := decodeJSON(b.Payload, &payload); err != nil {
			return err
		}
		if err := mayComplete(b, &payload, p); err != nil {
			return err
		}
		if p.Version != 0 && p.Version != b.Version {
			return fmt.Errorf("task %s is at revision %d, not %d: %w", taskID, b.Version, p.Version, ErrVersionMismatch)
		}
		claimed, err = t.tx.BookmarkAssign(ctx, &store.BookmarkAssignParams{ID: b.ID, Version: b.Version, Assignee: p.User})
		if err != nil {
			return err
		}
		s, err := t.load(b.InstanceID)
		if err != nil {
			return err
		}
		t.emit(s, EventTaskClaimed, s.exec(b.ExecutionID), map[string]any{"taskId": b.ID, "user": p.User})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return userTaskFrom(claimed)
}

// UnclaimTask gives a claimed task back to its candidate roles: only its
// assignee or an admin may, and only a task that names candidate roles
// (otherwise no one else could take it).
func (e *Engine) UnclaimTask(ctx context.Context, taskID string, p *CompleteTaskParams) (*UserTask, error) {
	if p == nil || p.User == "" {
		return nil, invalid("user", "is required to unclaim a task")
	}
	var released *store.Bookmark
	err := e.inTx(ctx, p.User, func(t *txn) error {
		b, err := t.tx.BookmarkGet(ctx, taskID)
		if err != nil || b.Type != store.BookmarkUserAction {
			return fmt.Errorf("task %s: %w", taskID, store.ErrNotFound)
		}
		if b.Consumed() {
			return fmt.Errorf("task %s is already completed: %w", taskID, store.ErrConflict)
		}
		var payload taskPayload
		if err := decodeJSON(b.Payload, &payload); err != nil {
			return err
		}
		switch {
		case b.Assignee == "":
			return fmt.Errorf("task %s is not claimed: %w", taskID, store.ErrConflict)
		case len(payload.CandidateRoles) == 0:
			return invalid("task", "%s names no candidate roles: no one else could take it", taskID)
		case !p.Admin && p.User != b.Assignee:
			return fmt.Errorf("%w: user %q is not the assignee of task %s", ErrForbidden, p.User, taskID)
		case p.Version != 0 && p.Version != b.Version:
			return fmt.Errorf("task %s is at revision %d, not %d: %w", taskID, b.Version, p.Version, ErrVersionMismatch)
		}
		released, err = t.tx.BookmarkAssign(ctx, &store.BookmarkAssignParams{ID: b.ID, Version: b.Version, Assignee: ""})
		if err != nil {
			return err
		}
		s, err := t.load(b.InstanceID)
		if err != nil {
			return err
		}
		t.emit(s, EventTaskUnclaimed, s.exec(b.ExecutionID), map[string]any{"taskId": b.ID, "user": p.User, "from": b.Assignee})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return userTaskFrom(released)
}

// MessageParams deliver a message.
type MessageParams struct {
	// Name is the message name a receive waits for.
	Name string
	// Correlation selects the waiting instance.
	Correlation string
	// Payload becomes the receive's output (JSON).
	Payload json.RawMessage
	// MessageID and Source identify the message for deduplication: a
	// message already accepted is acknowledged again with no second effect.
	MessageID string
	Source    string
	// Actor is who delivers the message, for the log. Defaults to Source.
	Actor string
}

// MessageResult says what a message did.
type MessageResult struct {
	// InstanceID is the instance the message was delivered to, empty when
	// none waited and it was kept for a later receive.
	InstanceID string `json:"instanceId,omitempty"`
	// Stored is true when the message was kept for a later receive.
	Stored bool `json:"stored"`
	// Duplicate is true when the message had been accepted before; the
	// result is the first one.
	Duplicate bool `json:"duplicate"`
}

// DeliverMessage hands a message to the instance waiting for it, or keeps
// it (for Config.MessageTTL) for a receive that has not been reached yet.
func (e *Engine) DeliverMessage(ctx context.Context, p *MessageParams) (*MessageResult, error) {
	switch {
	case p == nil || p.Name == "":
		return nil, invalid("name", "is required")
	case len(p.Payload) > 0 && !json.Valid(p.Payload):
		return nil, invalid("payload", "is not valid JSON")
	}
	var result *MessageResult
	// A message without an id gets one for this call, so that a retry
	// after a commit with an unknown outcome has no second effect.
	messageID, implicit := p.MessageID, p.MessageID == ""
	if implicit {
		messageID = "waymark:" + newID()
	}
	err := e.inTx(ctx, cmp.Or(p.Actor, p.Source), func(t *txn) error {
		result = &MessageResult{}
		// Serialise with receives of this (name, correlation) opening at
		// the same moment (see openReceive).
		if err := t.tx.MessageLock(ctx, p.Name, p.Correlation); err != nil {
			return err
		}
		open, err := t.tx.BookmarkListOpen(ctx, &store.BookmarkListParams{
			Type: store.BookmarkExternalMessage, Key: messageKey(p.Name, p.Correlation), Limit: 1,
		})
		if err != nil {
			return err
		}
		if len(open) == 1 {
			result.InstanceID = open[0].InstanceID
		} else {
			result.Stored = true
		}
		raw, _ := encodeJSON(result)
		first, err := t.tx.InboxInsert(ctx, &store.InboxInsertParams{
			Source: p.Source, MessageID: messageID, ReceivedAt: t.now, Result: raw,
		})
		if errors.Is(err, store.ErrDuplicate) {
			result = &MessageResult{}
			if err := decodeJSON(first.Result, result); err != nil {
				return err
			}
			result.Duplicate = !implicit // an internal retry is not the caller's duplicate
			return nil
		}
		if err != nil {
			return err
		}
		if result.Stored {
			_, err := t.tx.MessageInsert(ctx, &store.MessageInsertParams{
				ID: newID(), Name: p.Name, Correlation: p.Correlation, Payload: p.Payload, Source: p.Source,
				MessageID: messageID, ReceivedAt: t.now, ExpiresAt: t.now.Add(e.cfg.MessageTTL),
			})
			return err
		}
		b := open[0]
		if _, err := t.tx.BookmarkConsume(ctx, &store.BookmarkConsumeParams{
			ID: b.ID, ConsumedBy: "message", ConsumeKey: messageID, Result: p.Payload, At: t.now,
		}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				// Another message took this receive first: run again, and
				// this one waits for the next receive (or another instance).
				return fmt.Errorf("%w: %w", store.ErrRetryable, err)
			}
			return err
		}
		s, err := t.load(b.InstanceID)
		if err != nil {
			return err
		}
		x := s.exec(b.ExecutionID)
		if handled, err := s.boundaryMessage(b, x, p.Payload, messageID); handled {
			return err
		}
		if x == nil || x.rec.Status != ExecWaiting {
			return fmt.Errorf("bookmark %s has no waiting execution: %w", b.ID, store.ErrConflict)
		}
		return s.receive(s.cd.def.Activity(x.rec.ActivityID), x, p.Payload, messageID)
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}
