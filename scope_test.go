package waymark_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// statuses maps each activity of an instance to the status of its latest
// execution.
func (b *bundle) statuses(id string) map[string]string {
	b.t.Helper()
	full, err := b.e.Instance(b.ctx, id)
	require.NoError(b.t, err)
	out := map[string]string{}
	for _, x := range full.Activities {
		out[x.ActivityID] = x.Status
	}
	return out
}

func (b *bundle) fire(after time.Duration) int {
	b.t.Helper()
	b.clock.Advance(after)
	n, err := b.e.FireDueTimers(b.ctx)
	require.NoError(b.t, err)
	return n
}

// TestScope: a scope runs its sub-graph (a task, a parallel and its join
// inside) as one activity; it ends when its paths have, what it assigns is
// the instance's, and its output (its activities' outputs by id) is
// steps.<scope> and its output variable.
func TestScope(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"price": echo("price")}})
		b.deploy(`
id: scoped
activities:
  - {id: before, type: set, vars: {n: 1}, next: order}
  - id: order
    type: scope
    output: orderResult
    next: after
    activities:
      - {id: price, type: task, handler: price, input: '${ vars.n }', next: fork}
      - {id: fork, type: parallel, branches: [left, right]}
      - {id: left, type: set, vars: {l: '${ vars.n + 1 }'}, next: joined}
      - {id: right, type: set, vars: {r: 3}, next: joined}
      - {id: joined, type: join, next: last}
      - {id: last, type: emit, event: order.priced, payload: {by: '${ steps.price.by }'}}
  - {id: after, type: set, vars: {by: '${ steps.order.price.by }', last: '${ steps.order.last.by }'}}
`)
		inst := b.start("scoped", `{}`)
		got := b.waitStatus(inst.ID, store.InstanceCompleted)
		v := vars(t, got)
		require.Equal(t, "price", v["by"], "steps.<scope>.<activity>")
		require.Equal(t, "price", v["last"])
		require.EqualValues(t, 2, v["l"], "a scope's assignments are the instance's variables")
		require.EqualValues(t, 3, v["r"])
		res, ok := v["orderResult"].(map[string]any)
		require.True(t, ok, "output: %v", v["orderResult"])
		require.Contains(t, res, "price")
		require.Contains(t, res, "joined")
		st := b.statuses(inst.ID)
		require.Equal(t, waymark.ExecCompleted, st["order"])
		require.Equal(t, waymark.ExecCompleted, st["after"])
	})
}

// TestScopeBoundaryTimers: a non-interrupting repeating timer on a scope
// starts a path beside it twice while the scope waits; the interrupting one
// then cancels everything inside (the open task, the timer and the message
// wait), compensates what completed inside in reverse order, and takes its
// path. A scope that ends in time closes its timers.
func TestScopeBoundaryTimers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: booking
activities:
  - {id: init, type: set, vars: {undone: [], reminders: 0}, next: book}
  - id: book
    type: scope
    next: done
    boundary:
      - {after: 1h, every: 1h, interrupting: false, next: remind}
      - {at: '${ timestamp(input.giveUpAt) }', next: gaveUp}
    activities:
      - {id: flight, type: emit, event: booked, payload: {what: flight}, compensate: unFlight, next: hotel}
      - {id: hotel, type: emit, event: booked, payload: {what: hotel}, compensate: unHotel, next: waits}
      - {id: waits, type: parallel, branches: [confirm, payment, cool]}
      - {id: confirm, type: userTask, next: j}
      - {id: payment, type: receive, message: paid, correlation: '${ input.ref }', next: j}
      - {id: cool, type: timer, duration: 10h, next: j}
      - {id: j, type: join}
      - {id: unFlight, type: set, vars: {undone: '${ vars.undone + ["flight"] }'}}
      - {id: unHotel, type: set, vars: {undone: '${ vars.undone + ["hotel"] }'}}
  - {id: remind, type: set, vars: {reminders: '${ vars.reminders + 1 }'}}
  - {id: gaveUp, type: set, vars: {gaveUp: true}}
  - {id: done, type: set, vars: {done: true}}
