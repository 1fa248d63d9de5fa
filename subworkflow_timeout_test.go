package waymark_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

// TestSubworkflowTimeout: a subworkflow activity's own timeout cancels the
// child and follows onTimeout, or without one fails the activity and the
// instance; a child that ends in time closes the timeout.
func TestSubworkflowTimeout(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{manualClock: true, noStart: true})
		b.deploy(`
id: slow-child
activities:
  - {id: review, type: userTask, next: done}
  - {id: done, type: end}
`)
		b.deploy(`
id: parent
activities:
  - {id: call, type: subworkflow, definition: slow-child, timeout: 1h, onTimeout: late, next: ok}
  - {id: ok, type: set, vars: {result: ok}}
  - {id: late, type: set, vars: {result: late}}
`)
		b.deploy(`
id: strict
activities:
  - {id: call, type: subworkflow, definition: slow-child, timeout: 1h, next: ok}
  - {id: ok, type: set, vars: {result: ok}}
`)
		child := func(parentID string) *store.Instance {
			children, err := s.InstanceList(b.ctx, &store.InstanceListParams{ParentID: parentID})
			require.NoError(t, err)
			require.Len(t, children, 1)
			return children[0]
		}
		late := b.start("parent", `{}`)
		strict := b.start("strict", `{}`)
		inTime := b.start("parent", `{}`)
		task := b.openTasks(child(inTime.ID).ID)[0]
		_, err := b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{Admin: true})
		require.NoError(t, err)
		require.Equal(t, "ok", vars(t, b.waitStatus(inTime.ID, store.InstanceCompleted))["result"])
		open, err := s.BookmarkListOpen(b.ctx, &store.BookmarkListParams{InstanceID: inTime.ID})
		require.NoError(t, err)
		require.Empty(t, open, "the child ended in time: its timeout is closed")

		// Never early.
		b.clock.Advance(time.Hour - time.Microsecond)
		_, err = b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Equal(t, store.InstanceWaiting, b.waitStatus(late.ID, store.InstanceWaiting).Status)

		b.clock.Advance(time.Microsecond)
		fired, err := b.e.FireDueTimers(b.ctx)
		require.NoError(t, err)
		require.Equal(t, 2, fired)

		got := b.waitStatus(late.ID, store.InstanceCompleted)
		require.Equal(t, "late", vars(t, got)["result"])
		c := child(late.ID)
		require.Equal(t, store.InstanceCancelled, c.Status)
		require.Empty(t, b.openTasks(c.ID), "the cancelled child's task is closed")

		failed := b.waitStatus(strict.ID, store.InstanceFailed)
		var info waymark.ErrorInfo
		require.NoError(t, json.Unmarshal(failed.Error, &info))
		require.Equal(t, waymark.CodeTimeout, info.Code)
		require.Equal(t, "call", info.ActivityID)
		require.Equal(t, "the subworkflow did not end within 1h0m0s", info.Message)
		require.Equal(t, store.InstanceCancelled, child(strict.ID).Status)
		full, err := b.e.Instance(b.ctx, late.ID)
		require.NoError(t, err)
		require.Equal(t, waymark.ExecExpired, full.Activities[0].Status)
	})
}
