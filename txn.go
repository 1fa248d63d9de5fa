package waymark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// maxInlineActivities bounds how many activities one step runs before it
// hands the rest to a later step (a loop of switch and set activities must
// not hold a transaction forever).
const maxInlineActivities = 1000

// txn is one unit of work: every instance it touches, with their executions,
// bookmarks, work, log rows and outbox events, commits together.
type txn struct {
	e      *Engine
	ctx    context.Context
	tx     store.Tx
	now    time.Time
	actor  string
	states map[string]*instState
	order  []*instState
	events []*Event
	budget int
	// wakeWork and wakeTimers ask the engine's loops to look again after
	// the commit.
	wakeWork, wakeTimers bool
	// cancelled lists executions the step cancelled: their handlers, if
	// running here, see their context cancelled after the commit.
	cancelled []string
	// lateness lists how late the timers the step fired were.
	lateness []lateness
	// fresh makes the step read every instance from the database instead
	// of the state cache (a try after one that failed).
	fresh bool
	// carrier is the result being applied whose run may go on with the
	// next task the step schedules; inline lists the tasks enqueued
	// claimed in slots the step reserved, to run once it commits.
	carrier *taskResult
	pool    *workPool
	inline  []*store.WorkItem
}

// inlineSlot finds a slot for a task this step schedules and this engine
// runs, so that it can be enqueued already claimed and run the moment the
// step commits: no claim, no wake-up, and the instance's state still in
// the cache. The slot is the carrier's (the run whose result scheduled
// it), or one reserved in the pool. It reports false when the task should
// go through a claim: another engine's handler, work not due yet, an
// execution that may have its item already, or no free slot.
func (t *txn) inlineSlot(x *execution, kind, handler string, runAt time.Time) (carrier *taskResult, ok bool) {
	e := t.e
	if e.cfg.noInline || kind != workTask || !x.isNew || runAt.After(t.now) || e.cfg.Handlers[handler] == nil {
		return nil, false
	}
	if t.carrier != nil && t.carrier.next == nil {
		return t.carrier, true
	}
	if t.pool == nil {
		t.pool = e.pool.Load()
	}
	if t.pool != nil && t.pool.reserve() {
		return nil, true
	}
	return nil, false
}

// releaseInline frees the slots reserved for a step that did not commit.
func (t *txn) releaseInline() {
	for range t.inline {
		t.pool.release(false)
	}
	t.inline = nil
}

// outageWaitKey is the context key of WithOutageWait.
type outageWaitKey struct{}

// WithOutageWait returns a copy of ctx under which the engine's calls wait
// at most d for an unreachable database (retrying, as they always do,
// through a restart or dropped connections) before they give up with an
// error that wraps store.ErrUnavailable. Without it a call keeps retrying
// for about a minute, or until ctx ends: right for background work, too
// long for a caller that had better be told to come back (the server gives
// each API request 5s, then answers 503 with Retry-After).
func WithOutageWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, outageWaitKey{}, d)
}

