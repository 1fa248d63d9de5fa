package waymark_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
)

const queryApprovalDef = `
id: approval
activities:
  - id: approve
    type: userTask
    title: '${ "Approve " + input.who }'
    candidateRoles: [finance]
    outcomes: [yes, no]
    next: {yes: done, no: done}
  - {id: done, type: end}
`

func TestQueries(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(queryApprovalDef)
		var ids []string
		for _, who := range []string{"a", "b", "c"} {
			inst, err := b.e.StartInstance(b.ctx, &waymark.StartParams{
				Definition: "approval", Input: json.RawMessage(`{"who":"` + who + `"}`), BusinessKey: "BK-" + who,
			})
			require.NoError(t, err)
			require.Equal(t, store.InstanceWaiting, inst.Status)
			require.Equal(t, "approval", inst.DefinitionID)
			require.Equal(t, 1, inst.DefinitionVersion)
			require.NotZero(t, inst.Version)
			ids = append(ids, inst.ID)
		}

		// One instance, with its executions and open bookmarks.
		inst, err := b.e.Instance(b.ctx, ids[0])
		require.NoError(t, err)
		require.Len(t, inst.Activities, 1)
		require.Equal(t, "approve", inst.Activities[0].ActivityID)
		require.Equal(t, "waiting", inst.Activities[0].Status)
		require.Len(t, inst.Bookmarks, 1)
		require.Equal(t, "UserAction", inst.Bookmarks[0].Type)
		_, err = b.e.Instance(b.ctx, "nope")
		require.ErrorIs(t, err, waymark.ErrNotFound)

		// Lists page newest first with cursors.
		p1, err := b.e.Instances(b.ctx, &waymark.InstanceQuery{Definition: "approval", Limit: 2})
		require.NoError(t, err)
		require.Len(t, p1.Items, 2)
		require.Equal(t, ids[2], p1.Items[0].ID)
		require.NotEmpty(t, p1.NextCursor)
		p2, err := b.e.Instances(b.ctx, &waymark.InstanceQuery{Definition: "approval", Limit: 2, Cursor: p1.NextCursor})
		require.NoError(t, err)
		require.Len(t, p2.Items, 1)
		require.Equal(t, ids[0], p2.Items[0].ID)
		require.Empty(t, p2.NextCursor)
		byKey, err := b.e.Instances(b.ctx, &waymark.InstanceQuery{BusinessKey: "BK-b"})
		require.NoError(t, err)
		require.Len(t, byKey.Items, 1)
		require.Equal(t, ids[1], byKey.Items[0].ID)
		_, err = b.e.Instances(b.ctx, &waymark.InstanceQuery{Status: "sleeping"})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		_, err = b.e.Instances(b.ctx, &waymark.InstanceQuery{Limit: -1})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		_, err = b.e.Instances(b.ctx, &waymark.InstanceQuery{Limit: 5000})
		require.ErrorIs(t, err, waymark.ErrInvalid)

		// Tasks: open by default, filters, one task, closed ones.
		tasks, err := b.e.Tasks(b.ctx, &waymark.TaskQuery{Role: "finance"})
		require.NoError(t, err)
		require.Len(t, tasks.Items, 3)
		require.Equal(t, "Approve a", tasks.Items[0].Title)
		require.Equal(t, []string{"yes", "no"}, tasks.Items[0].Outcomes)
		require.Equal(t, waymark.TaskOpen, tasks.Items[0].Status)
		none, err := b.e.Tasks(b.ctx, &waymark.TaskQuery{Role: "legal"})
		require.NoError(t, err)
		require.Empty(t, none.Items)
		_, err = b.e.CompleteTask(b.ctx, tasks.Items[0].ID, &waymark.CompleteTaskParams{
			Outcome: "yes", User: "fin", Roles: []string{"finance"},
		})
		require.NoError(t, err)
		task, err := b.e.Task(b.ctx, tasks.Items[0].ID)
		require.NoError(t, err)
		require.Equal(t, waymark.TaskCompleted, task.Status)
		require.Equal(t, "fin", task.ClosedBy)
		require.NotNil(t, task.ClosedAt)
		closed, err := b.e.Tasks(b.ctx, &waymark.TaskQuery{Status: "closed"})
		require.NoError(t, err)
		require.Len(t, closed.Items, 1)
		open, err := b.e.Tasks(b.ctx, &waymark.TaskQuery{Limit: 1})
		require.NoError(t, err)
		require.Len(t, open.Items, 1)
		require.NotEmpty(t, open.NextCursor)
		_, err = b.e.Tasks(b.ctx, &waymark.TaskQuery{Status: "done"})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		_, err = b.e.Task(b.ctx, ids[0])
		require.ErrorIs(t, err, waymark.ErrNotFound, "an instance id is not a task id")

		// The log pages in order.
		l1, err := b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: ids[0], Limit: 2})
		require.NoError(t, err)
		require.Len(t, l1.Items, 2)
		require.Equal(t, "instance.started", l1.Items[0].Event)
		rest, err := b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: ids[0], Limit: 100, Cursor: l1.NextCursor})
		require.NoError(t, err)
		require.Greater(t, rest.Items[0].Seq, l1.Items[1].Seq)
		require.Equal(t, "instance.completed", rest.Items[len(rest.Items)-1].Event)
		require.Equal(t, "fin", rest.Items[len(rest.Items)-1].Actor)
		_, err = b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: ids[0], Cursor: "x"})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		_, err = b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: "nope"})
		require.ErrorIs(t, err, waymark.ErrNotFound)

		// Definitions.
		defs, err := b.e.Definitions(b.ctx)
		require.NoError(t, err)
		require.Len(t, defs, 1)
		require.Equal(t, "approval", defs[0].ID)
		_, err = b.e.Definition(b.ctx, "nope", 0)
		require.ErrorIs(t, err, waymark.ErrNotFound)
		require.ErrorContains(t, err, `definition "nope" is not deployed`)
		_, err = b.e.DefinitionVersions(b.ctx, "nope")
		require.ErrorIs(t, err, waymark.ErrNotFound)
		_, err = b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: "nope"})
		require.ErrorContains(t, err, `definition "nope" is not deployed`)
	})
}

