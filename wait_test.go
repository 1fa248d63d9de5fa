package waymark_test

import (
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

const approvalDef = `
id: approval
input: {type: object, required: [amount], properties: {amount: {type: number, minimum: 0}, manager: {type: string}}}
activities:
  - id: approve
    type: userTask
    title: '${ "Approve " + string(input.amount) }'
    assignee: '${ has(input.manager) ? input.manager : "" }'
    candidateRoles: [finance]
    outcomes: [approved, rejected]
    next: {approved: pay, rejected: reject}
  - {id: pay, type: set, vars: {paid: true}}
  - {id: reject, type: set, vars: {paid: false}}
`

func TestUserTask(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(approvalDef)

		approved := b.start("approval", `{"amount":1200,"manager":"ann"}`)
		require.Equal(t, store.InstanceWaiting, approved.Status)
		tasks := b.openTasks(approved.ID)
		require.Len(t, tasks, 1)
		require.Equal(t, "ann", tasks[0].Assignee)
		var payload map[string]any
		require.NoError(t, json.Unmarshal(tasks[0].Payload, &payload))
		require.Equal(t, "Approve 1200", payload["title"])

		// Neither the assignee nor in a candidate role: forbidden, nothing changes.
		_, err := b.e.CompleteTask(b.ctx, tasks[0].ID, &waymark.CompleteTaskParams{Outcome: "approved", User: "mallory", Roles: []string{"sales"}})
		require.ErrorIs(t, err, waymark.ErrForbidden)
		again, err := s.InstanceGet(b.ctx, approved.ID)
		require.NoError(t, err)
		require.Equal(t, approved.Version, again.Version)
		require.Len(t, b.openTasks(approved.ID), 1)

		// An outcome the task does not declare is rejected.
		_, err = b.e.CompleteTask(b.ctx, tasks[0].ID, &waymark.CompleteTaskParams{Outcome: "maybe", User: "ann"})
		require.ErrorIs(t, err, waymark.ErrInvalid)

		res, err := b.e.CompleteTask(b.ctx, tasks[0].ID, &waymark.CompleteTaskParams{
			Outcome: "approved", User: "ann", Data: json.RawMessage(`{"note":"fine"}`), IdempotencyKey: "click-1",
		})
		require.NoError(t, err)
		require.Equal(t, "approved", res.Outcome)
		done := b.waitStatus(approved.ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, done)["paid"])

		// The same completion again (same key) returns the first result; any
		// other completion conflicts.
		res2, err := b.e.CompleteTask(b.ctx, tasks[0].ID, &waymark.CompleteTaskParams{Outcome: "approved", User: "ann", IdempotencyKey: "click-1"})
		require.NoError(t, err)
		require.Equal(t, res.TaskID, res2.TaskID)
		require.Equal(t, res.Outcome, res2.Outcome)
		require.JSONEq(t, string(res.Data), string(res2.Data))
		_, err = b.e.CompleteTask(b.ctx, tasks[0].ID, &waymark.CompleteTaskParams{Outcome: "rejected", User: "ann"})
		require.ErrorIs(t, err, waymark.ErrConflict)

		// A candidate role may complete it, and rejection takes the other path.
		rejected := b.start("approval", `{"amount":5}`)
		task := b.openTasks(rejected.ID)[0]
		_, err = b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Outcome: "rejected", User: "bob", Roles: []string{"finance"}})
		require.NoError(t, err)
		require.Equal(t, false, vars(t, b.waitStatus(rejected.ID, store.InstanceCompleted))["paid"])

		_, err = b.e.CompleteTask(b.ctx, "no-such-task", &waymark.CompleteTaskParams{User: "ann"})
		require.ErrorIs(t, err, waymark.ErrNotFound)
	})
}

func TestConcurrentTaskCompletion(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(approvalDef)
		inst := b.start("approval", `{"amount":10,"manager":"ann"}`)
		task := b.openTasks(inst.ID)[0]
		const racers = 50
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, racers)
		for i := range racers {
			wg.Go(func() {
				<-start
				outcome := "approved"
				if i%2 == 1 {
					outcome = "rejected"
				}
				_, err := b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Outcome: outcome, User: "ann"})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, waymark.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.EqualValues(t, 1, wins.Load())
		require.EqualValues(t, racers-1, conflicts.Load())
		b.waitStatus(inst.ID, store.InstanceCompleted)
		completions := 0
		for _, ev := range b.logEvents(inst.ID) {
			if ev == "task.completed:approve" {
				completions++
			}
		}
		require.Equal(t, 1, completions)
	})
}