// inTx runs fn in a transaction, retrying the whole unit when it loses an
// optimistic-concurrency race or the database reports a transient failure
// (a busy lock, a serialization failure, a dropped connection). Races are
// retried at once with a little jitter; a database that stays unreachable
// is retried with growing pauses, for about a minute in all, or for the
// context's WithOutageWait, or until ctx ends. Events reach Config.OnEvent
// only after the commit.
func (e *Engine) inTx(ctx context.Context, actor string, fn func(t *txn) error) error {
	const maxTries = 60
	start := time.Now()
	_, pipelines := e.store.(store.Pipeliner)
	pipelines = pipelines && !e.cfg.noPipeline
	outageWait, bounded := ctx.Value(outageWaitKey{}).(time.Duration)
	for try := 1; ; try++ {
		txStart := time.Now()
		t, err := e.runTx(ctx, actor, fn, try > 1)
		if err != nil && try == 1 && pipelines && ctx.Err() == nil {
			// A pipelined try says only that something failed: run the
			// unit again the ordinary way at once, where each write
			// reports its own failure (a lost lease, a consumed bookmark)
			// to the code that knows what it means.
			telemetry.Record(ctx, e.tel.StepTxDuration, telemetry.Since(txStart), attribute.String(telemetry.LabelOutcome, "retried"))
			continue
		}
		outcome := "committed"
		if err != nil {
			outcome = "rolled_back"
			if store.IsRetryable(err) {
				outcome = "retried"
			}
		}
		telemetry.Record(ctx, e.tel.StepTxDuration, telemetry.Since(txStart), attribute.String(telemetry.LabelOutcome, outcome))
		if err == nil {
			// Metrics first: whoever the commit wakes sees them counted.
			e.observeStep(t, start, try)
			e.afterCommit(t)
			return nil
		}
		if !store.IsRetryable(err) || try >= maxTries || ctx.Err() != nil {
			return err
		}
		pause := retryPause(try)
		if bounded && errors.Is(err, store.ErrUnavailable) && time.Since(start)+pause > outageWait {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// retryPause is the pause before try+1 of a unit of work: under a
// millisecond at first (racing steps spread out), then growing to 2s (an
// outage: a restarting database, a dropped connection).
func retryPause(try int) time.Duration {
	jitter := func(d time.Duration) time.Duration { return d/2 + time.Duration(rand.Int64N(int64(d))) }
	if try <= 20 {
		return jitter(time.Duration(try)*time.Millisecond) + 100*time.Microsecond
	}
	return jitter(min(20*time.Millisecond<<min(try-20, 7), 2*time.Second))
}

// runTx runs fn in one transaction; fresh reads every instance from the
// database rather than the state cache.
func (e *Engine) runTx(ctx context.Context, actor string, fn func(t *txn) error, fresh bool) (_ *txn, err error) {
	var tx store.Tx
	if p, ok := e.store.(store.Pipeliner); ok && !fresh && !e.cfg.noPipeline {
		tx, err = p.BeginPipelined(ctx)
	} else {
		tx, err = e.store.Begin(ctx)
	}
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // harmless after Commit
	t := &txn{
		e: e, ctx: ctx, tx: tx, now: e.clock.Now().UTC().Truncate(time.Microsecond), actor: actor,
		states: map[string]*instState{}, budget: maxInlineActivities, fresh: fresh,
	}
	defer func() {
		if err != nil {
			e.states.drop(t.order) // what the step read may be stale
			t.releaseInline()
		}
	}()
	if err := fn(t); err != nil {
		return nil, err
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func (e *Engine) afterCommit(t *txn) {
	e.states.put(t.order)
	var kinds []string
	if t.wakeWork {
		e.wakeWork()
		kinds = append(kinds, kindWork)
	}
	if t.wakeTimers {
		e.wakeTimers()
		kinds = append(kinds, kindTimer)
	}
	if len(t.events) > 0 {
		kinds = append(kinds, kindEvent)
	}
	e.announcer.announce(t.ctx, kinds...)
	for _, s := range t.order {
		e.watchers.notify(s.inst.ID)
	}
	if len(t.order) > 0 {
		e.watchers.notify(allInstances)
	}
	for _, id := range t.cancelled {
		e.running.cancel(id)
	}
	for _, item := range t.inline {
		t.pool.run(item, viaInline)
	}
	for _, ev := range t.events {
		e.cfg.Logger.LogAttrs(t.ctx, levelFor(ev.Type), "engine: "+ev.Type, eventAttrs(ev)...)
		if e.cfg.OnEvent != nil {
			e.cfg.OnEvent(*ev)
		}
	}
}

// load returns the state of an instance, reading it once per transaction.
func (t *txn) load(id string) (*instState, error) {
	if s, ok := t.states[id]; ok {
		return s, nil
	}
	if !t.fresh {
		if inst, execs, ok := t.e.states.get(id); ok {
			s, err := t.adoptWith(inst, false, execs)
			if s != nil {
				s.cached = true
			}
			return s, err
		}
	}
	inst, err := t.tx.InstanceGet(t.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load instance %s: %w", id, err)
	}
	return t.adopt(inst, false)
}

// adopt makes an instance record part of the transaction.
func (t *txn) adopt(inst *store.Instance, isNew bool) (*instState, error) {
	return t.adoptWith(inst, isNew, nil)
}

// adoptWith is adopt with the instance's executions, when the caller has
// them (nil: read them, unless the instance is new).
func (t *txn) adoptWith(inst *store.Instance, isNew bool, execs []*store.ActivityExecution) (*instState, error) {
	cd, err := t.e.definition(t.ctx, t.tx, inst.DefinitionID, inst.DefinitionVersion)
	if err != nil {
		return nil, err
	}
	s := &instState{t: t, inst: inst, cd: cd, isNew: isNew, status: inst.Status}
	if err := decodeJSON(inst.Input, &s.input); err != nil {
		return nil, fmt.Errorf("instance %s input: %w", inst.ID, err)
	}
	s.vars = map[string]any{}
	if err := decodeJSON(inst.Variables, &s.vars); err != nil {
		return nil, fmt.Errorf("instance %s variables: %w", inst.ID, err)
	}
	if s.vars == nil {
		s.vars = map[string]any{}
	}
	if !isNew {
		cached := execs != nil
		if !cached && !t.fresh {
			execs, cached = t.e.states.execsAt(inst.ID, inst.Version)
		}
		if !cached {
			var err error
			if execs, err = t.tx.ExecutionListByInstance(t.ctx, inst.ID); err != nil {
				return nil, err
			}
		}
		for _, x := range execs {
			s.execs = append(s.execs, &execution{rec: x, compensates: compensationOf(x), legacy: x.Token == nil})
		}
	}
	t.states[inst.ID] = s
	t.order = append(t.order, s)
	return s, nil
}

// flush settles every touched instance and writes what changed. Settling
// may change instances already settled (a child that finishes resumes its
// parent), so it repeats until a whole pass changes nothing.
func (t *txn) flush() error {
	for pass := 0; ; pass++ {
		if pass == 100 {
			return fmt.Errorf("settling the step did not come to rest after %d passes", pass)
		}
		states, events := len(t.order), len(t.events)
		var changed bool
		for i := 0; i < len(t.order); i++ {
			s := t.order[i]
			before := s.status
			if err := s.settle(); err != nil {
				return err
			}
			changed = changed || s.status != before
		}
		if !changed && len(t.order) == states && len(t.events) == events {
			break
		}
	}
	if err := t.countDeltas(); err != nil {
		return err
	}
	for _, s := range t.order {
		if err := s.write(); err != nil {
			return err
		}
	}
	if len(t.events) == 0 {
		return nil
	}
	logs := make([]*store.LogAppendParams, 0, len(t.events))
	outbox := make([]*store.OutboxInsertParams, len(t.events))
	for i, ev := range t.events {
		body := ev.body
		if body == nil {
			body = ev.payload()
			logs = append(logs, &store.LogAppendParams{
				InstanceID: ev.InstanceID, ActivityID: ev.ActivityID, Event: ev.Type, At: ev.OccurredAt,
				Actor: ev.Actor, Details: ev.details(), TraceID: ev.TraceID,
			})
		}
		outbox[i] = &store.OutboxInsertParams{
			ID: ev.ID, InstanceID: ev.InstanceID, Type: ev.Type, Payload: body, OccurredAt: ev.OccurredAt,
			Headers: t.traceHeaders(ev.InstanceID),
		}
	}
	if err := t.tx.OutboxInsertBatch(t.ctx, outbox); err != nil {
		return err
	}
	return t.tx.LogAppend(t.ctx, logs)
}

// traceHeaders are the outbox headers of an instance's events.
func (t *txn) traceHeaders(instanceID string) json.RawMessage {
	if s, ok := t.states[instanceID]; ok {
		return s.traceHeaders()
	}
	return nil
}

// emit records an event of s.
func (t *txn) emit(s *instState, typ string, x *execution, data map[string]any) {
	ev := &Event{
		ID: newID(), Type: typ, InstanceID: s.inst.ID, DefinitionID: s.inst.DefinitionID,
		DefinitionVersion: s.inst.DefinitionVersion, OccurredAt: t.now, Actor: t.actor,
		TraceID: s.traceID(), Data: data,
	}
	if x != nil {
		ev.ActivityID, ev.ExecutionID = x.rec.ActivityID, x.rec.ID
	}
	t.events = append(t.events, ev)
}

// emitCustom records the event of an emit activity: sent through the
// outbox with the definition's payload as its data, seen by OnEvent, but
// not an execution-log row (the activity's own rows are).
func (t *txn) emitCustom(s *instState, typ string, x *execution, payload any) {
	t.emit(s, typ, x, nil)
	ev := t.events[len(t.events)-1]
	if m, ok := payload.(map[string]any); ok {
		ev.Data = m
	} else if payload != nil {
		ev.Data = map[string]any{"value": payload}
	}
	ev.body = mustJSON(struct {
		ID                string    `json:"id"`
		Type              string    `json:"type"`
		InstanceID        string    `json:"instanceId"`
		DefinitionID      string    `json:"definition"`
		DefinitionVersion int       `json:"version"`
		ActivityID        string    `json:"activityId"`
		OccurredAt        time.Time `json:"occurredAt"`
		TraceID           string    `json:"traceId"`
		Data              any       `json:"data"`
	}{ev.ID, ev.Type, ev.InstanceID, ev.DefinitionID, ev.DefinitionVersion, ev.ActivityID, ev.OccurredAt, ev.TraceID, payload})
}

func decodeJSON(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// encodeJSON encodes v as stored and sent: no HTML escaping (">=" stays
// ">=", not "\u003e="), no trailing newline. nil encodes as nil (SQL NULL).
func encodeJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// mustJSON encodes values that always encode (the engine's own records).
func mustJSON(v any) json.RawMessage {
	b, err := encodeJSON(v)
	if err != nil {
		panic(err)
	}
	return b
}
