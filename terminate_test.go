package waymark_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// TestTerminateInParallel: a terminating end on one branch ends the
// instance at once; the other branches' task and user task are cancelled.
func TestTerminateInParallel(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: stop-all
activities:
  - {id: fork, type: parallel, branches: [review, work, decide]}
  - {id: review, type: userTask, next: joined}
  - {id: work, type: task, handler: slow, next: joined}
  - {id: decide, type: switch, cases: [{when: '${ input.abort }', next: abort}], default: joined}
  - {id: abort, type: end, terminate: true}
  - {id: joined, type: join, next: done}
  - {id: done, type: set, vars: {done: true}}
`)
		inst := b.start("stop-all", `{"abort":true}`)
		require.Equal(t, store.InstanceCompleted, inst.Status)
		require.NotContains(t, vars(t, inst), "done")
		require.Empty(t, b.openTasks(inst.ID), "the user task is closed")
		next, err := s.WorkNextRunAt(b.ctx, nil)
		require.NoError(t, err)
		require.Nil(t, next, "the task's work is gone")
		full, err := b.e.Instance(b.ctx, inst.ID)
		require.NoError(t, err)
		statuses := map[string]string{}
		for _, x := range full.Activities {
			statuses[x.ActivityID] = x.Status
		}
		require.Equal(t, waymark.ExecCancelled, statuses["review"])
		require.Equal(t, waymark.ExecCancelled, statuses["work"])
		require.Equal(t, waymark.ExecCompleted, statuses["abort"])

		going := b.start("stop-all", `{"abort":false}`)
		require.Equal(t, store.InstanceRunning, going.Status, "without the terminate the others go on")
	})
}