`)
		inst := b.start("booking", `{"ref":"r1","giveUpAt":"2026-05-01T11:30:00Z"}`)
		get := func() *store.Instance {
			got, err := s.InstanceGet(b.ctx, inst.ID)
			require.NoError(t, err)
			return got
		}
		require.Equal(t, store.InstanceWaiting, get().Status)
		require.Len(t, b.openTasks(inst.ID), 1)
		require.Equal(t, 1, b.fire(time.Hour))
		require.Equal(t, 1, b.fire(time.Hour))
		require.EqualValues(t, 2, vars(t, get())["reminders"], "the scope stays while its reminder runs")
		require.Len(t, b.openTasks(inst.ID), 1)

		require.Equal(t, 1, b.fire(30*time.Minute), "the date timer at 11:30")
		got := get()
		require.Equal(t, store.InstanceCompleted, got.Status)
		v := vars(t, got)
		require.Equal(t, true, v["gaveUp"])
		require.NotContains(t, v, "done")
		require.Equal(t, []any{"hotel", "flight"}, v["undone"], "compensated latest first")
		open, err := s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: inst.ID})
		require.NoError(t, err)
		require.Empty(t, open, "the task, the message wait and every timer are closed")
		st := b.statuses(inst.ID)
		for _, id := range []string{"book", "confirm", "payment", "cool"} {
			require.Equal(t, waymark.ExecCancelled, st[id], id)
		}
		res, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "paid", Correlation: "r1", Payload: []byte(`{}`)})
		require.NoError(t, err)
		require.True(t, res.Stored, "a late message advances nothing")
		require.Equal(t, 0, b.fire(24*time.Hour), "no timer of the scope is left")
		require.Equal(t, got.Version, get().Version)

		// In time: everything inside ends, the scope completes and its
		// timers are closed.
		ok := b.start("booking", `{"ref":"r2","giveUpAt":"2027-01-01T00:00:00Z"}`)
		_, err = b.e.CompleteTask(b.ctx, b.openTasks(ok.ID)[0].ID, &waymark.CompleteTaskParams{Admin: true})
		require.NoError(t, err)
		_, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "paid", Correlation: "r2", Payload: []byte(`{}`)})
		require.NoError(t, err)
		b.clock.Advance(10 * time.Hour)
		_, err = b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		done, err := s.InstanceGet(b.ctx, ok.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, done.Status)
		require.Equal(t, true, vars(t, done)["done"])
		require.Empty(t, vars(t, done)["undone"])
		open, err = s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: ok.ID})
		require.NoError(t, err)
		require.Empty(t, open)
	})
}

// TestScopeBoundaryMessage: an interrupting message on a scope cancels it;
// a non-interrupting one starts a path beside it.
func TestScopeBoundaryMessage(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: order
activities:
  - {id: init, type: set, vars: {notes: []}, next: handle}
  - id: handle
    type: scope
    next: done
    boundary:
      - {message: note, correlation: '${ input.order }', interrupting: false, next: note}
      - {message: cancel, correlation: '${ input.order }', next: cancelled}
    activities:
      - {id: pack, type: userTask, next: ship}
      - {id: ship, type: userTask}
  - {id: note, type: set, vars: {notes: '${ vars.notes + [message.text] }'}}
  - {id: cancelled, type: set, vars: {cancelled: '${ message.reason }'}}
  - {id: done, type: set, vars: {done: true}}
`)
		inst := b.start("order", `{"order":"o1"}`)
		send := func(name, payload string) *waymark.MessageResult {
			t.Helper()
			res, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: name, Correlation: "o1", Payload: []byte(payload)})
			require.NoError(t, err)
			return res
		}
		require.Equal(t, inst.ID, send("note", `{"text":"fragile"}`).InstanceID)
		task := b.openTasks(inst.ID)[0]
		_, err := b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Admin: true})
		require.NoError(t, err)
		require.Len(t, b.openTasks(inst.ID), 1, "ship is open")
		ship := b.openTasks(inst.ID)[0]
		require.Equal(t, inst.ID, send("cancel", `{"reason":"customer"}`).InstanceID)
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		v := vars(t, got)
		require.Equal(t, []any{"fragile"}, v["notes"])
		require.Equal(t, "customer", v["cancelled"])
		require.NotContains(t, v, "done")
		_, err = b.e.CompleteTask(b.ctx, ship.ID, &waymark.CompleteTaskParams{Admin: true})
		require.ErrorIs(t, err, store.ErrConflict, "a late completion advances nothing")
	})
}