func TestAwait(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		release := make(chan struct{})
		b := setup(t, s, setupOpts{handlers: map[string]waymark.TaskHandler{
			"slow": func(ctx context.Context, _ *waymark.Task) (any, error) {
				select {
				case <-release:
					return map[string]any{"ok": true}, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			},
			"block": func(ctx context.Context, _ *waymark.Task) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		}})
		b.deploy(`
id: blocked
activities:
  - {id: work, type: task, handler: block}
`)
		b.deploy(`
id: instant
activities:
  - {id: s, type: set, vars: {x: 1}}
`)
		b.deploy(`
id: slow
activities:
  - {id: work, type: task, handler: slow, output: result}
`)
		b.deploy(queryApprovalDef)

		// Completed inside StartInstance: Await returns it at once.
		inst := b.start("instant", `{}`)
		require.Equal(t, store.InstanceCompleted, inst.Status)
		got, err := b.e.Await(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceCompleted, got.Status)
		require.JSONEq(t, `{"x":1}`, string(got.Output))

		// Running: Await returns when the task's commit completes it.
		inst = b.start("slow", `{}`)
		require.Equal(t, store.InstanceRunning, inst.Status)
		type result struct {
			inst *waymark.Instance
			err  error
		}
		done := make(chan result, 1)
		go func() {
			i, err := b.e.Await(b.ctx, inst.ID)
			done <- result{i, err}
		}()
		select {
		case r := <-done:
			t.Fatalf("Await returned while the task ran: %+v", r)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		select {
		case r := <-done:
			require.NoError(t, r.err)
			require.Equal(t, store.InstanceCompleted, r.inst.Status)
			require.JSONEq(t, `{"result":{"ok":true}}`, string(r.inst.Output))
		case <-time.After(10 * time.Second):
			t.Fatal("Await did not return after the instance completed")
		}

		// Waiting for a user: Await returns with the open task.
		inst = b.start("approval", `{"who":"x"}`)
		got, err = b.e.Await(b.ctx, inst.ID)
		require.NoError(t, err)
		require.Equal(t, store.InstanceWaiting, got.Status)
		require.Len(t, got.Bookmarks, 1)

		// Bad input and an ended context.
		_, err = b.e.Await(b.ctx, "")
		require.ErrorIs(t, err, waymark.ErrInvalid)
		_, err = b.e.Await(b.ctx, "nope")
		require.ErrorIs(t, err, waymark.ErrNotFound)
		blocked := b.start("blocked", `{}`)
		ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
		defer cancel()
		_, err = b.e.Await(ctx, blocked.ID)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestStartIdempotencyKey(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(queryApprovalDef)
		start := func(input, key, bk string) (*waymark.Instance, error) {
			return b.e.StartInstance(b.ctx, &waymark.StartParams{
				Definition: "approval", Input: json.RawMessage(input), IdempotencyKey: key, BusinessKey: bk, Actor: "ann",
			})
		}
		first, err := start(`{"who":"a","n":1}`, "k1", "BK")
		require.NoError(t, err)
		require.True(t, first.Created)
		again, err := start(`{"n":1, "who":"a"}`, "k1", "BK")
		require.NoError(t, err)
		require.False(t, again.Created, "the earlier start's instance")
		require.Equal(t, first.ID, again.ID)
		_, err = start(`{"who":"b","n":1}`, "k1", "BK")
		require.ErrorIs(t, err, waymark.ErrConflict)
		require.ErrorContains(t, err, "another input")
		_, err = start(`{"who":"a","n":1}`, "k1", "other")
		require.ErrorContains(t, err, "another business key")

		log, err := b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: first.ID})
		require.NoError(t, err)
		require.Equal(t, "ann", log.Items[0].Actor, "the starter is the actor of instance.started")
		list, err := b.e.Instances(b.ctx, nil)
		require.NoError(t, err)
		require.Len(t, list.Items, 1)
	})
}
