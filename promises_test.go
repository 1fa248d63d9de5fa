package waymark_test

// Regression tests for the engine's promises (issue 8): each failed before
// its fix.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// A message delivered while the receive it belongs to opens: one of them
// must find the other (they serialise on the name and correlation).
func TestMessageRacingItsReceive(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: waiter
activities:
  - {id: wait, type: receive, message: paid, correlation: '${ input.order }', next: done}
  - {id: done, type: end}
`)
		const races = 200
		ids := make([]string, races)
		var wg sync.WaitGroup
		errs := make(chan error, 2*races)
		sem := make(chan struct{}, 8)
		for i := range races {
			order := fmt.Sprintf("o-%d", i)
			start := make(chan struct{})
			sem <- struct{}{}
			wg.Go(func() {
				<-start
				inst, err := b.e.StartInstance(b.ctx, &waymark.StartParams{
					Definition: "waiter", Input: json.RawMessage(`{"order":"` + order + `"}`),
				})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = inst.ID
			})
			wg.Go(func() {
				defer func() { <-sem }()
				close(start)
				_, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{
					Name: "paid", Correlation: order, Payload: json.RawMessage(`{"ok":true}`),
				})
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		lost := 0
		for _, id := range ids {
			inst, err := s.InstanceGet(b.ctx, id)
			require.NoError(t, err)
			if inst.Status != store.InstanceCompleted {
				lost++
			}
		}
		require.Zero(t, lost, "instances left waiting with their message stored")
	})
}

// A failure stops every other path of the instance at once: nothing runs,
// is emitted or starts after instance.failed / instance.compensating, the
// first error is the instance's error, and the compensation runs in full.
func TestFailureStopsOtherPaths(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var late, refunds atomic.Int32
		release := make(chan struct{})
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"late":   func(context.Context, *waymark.Task) (any, error) { late.Add(1); return "late", nil },
			"charge": echo("charge"),
			"refund": func(context.Context, *waymark.Task) (any, error) {
				refunds.Add(1)
				<-release
				return "refunded", nil
			},
			"boom": func(context.Context, *waymark.Task) (any, error) {
				return nil, waymark.Permanent(errors.New("second failure"))
			},
		}})
		b.deploy(`
id: inline
activities:
  - {id: fork, type: parallel, branches: [bad, notify, work]}
  - {id: bad, type: fail, message: first failure}
  - {id: notify, type: emit, event: order.noticed, next: j}
  - {id: work, type: task, handler: late, next: j}
  - {id: j, type: join}
`)
		inst := b.start("inline", `{}`)
		require.Equal(t, store.InstanceFailed, inst.Status)
		require.Equal(t, "first failure", inst.Error.Message)
		events := b.logEvents(inst.ID)
		require.NotContains(t, events, "activity.started:notify")
		require.NotContains(t, events, "activity.started:work")
		for _, ev := range b.outbox(inst.ID, "instance.failed") {
			require.NotEqual(t, "order.noticed", ev.Type, "emitted after the instance failed")
		}

		// Two failing branches with compensation: the first error stays,
		// and the compensation that started is not cancelled by the second.
		b.deploy(`
id: twice
activities:
  - {id: charge, type: task, handler: charge, compensate: refund, next: fork}
  - {id: fork, type: parallel, branches: [a, c]}
  - {id: a, type: fail, message: first failure}
  - {id: c, type: task, handler: boom}
  - {id: refund, type: task, handler: refund}
`)
		two := b.start("twice", `{}`)
		b.waitStatus(two.ID, store.InstanceCompensating)
		close(release)
		got := b.waitStatus(two.ID, store.InstanceFailed)
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(got.Error, &info))
		require.Equal(t, "first failure", info.Message)
		require.EqualValues(t, 1, refunds.Load())
		events = b.logEvents(two.ID)
		require.Contains(t, events, "activity.completed:refund")
		require.NotContains(t, events, "activity.started:c", "c never starts: a failed before it")
		require.Zero(t, late.Load())
	})
}

// A compensation that failed is not "done": resuming or retrying runs it
// again, and the instance ends with the status compensation was for.
func TestFailedCompensationRunsAgain(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var refunds atomic.Int32
		var healthy atomic.Bool
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"charge": echo("charge"),
			"refund": func(context.Context, *waymark.Task) (any, error) {
				refunds.Add(1)
				if !healthy.Load() {
					return nil, waymark.Permanent(errors.New("refund service down"))
				}
				return "refunded", nil
			},
		}})
		b.deploy(`
id: saga
activities:
  - {id: charge, type: task, handler: charge, compensate: refund, next: wait}
  - {id: wait, type: userTask}
  - {id: refund, type: task, handler: refund}
`)
		for _, how := range []string{"resume", "retry"} {
			healthy.Store(false)
			refunds.Store(0)
			inst := b.start("saga", `{}`)
			b.waitStatus(inst.ID, store.InstanceWaiting)
			require.NoError(t, b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "customer", Compensate: true}))
			susp := b.waitStatus(inst.ID, store.InstanceSuspended)
			var info waymark.ErrorInfo
			require.NoError(t, json.Unmarshal(susp.Error, &info))
			require.Contains(t, info.Message, "refund service down")
			require.NotNil(t, info.Cause)
			require.Equal(t, "customer", info.Cause.Message)

			healthy.Store(true)
			if how == "resume" {
				require.NoError(t, b.e.Resume(b.ctx, inst.ID, "ops", 0))
			} else {
				require.NoError(t, b.e.Retry(b.ctx, inst.ID, "ops", 0))
			}
			done := b.waitStatus(inst.ID, store.InstanceCancelled)
			require.EqualValues(t, 2, refunds.Load(), how+": the failed refund runs again")
			require.NoError(t, json.Unmarshal(done.Error, &info))
			require.Equal(t, "customer", info.Message, how+": the instance keeps the reason it was cancelled for")
		}
	})
}

// Resuming a suspended instance whose task is still queued does not queue
// it twice; skipping on a suspended instance runs what the suspension held
// back.
func TestSuspensionHoldsBackWorkOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var calls, concurrent, most atomic.Int32
		b := setup(t, s, setupOpts{noStart: true, handlers: map[string]waymark.TaskHandler{
			"slow": func(context.Context, *waymark.Task) (any, error) {
				calls.Add(1)
				n := concurrent.Add(1)
				defer concurrent.Add(-1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(50 * time.Millisecond)
				return "ok", nil
			},
		}})
		b.deploy(`
id: queued
activities:
  - {id: work, type: task, handler: slow}
`)
		inst := b.start("queued", `{}`)
		for range 3 {
			require.NoError(t, b.e.Suspend(b.ctx, inst.ID, "ops", 0))
			require.NoError(t, b.e.Resume(b.ctx, inst.ID, "ops", 0))
		}
		require.NoError(t, b.e.Start(b.ctx))
		t.Cleanup(func() { require.NoError(t, b.e.Stop(b.ctx)) })
		b.waitStatus(inst.ID, store.InstanceCompleted)
		require.EqualValues(t, 1, calls.Load(), "the handler ran once")
		require.EqualValues(t, 1, most.Load())

		// Skip while suspended: the branch deferred by the suspension runs.
		b.deploy(`
id: branches
activities:
  - {id: fork, type: parallel, branches: [review, other]}
  - {id: review, type: userTask, next: j}
  - {id: other, type: timer, duration: 1ms, next: more}
  - {id: more, type: set, vars: {more: true}, next: j}
  - {id: j, type: join}
`)
		br := b.start("branches", `{}`)
		require.NoError(t, b.e.Suspend(b.ctx, br.ID, "ops", 0))
		// The timer fires while suspended; what follows it waits.
		require.Eventually(t, func() bool {
			for _, ev := range b.logEvents(br.ID) {
				if ev == "timer.fired:other" {
					return true
				}
			}
			return false
		}, 10*time.Second, 10*time.Millisecond)
		require.NoError(t, b.e.Skip(b.ctx, br.ID, "review", nil, "ops", 0))
		done := b.waitStatus(br.ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, done)["more"])
	})
}

// A child that finishes in the step that starts it resumes its parent in
// that same step.
func TestInstantSubworkflow(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(`
id: child
activities:
  - {id: calc, type: set, vars: {n: 42}}
`)
		b.deploy(`
id: parent
activities:
  - {id: call, type: subworkflow, definition: child, input: {}, output: child, next: after}
  - {id: after, type: set, vars: {after: true}}
`)
		inst := b.start("parent", `{}`)
		require.Equal(t, store.InstanceCompleted, inst.Status)
		v := vars(t, inst)
		require.Equal(t, true, v["after"])
		require.Equal(t, map[string]any{"n": 42.0}, v["child"])
	})
}

// task and message are bound in the step that completes a user task or
// receives a message.
func TestTaskAndMessageInExpressions(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(`
id: bound
activities:
  - {id: approve, type: userTask, outcomes: [yes], next: note}
  - id: note
    type: set
    vars: {by: '${ task.user }', outcome: '${ task.outcome }', amount: '${ task.data.amount }'}
    next: wait
  - {id: wait, type: receive, message: shipped, correlation: x, next: check}
  - {id: check, type: set, vars: {shipped: '${ message.ok }', carrier: '${ message.carrier }'}}
`)
		inst := b.start("bound", `{}`)
		task := b.openTasks(inst.ID)[0]
		_, err := b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{
			Outcome: "yes", User: "ann", Data: json.RawMessage(`{"amount":12}`),
		})
		require.NoError(t, err)
		_, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{
			Name: "shipped", Correlation: "x", Payload: json.RawMessage(`{"ok":true,"carrier":"ups"}`),
		})
		require.NoError(t, err)
		v := vars(t, b.waitStatus(inst.ID, store.InstanceCompleted))
		require.Equal(t, "ann", v["by"])
		require.Equal(t, "yes", v["outcome"])
		require.EqualValues(t, 12, v["amount"])
		require.Equal(t, true, v["shipped"])
		require.Equal(t, "ups", v["carrier"])
	})
}

// Two completions of one task carrying the same idempotency key both get
// the first result.
func TestConcurrentCompletionsSameKey(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: once
activities:
  - {id: approve, type: userTask, outcomes: [yes, no], next: done}
  - {id: done, type: end}
`)
		for range 5 {
			inst := b.start("once", `{}`)
			task := b.openTasks(inst.ID)[0]
			const racers = 8
			results := make([]*waymark.TaskResult, racers)
			errs := make([]error, racers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range racers {
				wg.Go(func() {
					<-start
					results[i], errs[i] = b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{
						Outcome: []string{"yes", "no"}[i%2], User: fmt.Sprint("u", i), IdempotencyKey: "same-key",
					})
				})
			}
			close(start)
			wg.Wait()
			for i := range racers {
				require.NoError(t, errs[i])
				require.Equal(t, results[0], results[i], "every caller gets the first result")
			}
		}
	})
}