const receiptDef = `
id: receipt
activities:
  - {id: prepare, type: set, vars: {ready: true}, next: wait}
  - {id: wait, type: receive, message: receipt-uploaded, correlation: '${ input.expenseId }', output: receipt}
`

func TestMessages(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(receiptDef)

		// After the bookmark: the waiting instance gets it.
		after := b.start("receipt", `{"expenseId":"E-1"}`)
		require.Equal(t, store.InstanceWaiting, after.Status)
		res, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{
			Name: "receipt-uploaded", Correlation: "E-1", Payload: json.RawMessage(`{"file":"r.pdf"}`),
			MessageID: "m-1", Source: "scanner",
		})
		require.NoError(t, err)
		require.Equal(t, after.ID, res.InstanceID)
		require.False(t, res.Stored)
		done := b.waitStatus(after.ID, store.InstanceCompleted)
		require.Equal(t, map[string]any{"file": "r.pdf"}, vars(t, done)["receipt"])

		// The same message again has no second effect.
		dup, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{
			Name: "receipt-uploaded", Correlation: "E-1", Payload: json.RawMessage(`{"file":"other.pdf"}`),
			MessageID: "m-1", Source: "scanner",
		})
		require.NoError(t, err)
		require.True(t, dup.Duplicate)
		require.Equal(t, after.ID, dup.InstanceID)
		stored, err := s.MessageTake(b.ctx, &store.MessageTakeParams{Name: "receipt-uploaded", Correlation: "E-1", Now: time.Now()})
		require.ErrorIs(t, err, store.ErrNotFound, "the duplicate was not kept either: %v", stored)

		// Before the bookmark: the message waits for the receive.
		early, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{
			Name: "receipt-uploaded", Correlation: "E-2", Payload: json.RawMessage(`{"file":"early.pdf"}`), MessageID: "m-2",
		})
		require.NoError(t, err)
		require.True(t, early.Stored)
		before := b.start("receipt", `{"expenseId":"E-2"}`)
		require.Equal(t, store.InstanceCompleted, before.Status, "the kept message completes the receive at once")
		require.Equal(t, map[string]any{"file": "early.pdf"}, vars(t, before)["receipt"])

		_, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Correlation: "x"})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		_, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "x", Payload: json.RawMessage(`{bad`)})
		require.ErrorIs(t, err, waymark.ErrInvalid)
	})
}

func TestTimersWithManualClock(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: cool-off
activities:
  - {id: wait, type: timer, duration: 24h, next: done}
  - {id: done, type: set, vars: {done: true}}
`)
		inst := b.start("cool-off", `{}`)
		require.Equal(t, store.InstanceWaiting, inst.Status)

		b.clock.Advance(24*time.Hour - time.Microsecond)
		fired, err := b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Zero(t, fired, "a timer never fires early")
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceWaiting, got.Status)

		b.clock.Advance(time.Microsecond)
		fired, err = b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Equal(t, 1, fired)
		got, err = s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		require.Contains(t, b.logEvents(inst.ID), "timer.fired:wait")

		fired, err = b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Zero(t, fired, "a timer fires once")
	})
}

func TestUserTaskDueAndInstanceDeadline(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: escalate
activities:
  - {id: review, type: userTask, due: 48h, onTimeout: escalate, next: done}
  - {id: escalate, type: set, vars: {escalated: true}}
  - {id: done, type: end}
`)
		b.deploy(`
id: deadline
timeout: 72h
activities:
  - {id: review, type: userTask, next: done}
  - {id: done, type: end}
`)
		esc := b.start("escalate", `{}`)
		dl := b.start("deadline", `{}`)
		b.clock.Advance(48 * time.Hour)
		fired, err := b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Equal(t, 1, fired)
		got, err := s.InstanceGet(b.ctx, esc.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		require.Equal(t, true, vars(t, got)["escalated"])
		require.Empty(t, b.openTasks(esc.ID), "the overdue task is closed")

		b.clock.Advance(24 * time.Hour)
		fired, err = b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Equal(t, 1, fired)
		got, err = s.InstanceGet(b.ctx, dl.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceTimedOut, got.Status)
		require.Empty(t, b.openTasks(dl.ID))
	})
}

