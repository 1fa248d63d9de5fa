package waymark_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// TestNestedParallelJoin: a join behind nested parallels — one with a join
// of its own, one without — fires once, after every branch of every fork,
// whatever order the branches finish in; no second join execution is left
// waiting.
func TestNestedParallelJoin(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		// The branches finish in the order the test releases them.
		release := map[string]chan struct{}{}
		var mu sync.Mutex
		var order []string
		h := map[string]waymark.TaskHandler{}
		for _, id := range []string{"a", "c", "d", "e", "f"} {
			release[id] = make(chan struct{})
			h[id] = func(ctx context.Context, task *waymark.Task) (any, error) {
				select {
				case <-release[id]:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				mu.Lock()
				order = append(order, id)
				mu.Unlock()
				return id, nil
			}
		}
		b := setup(t, s, setupOpts{handlers: h})
		b.deploy(`
id: nested
activities:
  - {id: outer, type: parallel, branches: [a, inner, bare]}
  - {id: a, type: task, handler: a, next: merge}
  - {id: inner, type: parallel, branches: [c, d]}
  - {id: c, type: task, handler: c, next: inner_join}
  - {id: d, type: task, handler: d, next: inner_join}
  - {id: inner_join, type: join, next: merge}
  - {id: bare, type: parallel, branches: [e, f]}
  - {id: e, type: task, handler: e, next: merge}
  - {id: f, type: task, handler: f, next: merge}
  - {id: merge, type: join, next: after}
  - {id: after, type: set, vars: {joined: '${ has(vars.joined) ? vars.joined + 1 : 1 }'}}
`)
		inst := b.start("nested", `{}`)
		// The early finishers: one of each kind of branch, then all but one.
		for _, id := range []string{"e", "a", "c", "f"} {
			close(release[id])
			b.waitExecStatus(inst.ID, id, waymark.ExecCompleted)
			got, err := s.InstanceGet(b.ctx, inst.ID)
			require.NoError(t, err)
			require.NotEqual(t, store.InstanceCompleted, got.Status, "the join fired after %v", order)
			_, joined := vars(t, got)["joined"]
			require.False(t, joined, "the join fired after %v", order)
		}
		close(release["d"])
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.EqualValues(t, 1, vars(t, done)["joined"], "the join fires once")

		full, err := b.e.Instance(b.ctx, inst.ID)
		require.NoError(t, err)
		var merges, innerJoins []string
		for _, x := range full.Activities {
			switch x.ActivityID {
			case "merge":
				merges = append(merges, x.Status)
			case "inner_join":
				innerJoins = append(innerJoins, x.Status)
			}
		}
		require.Equal(t, []string{waymark.ExecCompleted}, merges, "one join execution, completed")
		require.Equal(t, []string{waymark.ExecCompleted}, innerJoins)
	})
}

// TestJoinInLoopThatForks: a loop that forks a worker and goes round again
// joins every worker of every round at one join: each round's fork waits
// apart, and the join fires once, when the last round is in; with no round
// at all it passes straight through.
func TestJoinInLoopThatForks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{"work": echo("work")}})
		b.deploy(`
id: rounds
activities:
  - {id: init, type: set, vars: {i: 0}, next: loop}
  - id: loop
    type: switch
    cases: [{when: '${ vars.i < input.rounds }', next: spawn}]
    default: merge
  - {id: spawn, type: set, vars: {i: '${ vars.i + 1 }'}, next: fork}
  - {id: fork, type: parallel, branches: [work, loop]}
  - {id: work, type: task, handler: work, input: '${ vars.i }', next: merge}
  - {id: merge, type: join, next: after}
  - {id: after, type: set, vars: {joined: '${ has(vars.joined) ? vars.joined + 1 : 1 }'}}
`)
		// No round: the loop's way out reaches the join without a fork
		// open, and passes through.
		none := b.start("rounds", `{"rounds":0}`)
		require.Equal(t, store.InstanceCompleted, none.Status)
		require.EqualValues(t, 1, vars(t, none)["joined"])

		inst := b.start("rounds", `{"rounds":5}`)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.EqualValues(t, 1, vars(t, done)["joined"])
		full, err := b.e.Instance(b.ctx, inst.ID)
		require.NoError(t, err)
		var works int
		var merges []string
		for _, x := range full.Activities {
			switch x.ActivityID {
			case "work":
				works++
				require.Equal(t, waymark.ExecCompleted, x.Status)
			case "merge":
				merges = append(merges, x.Status)
			}
		}
		require.Equal(t, 5, works)
		require.Equal(t, []string{waymark.ExecCompleted}, slices.Compact(merges))
		var st struct {
			Arrived int    `json:"arrived"`
			Share   string `json:"share"`
		}
		for _, x := range full.Activities {
			if x.ActivityID == "merge" {
				require.NoError(t, json.Unmarshal(x.Input, &st))
			}
		}
		require.Equal(t, 6, st.Arrived, "five workers and the loop's way out")
		require.Equal(t, "1", st.Share)
	})
}

// waitExecStatus waits (on commits) until the latest execution of activity
// in the instance has status.
func (b *bundle) waitExecStatus(instanceID, activity, status string) {
	b.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		execs, err := b.s.ExecutionListByInstance(b.ctx, instanceID)
		require.NoError(b.t, err)
		last := ""
		for _, x := range execs {
			if x.ActivityID == activity {
				last = x.Status
			}
		}
		if last == status {
			return
		}
		select {
		case <-b.commit:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			b.t.Fatalf("activity %s of %s is still not %s (%q)", activity, instanceID, status, last)
		}
	}
}