// Cancel racing a step that moves the instance on retries instead of
// failing with a spurious conflict.
func TestCancelRacingAStep(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: two
activities:
  - {id: first, type: userTask, next: second}
  - {id: second, type: userTask}
`)
		for range 20 {
			inst := b.start("two", `{}`)
			task := b.openTasks(inst.ID)[0]
			var wg sync.WaitGroup
			var cancelErr error
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				_, _ = b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "u"})
			})
			wg.Go(func() {
				<-start
				cancelErr = b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "r"})
			})
			close(start)
			wg.Wait()
			require.NoError(t, cancelErr, "the instance never finishes by itself: Cancel must win")
			got, err := s.InstanceGet(b.ctx, inst.ID)
			require.NoError(t, err)
			require.Equal(t, store.InstanceCancelled, got.Status)
			require.Empty(t, b.openTasks(inst.ID))
		}
	})
}

// Stored errors keep ">=" as written; emit events reach OnEvent.
func TestErrorJSONAndEmitEvents(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(`
id: cmp
activities:
  - {id: tell, type: emit, event: order.checked, payload: {amount: '${ input.amount }'}, next: check}
  - {id: check, type: fail, message: 'amount must be >= 10 & < 100'}
`)
		inst := b.start("cmp", `{"amount":5}`)
		raw, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Contains(t, string(raw.Error), "amount must be >= 10 & < 100")
		require.NotContains(t, string(raw.Error), `\u003e`)

		b.mu.Lock()
		defer b.mu.Unlock()
		var seen *waymark.Event
		for i, ev := range b.events {
			if ev.Type == "order.checked" {
				seen = &b.events[i]
			}
		}
		require.NotNil(t, seen, "OnEvent sees emit events")
		require.EqualValues(t, 5, seen.Data["amount"])
		for _, ev := range b.outbox(seen.InstanceID, "instance.failed") {
			if ev.Type == "order.checked" {
				require.Equal(t, seen.ID, ev.ID, "the outbox event and OnEvent's share the id")
				var body struct{ Data map[string]any }
				require.NoError(t, json.Unmarshal(ev.Payload, &body))
				require.Equal(t, map[string]any{"amount": 5.0}, body.Data)
			}
		}
	})
}