func TestSubworkflow(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"work": echo("child")}})
		b.deploy(`
id: child
activities:
  - id: route
    type: switch
    cases: [{when: '${ input.ok }', next: work}]
    default: boom
  - {id: work, type: task, handler: work, output: result}
  - {id: boom, type: fail, message: '${ "child failed for " + input.who }', code: child_error}
`)
		b.deploy(`
id: parent
activities:
  - id: call
    type: subworkflow
    definition: child
    input: {ok: '${ input.ok }', who: parent}
    output: child
    onError: {"subworkflow.failed": recover}
    next: done
  - {id: recover, type: set, vars: {recovered: true}}
  - {id: done, type: end}
`)
		ok := b.start("parent", `{"ok":true}`)
		done := b.waitStatus(ok.ID, store.InstanceCompleted)
		child := vars(t, done)["child"].(map[string]any)
		require.Equal(t, map[string]any{"by": "child", "in": map[string]any{"ok": true, "who": "parent"}}, child["result"])
		children, err := s.InstanceList(b.ctx, &store.InstanceListParams{ParentID: ok.ID})
		require.NoError(t, err)
		require.Len(t, children, 1)
		require.Equal(t, store.InstanceCompleted, children[0].Status)

		bad := b.start("parent", `{"ok":false}`)
		require.Equal(t, true, vars(t, b.waitStatus(bad.ID, store.InstanceCompleted))["recovered"])
		children, err = s.InstanceList(b.ctx, &store.InstanceListParams{ParentID: bad.ID})
		require.NoError(t, err)
		require.Equal(t, store.InstanceFailed, children[0].Status)
		require.Contains(t, string(children[0].Error), "child failed for parent")
	})
}

func TestCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(approvalDef)
		inst := b.start("approval", `{"amount":10}`)
		task := b.openTasks(inst.ID)[0]
		require.ErrorIs(t, b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "dup", Version: inst.Version + 7}), waymark.ErrVersionMismatch)
		require.NoError(t, b.e.Cancel(b.ctx, inst.ID, &waymark.CancelParams{Reason: "duplicate request", Actor: "ops"}))
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCancelled, got.Status)
		require.Contains(t, string(got.Error), "duplicate request")
		require.Empty(t, b.openTasks(inst.ID))
		_, err = b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Outcome: "approved", User: "x", Roles: []string{"finance"}})
		require.ErrorIs(t, err, waymark.ErrConflict)
		require.ErrorIs(t, b.e.Cancel(b.ctx, inst.ID, nil), waymark.ErrConflict)
		require.ErrorIs(t, b.e.Cancel(b.ctx, "nope", nil), waymark.ErrNotFound)
	})
}

func TestStartValidation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(approvalDef)
		for name, p := range map[string]*waymark.StartParams{
			"NoDefinition":    {},
			"BadJSON":         {Definition: "approval", Input: json.RawMessage(`{`)},
			"SchemaViolation": {Definition: "approval", Input: json.RawMessage(`{"amount":-1}`)},
			"MissingRequired": {Definition: "approval", Input: json.RawMessage(`{}`)},
		} {
			_, err := b.e.StartInstance(b.ctx, p)
			require.ErrorIs(t, err, waymark.ErrInvalid, name)
		}
		_, err := b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: "approval", Input: json.RawMessage(`{"amount":-1}`)})
		require.ErrorContains(t, err, "/amount")
		_, err = b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: "nope"})
		require.ErrorIs(t, err, waymark.ErrNotFound)
		list, err := s.InstanceList(b.ctx, &store.InstanceListParams{})
		require.NoError(t, err)
		require.Empty(t, list, "rejected starts create nothing")

		// An idempotency key returns the first instance, also under a race.
		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Go(func() {
				inst, err := b.e.StartInstance(b.ctx, &waymark.StartParams{
					Definition: "approval", Input: json.RawMessage(`{"amount":1}`), IdempotencyKey: "req-1",
				})
				if err == nil {
					ids[i] = inst.ID
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
		require.NotEmpty(t, ids[0])
		list, err = s.InstanceList(b.ctx, &store.InstanceListParams{})
		require.NoError(t, err)
		require.Len(t, list, 1)

		_, _, err = b.e.Deploy(b.ctx, []byte("id: broken\nactivities: [{id: a, type: nope}]"))
		require.Error(t, err)
		require.Contains(t, fmt.Sprint(err), "activities[0].type")
	})
}