// TestScopeFailure: an error inside a scope that nothing inside handles
// fails the scope: the other paths inside are cancelled, what completed
// inside is compensated, and the scope's onError routes the error.
func TestScopeFailure(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"charge": func(context.Context, *waymark.Task) (any, error) {
				return nil, waymark.Business("declined", "card declined")
			},
		}})
		b.deploy(`
id: pay
activities:
  - {id: init, type: set, vars: {undone: []}, next: payment}
  - id: payment
    type: scope
    next: done
    onError: {declined: refused}
    activities:
      - {id: reserve, type: emit, event: reserved, compensate: release, next: fork}
      - {id: fork, type: parallel, branches: [charge, approve]}
      - {id: charge, type: task, handler: charge, next: j}
      - {id: approve, type: userTask, next: j}
      - {id: j, type: join}
      - {id: release, type: set, vars: {undone: '${ vars.undone + ["reserve"] }'}}
  - {id: refused, type: set, vars: {refused: true}}
  - {id: done, type: set, vars: {done: true}}
`)
		inst := b.start("pay", `{}`)
		got := b.waitStatus(inst.ID, store.InstanceCompleted)
		v := vars(t, got)
		require.Equal(t, true, v["refused"])
		require.NotContains(t, v, "done")
		require.Equal(t, []any{"reserve"}, v["undone"])
		require.Empty(t, b.openTasks(inst.ID), "the task beside the failed one is closed")
		st := b.statuses(inst.ID)
		require.Equal(t, waymark.ExecFailed, st["payment"])
		require.Equal(t, waymark.ExecCancelled, st["approve"])
		require.Contains(t, b.logEvents(inst.ID), "scope.cancelling:payment")

		// A failed iteration of a forEach inside a scope fails the scope.
		b.deploy(`
id: pay-lines
activities:
  - id: payment
    type: scope
    next: done
    onError: {declined: refused}
    activities:
      - {id: each, type: forEach, items: [1, 2], parallel: true, body: charge}
      - {id: charge, type: task, handler: charge}
  - {id: refused, type: set, vars: {refused: true}}
  - {id: done, type: set, vars: {done: true}}
`)
		lines := b.start("pay-lines", `{}`)
		got = b.waitStatus(lines.ID, store.InstanceCompleted)
		require.Equal(t, true, vars(t, got)["refused"])
		require.NotContains(t, vars(t, got), "done")
		require.Equal(t, waymark.ExecCancelled, b.statuses(lines.ID)["each"])
	})
}

