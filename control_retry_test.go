package waymark_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// Retry of an instance failed in one branch of a parallel revives the
// sibling branch the failure cancelled — still running, or already waiting
// at the join — so the instance completes.
func TestRetryRevivesCancelledBranches(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var flaky, slow, fast atomic.Int32
		shipping := make(chan struct{}) // the first ship run has begun
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"flaky": func(ctx context.Context, task *waymark.Task) (any, error) {
				if flaky.Add(1) == 1 {
					// Fail once note waits at the join and ship runs (its
					// handler may start late: the failure must cancel it,
					// not the revived run's).
					tick := time.NewTicker(5 * time.Millisecond)
					defer tick.Stop()
					deadline := time.After(10 * time.Second)
					select {
					case <-shipping:
					case <-deadline:
						return nil, errors.New("ship never ran")
					}
					for !joinWaits(ctx, s, task.InstanceID) {
						select {
						case <-tick.C:
						case <-deadline:
							return nil, errors.New("the join never waited")
						}
					}
					return nil, waymark.Permanent(errors.New("card declined"))
				}
				return "paid", nil
			},
			"slow": func(ctx context.Context, _ *waymark.Task) (any, error) {
				if slow.Add(1) == 1 {
					close(shipping)
					<-ctx.Done() // runs until the failure cancels it
					return nil, ctx.Err()
				}
				return "shipped", nil
			},
			"fast": func(context.Context, *waymark.Task) (any, error) {
				fast.Add(1)
				return "noted", nil
			},
		}})
		b.deploy(`
id: fork
activities:
  - {id: split, type: parallel, branches: [pay, ship, note]}
  - {id: pay, type: task, handler: flaky, next: pay_done}
  - {id: pay_done, type: set, vars: {paid: true}, next: meet}
  - {id: ship, type: task, handler: slow, output: shipped, next: meet}
  - {id: note, type: task, handler: fast, output: noted, next: meet}
  - {id: meet, type: join, next: done}
  - {id: done, type: end}
`)
		inst := b.start("fork", `{}`)
		b.waitStatus(inst.ID, store.InstanceFailed)
		got, err := b.e.Instance(b.ctx, inst.ID)
		require.NoError(t, err)
		statuses := map[string]string{}
		for _, a := range got.Activities {
			statuses[a.ActivityID] = a.Status
		}
		require.Equal(t, waymark.ExecFailed, statuses["pay"])

		require.NoError(t, b.e.Retry(b.ctx, inst.ID, "ops", 0))
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		v := vars(t, done)
		require.Equal(t, true, v["paid"])
		require.Equal(t, "shipped", v["shipped"])
		require.Equal(t, "noted", v["noted"])
		require.EqualValues(t, 1, fast.Load(), "what completed before the failure is not run again")
		require.Contains(t, b.logEvents(inst.ID), "activity.completed:done")
	})
}

func joinWaits(ctx context.Context, s store.Store, instanceID string) bool {
	execs, err := s.ExecutionListByInstance(ctx, instanceID)
	if err != nil {
		return false
	}
	for _, x := range execs {
		if x.ActivityID == "meet" && x.Status == waymark.ExecWaiting {
			return true
		}
	}
	return false
}

// RetryWith changes variables first: the retried activity runs with the
// corrected data, and the log names the variables and the reason.
func TestRetryWithChangedVars(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"charge": func(_ context.Context, task *waymark.Task) (any, error) {
				var card string
				if err := task.Decode(&card); err != nil || card != "good" {
					return nil, waymark.Permanent(errors.New("card refused"))
				}
				return "charged", nil
			},
		}})
		b.deploy(`
id: fix
activities:
  - {id: init, type: set, vars: {card: bad}, next: charge}
  - {id: charge, type: task, handler: charge, input: '${ vars.card }', output: result}
`)
		inst := b.start("fix", `{}`)
		b.waitStatus(inst.ID, store.InstanceFailed)
		err := b.e.RetryWith(b.ctx, inst.ID, &waymark.RetryParams{Vars: map[string]json.RawMessage{"card": []byte(`nope`)}})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		require.NoError(t, b.e.RetryWith(b.ctx, inst.ID, &waymark.RetryParams{
			Vars: map[string]json.RawMessage{"card": []byte(`"good"`)}, Actor: "ops:lee", Reason: "customer gave another card",
		}))
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Equal(t, "charged", vars(t, done)["result"])
		entries, err := s.LogList(b.ctx, &store.LogListParams{InstanceID: inst.ID, Limit: 100})
		require.NoError(t, err)
		var resumed *store.LogEntry
		for _, e := range entries {
			if e.Event == waymark.EventInstanceResumed {
				resumed = e
			}
		}
		require.NotNil(t, resumed)
		require.Equal(t, "ops:lee", resumed.Actor)
		var d struct {
			Reason string
			Vars   []string
		}
		require.NoError(t, json.Unmarshal(resumed.Details, &d))
		require.Equal(t, "customer gave another card", d.Reason)
		require.Equal(t, []string{"card"}, d.Vars)
	})
}