func TestSuspendResumeSkip(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: pausable
activities:
  - {id: wait, type: timer, duration: 1h, next: review}
  - {id: review, type: userTask, next: after}
  - {id: after, type: set, vars: {after: true}}
`)
		inst := b.start("pausable", `{}`)
		require.NoError(t, b.e.Suspend(b.ctx, inst.ID, "ops", 0))
		require.ErrorIs(t, b.e.Suspend(b.ctx, inst.ID, "ops", 0), waymark.ErrConflict)
		b.clock.Advance(2 * time.Hour)
		_, err := b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Empty(t, b.openTasks(inst.ID), "a suspended instance does not move on")
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceSuspended, got.Status)

		require.NoError(t, b.e.Resume(b.ctx, inst.ID, "ops", 0))
		// The deferred step is queued; run the engine to take it.
		require.NoError(t, b.e.Start(b.ctx))
		t.Cleanup(func() { require.NoError(t, b.e.Stop(b.ctx)) })
		b.waitStatus(inst.ID, store.InstanceWaiting)
		require.Len(t, b.openTasks(inst.ID), 1)

		require.NoError(t, b.e.Skip(b.ctx, inst.ID, "review", json.RawMessage(`{"outcome":"skipped"}`), "ops", 0))
		got = b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, got)["after"])
		require.Contains(t, b.logEvents(inst.ID), "activity.skipped:review")
		require.ErrorIs(t, b.e.Skip(b.ctx, inst.ID, "", nil, "ops", 0), waymark.ErrInvalid)
		require.ErrorIs(t, b.e.Skip(b.ctx, inst.ID, "review", nil, "ops", 0), waymark.ErrConflict)
	})
}

func TestConcurrentMessagesToOneReceive(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(receiptDef)
		inst := b.start("receipt", `{"expenseId":"E-9"}`)
		const senders = 20
		results := make([]*waymark.MessageResult, senders)
		errs := make([]error, senders)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range senders {
			wg.Go(func() {
				<-start
				results[i], errs[i] = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{
					Name: "receipt-uploaded", Correlation: "E-9", Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
					MessageID: fmt.Sprintf("m-%d", i), Source: "race",
				})
			})
		}
		close(start)
		wg.Wait()
		delivered, stored := 0, 0
		for i := range senders {
			require.NoError(t, errs[i])
			if results[i].Stored {
				stored++
			} else {
				delivered++
				require.Equal(t, inst.ID, results[i].InstanceID)
			}
		}
		require.Equal(t, 1, delivered, "exactly one message completes the receive")
		require.Equal(t, senders-1, stored, "the others wait for a later receive")
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
	})
}

func TestClaimTask(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(approvalDef)
		inst := b.start("approval", `{"amount":10}`)
		task := b.openTasks(inst.ID)[0]
		require.Empty(t, task.Assignee)

		_, err := b.e.ClaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "eve", Roles: []string{"sales"}})
		require.ErrorIs(t, err, waymark.ErrForbidden)
		_, err = b.e.ClaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "bob", Roles: []string{"finance"}, Version: task.Version + 1})
		require.ErrorIs(t, err, waymark.ErrVersionMismatch)
		_, err = b.e.ClaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Roles: []string{"finance"}})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		require.Empty(t, b.openTasks(inst.ID)[0].Assignee, "rejected claims change nothing")

		claimed, err := b.e.ClaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "bob", Roles: []string{"finance"}, Version: task.Version})
		require.NoError(t, err)
		require.Equal(t, "bob", claimed.Assignee)
		require.Greater(t, claimed.Version, task.Version)
		require.Contains(t, b.logEvents(inst.ID), "task.claimed:approve")

		// Claimed by bob, the task is bob's (or a finance member's).
		_, err = b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Outcome: "approved", User: "bob"})
		require.NoError(t, err)
		_, err = b.e.ClaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "bob", Roles: []string{"finance"}})
		require.ErrorIs(t, err, waymark.ErrConflict)
		_, err = b.e.ClaimTask(b.ctx, "nope", &waymark.CompleteTaskParams{User: "bob"})
		require.ErrorIs(t, err, waymark.ErrNotFound)
	})
}
