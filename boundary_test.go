package waymark_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// TestBoundaryTimers: a non-interrupting reminder fires twice while a user
// task stays open, then the interrupting escalation cancels the task and
// takes its path; the reminder stops with it.
func TestBoundaryTimers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: approval
activities:
  - {id: init, type: set, vars: {reminders: 0}, next: approve}
  - id: approve
    type: userTask
    outcomes: [approved]
    next: done
    boundary:
      - {after: 24h, every: 24h, interrupting: false, next: remind}
      - {after: 60h, next: escalate}
  - {id: remind, type: set, vars: {reminders: '${ vars.reminders + 1 }'}}
  - {id: escalate, type: set, vars: {escalated: true}}
  - {id: done, type: set, vars: {approved: true}}
`)
		inst := b.start("approval", `{}`)
		fire := func(after time.Duration) int {
			t.Helper()
			b.clock.Advance(after)
			n, err := b.e.FireDueTimers(b.ctx)
			require.NoError(t, err)
			return n
		}
		get := func() *store.Instance {
			got, err := s.InstanceGet(b.ctx, inst.ID)
			require.NoError(t, err)
			return got
		}
		require.Equal(t, 0, fire(24*time.Hour-time.Microsecond), "never early")
		require.Equal(t, 1, fire(time.Microsecond))
		require.EqualValues(t, 1, vars(t, get())["reminders"])
		require.Len(t, b.openTasks(inst.ID), 1, "the reminder does not close the task")
		require.Equal(t, 1, fire(24*time.Hour))
		require.EqualValues(t, 2, vars(t, get())["reminders"])
		require.Equal(t, store.InstanceWaiting, get().Status)

		require.Equal(t, 1, fire(12*time.Hour), "the escalation at 60h")
		done := get()
		require.Equal(t, store.InstanceCompleted, done.Status)
		v := vars(t, done)
		require.Equal(t, true, v["escalated"])
		require.EqualValues(t, 2, v["reminders"])
		require.NotContains(t, v, "approved")
		require.Empty(t, b.openTasks(inst.ID), "the escalation cancelled the task")
		require.Equal(t, 0, fire(48*time.Hour), "no reminder after the task is gone")
		full, err := b.e.Instance(b.ctx, inst.ID)
		require.NoError(t, err)
		for _, x := range full.Activities {
			if x.ActivityID == "approve" {
				require.Equal(t, waymark.ExecCancelled, x.Status)
			}
		}

		// Completed in time: the timers are closed with the task.
		inTime := b.start("approval", `{}`)
		_, err = b.e.CompleteTask(b.ctx, b.openTasks(inTime.ID)[0].ID, &waymark.CompleteTaskParams{Outcome: "approved", Admin: true})
		require.NoError(t, err)
		open, err := s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: inTime.ID})
		require.NoError(t, err)
		require.Empty(t, open)
		got, err := s.InstanceGet(b.ctx, inTime.ID)
		require.NoError(t, err)
		require.Equal(t, true, vars(t, got)["approved"])
	})
}

// TestBoundaryOnTask: an interrupting timer on a task cancels the task's
// work when it takes too long.
func TestBoundaryOnTask(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: slow
activities:
  - {id: work, type: task, handler: slow, next: done, boundary: [{after: 1h, next: gave_up}]}
  - {id: gave_up, type: set, vars: {gaveUp: true}}
  - {id: done, type: end}
`)
		inst := b.start("slow", `{}`)
		b.clock.Advance(time.Hour)
		n, err := b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		require.Equal(t, true, vars(t, got)["gaveUp"])
		next, err := s.WorkNextRunAt(b.ctx, nil)
		require.NoError(t, err)
		require.Nil(t, next, "the task's work item is gone")
	})
}

func TestBoundaryValidation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		for _, tt := range []struct{ boundary, problem string }{
			{`[{every: 1h, interrupting: false, next: x}]`, "a boundary event needs exactly one of after, at (timers) or message"},
			{`[{after: 1h, every: 1h, next: x}]`, "every needs interrupting: false"},
			{`[{after: 1h}]`, `missing required field "next"`},
			{`[{after: 1h, nxt: x}]`, `unknown field "nxt" (did you mean "next"?)`},
			{`[{after: 1h, next: nowhere}]`, `unknown activity "nowhere"`},
		} {
			_, _, err := b.e.Deploy(b.ctx, []byte("id: bad\nactivities:\n  - {id: t, type: userTask, next: x, boundary: "+tt.boundary+"}\n  - {id: x, type: end}\n"))
			require.ErrorContains(t, err, tt.problem, tt.boundary)
		}
		_, _, err := b.e.Deploy(b.ctx, []byte("id: bad\nactivities:\n  - {id: t, type: set, vars: {a: 1}, boundary: [{after: 1h, next: t}]}\n"))
		require.ErrorContains(t, err, `field "boundary" is not allowed on a set activity`)
	})
}

// TestBoundaryMessages: a non-interrupting message starts a path beside the
// waiting task each time it arrives; an interrupting one cancels the task.
func TestBoundaryMessages(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: order
activities:
  - {id: init, type: set, vars: {notes: []}, next: pack}
  - id: pack
    type: userTask
    next: done
    boundary:
      - {message: note-added, correlation: '${ input.order }', interrupting: false, next: note}
      - {message: order-cancelled, correlation: '${ input.order }', next: cancelled}
  - {id: note, type: set, vars: {notes: '${ vars.notes + [message.text] }'}}
  - {id: cancelled, type: set, vars: {cancelled: '${ message.reason }'}}
  - {id: done, type: end}
`)
		inst := b.start("order", `{"order":"o-9"}`)
		send := func(name, payload string) *waymark.MessageResult {
			t.Helper()
			res, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: name, Correlation: "o-9", Payload: []byte(payload)})
			require.NoError(t, err)
			return res
		}
		require.Equal(t, inst.ID, send("note-added", `{"text":"fragile"}`).InstanceID)
		require.Equal(t, inst.ID, send("note-added", `{"text":"gift"}`).InstanceID)
		got, err := s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, []any{"fragile", "gift"}, vars(t, got)["notes"])
		require.Len(t, b.openTasks(inst.ID), 1, "the task stays open")

		require.Equal(t, inst.ID, send("order-cancelled", `{"reason":"customer"}`).InstanceID)
		got, err = s.InstanceGet(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		require.Equal(t, "customer", vars(t, got)["cancelled"])
		require.Empty(t, b.openTasks(inst.ID))
		require.True(t, send("note-added", `{"text":"late"}`).Stored, "no boundary waits any more: the message is kept")
	})
}
