package waymark_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

const firstOfDef = `
id: pay-or-cancel
activities:
  - {id: first, type: firstOf, branches: [paid, cancelled, review, reminder]}
  - {id: paid, type: receive, message: payment, correlation: '${ input.order }', next: ship}
  - {id: cancelled, type: receive, message: cancellation, correlation: '${ input.order }', next: refund}
  - {id: review, type: userTask, outcomes: [approve], next: ship}
  - {id: reminder, type: timer, duration: 72h, next: remind}
  - {id: ship, type: set, vars: {outcome: '${ has(vars.outcome) ? vars.outcome + ",ship" : "ship" }'}}
  - {id: refund, type: set, vars: {outcome: '${ has(vars.outcome) ? vars.outcome + ",refund" : "refund" }'}}
  - {id: remind, type: set, vars: {outcome: '${ has(vars.outcome) ? vars.outcome + ",remind" : "remind" }'}}
`

// TestFirstOf: whichever of a payment, a cancellation, a review or a timer
// comes first wins; the others are cancelled in the same step (the task
// closed, the timer's bookmark consumed).
func TestFirstOf(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(firstOfDef)

		byMessage := b.start("pay-or-cancel", `{"order":"o-1"}`)
		require.Equal(t, store.InstanceWaiting, byMessage.Status)
		require.Len(t, b.openTasks(byMessage.ID), 1)
		_, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "cancellation", Correlation: "o-1", Payload: json.RawMessage(`{}`)})
		require.NoError(t, err)
		done := b.waitStatus(byMessage.ID, store.InstanceCompleted)
		require.Equal(t, "refund", vars(t, done)["outcome"])
		open, err := s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: byMessage.ID})
		require.NoError(t, err)
		require.Empty(t, open, "the other waits are closed")

		byTimer := b.start("pay-or-cancel", `{"order":"o-2"}`)
		b.clock.Advance(72 * time.Hour)
		fired, err := b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Equal(t, 1, fired)
		require.Equal(t, "remind", vars(t, b.waitStatus(byTimer.ID, store.InstanceCompleted))["outcome"])
		res, err := b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "payment", Correlation: "o-2", Payload: json.RawMessage(`{}`)})
		require.NoError(t, err)
		require.True(t, res.Stored, "a late payment finds no receive: it is kept, and changes nothing")

		// A message that arrived before the firstOf wins as it starts.
		_, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "payment", Correlation: "o-3", Payload: json.RawMessage(`{}`)})
		require.NoError(t, err)
		early := b.start("pay-or-cancel", `{"order":"o-3"}`)
		require.Equal(t, store.InstanceCompleted, early.Status)
		require.Equal(t, "ship", vars(t, early)["outcome"])
		full, err := b.e.Instance(b.ctx, early.ID)
		require.NoError(t, err)
		started := map[string]string{}
		for _, x := range full.Activities {
			started[x.ActivityID] = x.Status
		}
		require.NotContains(t, started, "review", "the branches after the winner are not started")
	})
}

// TestFirstOfConcurrentDeliveries: 50 concurrent deliveries — payments,
// cancellations and completions of the review — race for one firstOf;
// exactly one wins, its path runs once, and every other delivery is
// refused or kept for a later receive.
func TestFirstOfConcurrentDeliveries(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(firstOfDef)
		for round := range 3 {
			order := fmt.Sprintf("o-%d", round)
			inst := b.start("pay-or-cancel", `{"order":"`+order+`"}`)
			task := b.openTasks(inst.ID)[0]
			var wg sync.WaitGroup
			var mu sync.Mutex
			applied, stored, refused := 0, 0, 0
			start := make(chan struct{})
			for i := range 50 {
				wg.Go(func() {
					<-start
					var err error
					var res *waymark.MessageResult
					switch i % 3 {
					case 0:
						res, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "payment", Correlation: order,
							MessageID: fmt.Sprintf("p-%d-%d", round, i), Payload: json.RawMessage(`{}`)})
					case 1:
						res, err = b.e.DeliverMessage(b.ctx, &waymark.MessageParams{Name: "cancellation", Correlation: order,
							MessageID: fmt.Sprintf("c-%d-%d", round, i), Payload: json.RawMessage(`{}`)})
					default:
						_, err = b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Outcome: "approve", Admin: true,
							IdempotencyKey: fmt.Sprintf("r-%d-%d", round, i)})
					}
					mu.Lock()
					defer mu.Unlock()
					switch {
					case errors.Is(err, waymark.ErrConflict):
						refused++
					case err != nil:
						t.Errorf("delivery %d: %v", i, err)
					case res != nil && res.Stored:
						stored++
					default:
						applied++
					}
				})
			}
			close(start)
			wg.Wait()
			done := b.waitStatus(inst.ID, store.InstanceCompleted)
			require.Equal(t, 1, applied, "one delivery wins (stored %d, refused %d)", stored, refused)
			outcome := vars(t, done)["outcome"]
			require.Contains(t, []any{"ship", "refund"}, outcome, "one path ran, once")
			full, err := b.e.Instance(b.ctx, inst.ID)
			require.NoError(t, err)
			statuses := map[string]string{}
			for _, x := range full.Activities {
				statuses[x.ActivityID] = x.Status
			}
			completed := 0
			for _, id := range []string{"paid", "cancelled", "review", "reminder"} {
				switch statuses[id] {
				case waymark.ExecCompleted:
					completed++
				default:
					require.Equal(t, waymark.ExecCancelled, statuses[id], "%s", id)
				}
			}
			require.Equal(t, 1, completed, "exactly one branch completed: %v", statuses)
			open, err := s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: inst.ID})
			require.NoError(t, err)
			require.Empty(t, open)
		}
	})
}

func TestFirstOfValidation(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		_, _, err := b.e.Deploy(b.ctx, []byte(`
id: bad-race
activities:
  - {id: first, type: firstOf, branches: [paid, work]}
  - {id: paid, type: receive, message: payment}
  - {id: work, type: task, handler: h}
`))
		require.ErrorContains(t, err, `activities[0].branches[1]: activity "first": branch "work" is a task activity; the branches of a firstOf are waits: userTask, receive or timer`)
		_, _, err = b.e.Deploy(b.ctx, []byte("id: bad-race\nactivities:\n  - {id: first, type: firstOf}\n"))
		require.ErrorContains(t, err, `missing required field "branches"`)
	})
}