// TestCancelEnd: an end with cancel stops a scope beside it (everything
// inside at once, its completed work compensated, then its onCancel), or
// the scope around it.
func TestCancelEnd(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: watch
activities:
  - {id: init, type: set, vars: {undone: []}, next: fork}
  - {id: fork, type: parallel, branches: [work, watcher]}
  - id: work
    type: scope
    next: after
    onCancel: aborted
    activities:
      - {id: step1, type: emit, event: stepped, compensate: undo1, next: inner}
      - {id: inner, type: parallel, branches: [review, wait, sleep, child]}
      - {id: review, type: userTask}
      - {id: wait, type: receive, message: go, correlation: '${ input.ref }'}
      - {id: sleep, type: timer, duration: 1h}
      - {id: child, type: subworkflow, definition: child-wait}
      - {id: undo1, type: set, vars: {undone: '${ vars.undone + ["step1"] }'}}
  - {id: watcher, type: receive, message: abort, correlation: '${ input.ref }', next: stop}
  - {id: stop, type: end, cancel: work}
  - {id: aborted, type: set, vars: {aborted: true}, next: after}
  - {id: after, type: set, vars: {after: true}}
`)
		b.deploy("id: child-wait\nactivities:\n  - {id: wait, type: userTask}\n")
		inst := b.start("watch", `{"ref":"w1"}`)
		children, err := s.InstanceList(b.ctx, &store.InstanceListParams{ParentID: inst.ID})
		require.NoError(t, err)
		require.Len(t, children, 1)
		review := b.openTasks(inst.ID)[0]
		_, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "abort", Correlation: "w1", Payload: []byte(`{}`)})
		require.NoError(t, err)
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status, "%v %v", b.statuses(inst.ID), b.logEvents(inst.ID))
		v := vars(t, got)
		require.Equal(t, true, v["aborted"])
		require.Equal(t, true, v["after"], "the cancelled scope goes on with its onCancel")
		require.Equal(t, []any{"step1"}, v["undone"])
		st := b.statuses(inst.ID)
		for _, id := range []string{"work", "review", "wait", "sleep", "child"} {
			require.Equal(t, waymark.ExecCancelled, st[id], id)
		}
		child, err := s.InstanceGet(b.ctx, children[0].ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCancelled, child.Status)
		open, err := s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: inst.ID})
		require.NoError(t, err)
		require.Empty(t, open)
		_, err = b.e.CompleteTask(b.ctx, review.ID, &waymark.CompleteTaskParams{Admin: true})
		require.ErrorIs(t, err, store.ErrConflict)
		res, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "go", Correlation: "w1", Payload: []byte(`{}`)})
		require.NoError(t, err)
		require.True(t, res.Stored)
		require.Equal(t, 0, b.fire(2*time.Hour))

		// An end inside the scope cancels the scope around it.
		b.deploy(`
id: inner-cancel
activities:
  - id: sc
    type: scope
    next: done
    onCancel: out
    activities:
      - {id: fork, type: parallel, branches: [a, wait]}
      - {id: a, type: switch, cases: [{when: '${ input.stop }', next: stop}], default: fine}
      - {id: fine, type: set, vars: {fine: true}}
      - {id: stop, type: end, cancel: sc}
      - {id: wait, type: userTask}
  - {id: out, type: set, vars: {out: true}}
  - {id: done, type: set, vars: {done: true}}
`)
		stopped := b.start("inner-cancel", `{"stop":true}`)
		require.Equal(t, store.InstanceCompleted, stopped.Status)
		require.Equal(t, true, vars(t, stopped)["out"])
		require.NotContains(t, vars(t, stopped), "done")
		require.Empty(t, b.openTasks(stopped.ID))
		going := b.start("inner-cancel", `{"stop":false}`)
		require.Equal(t, store.InstanceWaiting, going.Status)
		require.Len(t, b.openTasks(going.ID), 1)
	})
}

// TestForEachScopeBody: each iteration runs the whole scope with its own
// item and index; the results, in item order, are the scopes' outputs.
func TestForEachScopeBody(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: lines
activities:
  - {id: each, type: forEach, items: '${ input.lines }', parallel: true, body: line, output: results}
  - id: line
    type: scope
    activities:
      - {id: price, type: set, vars: {price: '${ item * 10 }'}, next: approve}
      - {id: approve, type: userTask, next: mark}
      - {id: mark, type: set, vars: {index: '${ index }', item: '${ item }', price: '${ steps.price.price }'}}
`)
		inst := b.start("lines", `{"lines":[3,1,2]}`)
		tasks := b.openTasks(inst.ID)
		require.Len(t, tasks, 3, "every iteration's scope waits in its task")
		for i := len(tasks) - 1; i >= 0; i-- { // complete out of order
			_, err := b.e.CompleteTask(b.ctx, tasks[i].ID, &waymark.CompleteTaskParams{Admin: true})
			require.NoError(t, err)
		}
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		res := vars(t, got)["results"].([]any)
		require.Len(t, res, 3)
		for i, item := range []float64{3, 1, 2} {
			r := res[i].(map[string]any)
			require.Equal(t, map[string]any{"price": item * 10}, r["price"], i)
			require.Equal(t, map[string]any{"index": float64(i), "item": item, "price": item * 10}, r["mark"], i,
				"steps, in an iteration, has that iteration's outputs")
		}
		require.NotContains(t, vars(t, got), "price", "an iteration's variables are its own")
	})
}

// TestTerminateCompensates: a terminate end with compensate: true cancels
// every other path, runs the compensations of what completed, latest
// first, and then completes the instance.
func TestTerminateCompensates(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var mu sync.Mutex
		var undone []string
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"undo": func(_ context.Context, task *waymark.Task) (any, error) {
				var in map[string]any
				require.NoError(t, task.Decode(&in))
				mu.Lock()
				undone = append(undone, in["activityId"].(string))
				mu.Unlock()
				return "undone", nil
			},
		}})
		b.deploy(`
id: stop
activities:
  - {id: a, type: emit, event: a, compensate: undoA, next: b}
  - {id: b, type: emit, event: b, compensate: undoB, next: fork}
  - {id: fork, type: parallel, branches: [review, decide]}
  - {id: review, type: userTask}
  - {id: decide, type: end, terminate: {compensate: true}}
  - {id: undoA, type: task, handler: undo}
  - {id: undoB, type: task, handler: undo}
`)
		inst := b.start("stop", `{}`)
		got := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Empty(t, got.Error)
		mu.Lock()
		require.Equal(t, []string{"b", "a"}, undone)
		mu.Unlock()
		require.Empty(t, b.openTasks(inst.ID))
		require.Equal(t, waymark.ExecCancelled, b.statuses(inst.ID)["review"])
		require.Contains(t, b.logEvents(inst.ID), "instance.compensating")
	})
}

// TestNonInterruptingBoundaryInJoin: the path a non-interrupting boundary
// event starts beside a branch does not count as that branch at the join:
// the join fires once, when the branches themselves arrived.
func TestNonInterruptingBoundaryInJoin(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: remind-join
activities:
  - {id: init, type: set, vars: {reminders: 0, after: 0}, next: fork}
  - {id: fork, type: parallel, branches: [approve, other]}
  - id: approve
    type: userTask
    next: j
    boundary: [{after: 1h, interrupting: false, next: remind}]
  - {id: remind, type: set, vars: {reminders: '${ vars.reminders + 1 }'}, next: j}
  - {id: other, type: userTask, next: j}
  - {id: j, type: join, next: after}
  - {id: after, type: set, vars: {after: '${ vars.after + 1 }'}}
`)
		inst := b.start("remind-join", `{}`)
		require.Equal(t, 1, b.fire(time.Hour))
		tasks := b.openTasks(inst.ID)
		require.Len(t, tasks, 2)
		var other, approve *store.Bookmark
		for _, tk := range tasks {
			if tk.ActivityID == "other" {
				other = tk
			} else {
				approve = tk
			}
		}
		_, err := b.e.CompleteTask(b.ctx, other.ID, &waymark.CompleteTaskParams{Admin: true})
		require.NoError(t, err)
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.EqualValues(t, 0, vars(t, got)["after"], "the reminder is not the approve branch")
		require.Equal(t, store.InstanceWaiting, got.Status)
		_, err = b.e.CompleteTask(b.ctx, approve.ID, &waymark.CompleteTaskParams{Admin: true})
		require.NoError(t, err)
		got, err = s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status, "no second join waits for ever")
		require.EqualValues(t, 1, vars(t, got)["after"])
		require.EqualValues(t, 1, vars(t, got)["reminders"])
	})
}

// TestScopeOwnCompensation: when a scope completed and the instance fails
// later, the scope's own compensation undoes it, in place of the
// compensations of the activities inside it; without one, those run.
func TestScopeOwnCompensation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		for _, own := range []bool{true, false} {
			comp, undo, id := "", "", "plain"
			if own {
				comp = "\n    compensate: undoScope"
				undo = "  - {id: undoScope, type: set, vars: {undone: '${ vars.undone + [\"scope\"] }'}}\n"
				id = "own"
			}
			b.deploy(`
id: ` + id + `
activities:
  - {id: init, type: set, vars: {undone: []}, next: sc}
  - id: sc
    type: scope` + comp + `
    next: boom
    activities:
      - {id: a, type: emit, event: a, compensate: undoA, next: b}
      - {id: b, type: emit, event: b, compensate: undoB}
      - {id: undoA, type: set, vars: {undone: '${ vars.undone + ["a"] }'}}
      - {id: undoB, type: set, vars: {undone: '${ vars.undone + ["b"] }'}}
  - {id: boom, type: fail, message: boom}
` + undo)
			inst := b.start(id, `{}`)
			got, err := s.InstanceGet(b.ctx, inst.ID)
			require.NoError(t, err)
			require.Equal(t, store.InstanceFailed, got.Status)
			want := []any{"b", "a"}
			if own {
				want = []any{"scope"}
			}
			require.Equal(t, want, vars(t, got)["undone"], "own compensation: %v", own)
		}
	})
}
