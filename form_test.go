package waymark_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/store"
)

const formDef = `
id: expense-form
activities:
  - id: approve
    type: userTask
    candidateRoles: [finance]
    outcomes: [approved, rejected]
    form:
      type: object
      required: [amount]
      additionalProperties: false
      properties:
        amount: {type: number, title: Amount, minimum: 0}
        reason: {type: string, title: Reason, enum: [travel, budget]}
    output: decision
    next: {approved: done, rejected: done}
  - {id: done, type: end}
`

func TestUserTaskForm(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{})
		b.deploy(formDef)
		inst := b.start("expense-form", `{}`)
		task := b.openTasks(inst.ID)[0]

		// The task carries its form for the inbox to render.
		tasks, err := b.e.Tasks(b.ctx, &waymark.TaskQuery{InstanceID: inst.ID})
		require.NoError(t, err)
		require.Len(t, tasks.Items, 1)
		var form struct {
			Properties map[string]struct {
				Title string `json:"title"`
			} `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(tasks.Items[0].Form, &form))
		require.Equal(t, "Amount", form.Properties["amount"].Title)

		for _, tt := range []struct {
			data string
			want []definition.InputProblem
		}{
			{`{"reason":"travel"}`, []definition.InputProblem{{Path: "/amount", Message: "is required"}}},
			{`{"amount":-1,"reason":"fun"}`, []definition.InputProblem{
				{Path: "/amount", Message: "must be >= 0"}, {Path: "/reason", Message: "value must be one of 'travel', 'budget'"}}},
			{`{"amount":1,"extra":true}`, []definition.InputProblem{{Path: "/extra", Message: "is not allowed"}}},
			{``, []definition.InputProblem{{Path: "", Message: "must be object, not null"}}},
		} {
			_, err := b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{
				Outcome: "approved", User: "fay", Roles: []string{"finance"}, Data: json.RawMessage(tt.data)})
			require.ErrorIs(t, err, waymark.ErrInvalid, tt.data)
			var formErr *definition.FormError
			require.ErrorAs(t, err, &formErr, tt.data)
			require.Equal(t, "approve", formErr.Activity)
			require.ElementsMatch(t, tt.want, formErr.Problems, tt.data)
		}
		// Refused data changes nothing: the task is open, at its revision.
		again := b.openTasks(inst.ID)
		require.Len(t, again, 1)
		require.Equal(t, task.Version, again[0].Version)

		_, err = b.e.CompleteTask(b.ctx, task.ID, &waymark.CompleteTaskParams{
			Outcome: "approved", User: "fay", Roles: []string{"finance"}, Data: json.RawMessage(`{"amount":12.5,"reason":"travel"}`)})
		require.NoError(t, err)
		done := b.waitStatus(inst.ID, store.InstanceCompleted)
		require.Equal(t, map[string]any{"amount": 12.5, "reason": "travel"}, vars(t, done)["decision"].(map[string]any)["data"])
	})
}

func TestUnclaimTask(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(approvalDef)
		inst := b.start("approval", `{"amount":10}`)
		task := b.openTasks(inst.ID)[0]
		finance := func(user string, version int64) *waymark.CompleteTaskParams {
			return &waymark.CompleteTaskParams{User: user, Roles: []string{"finance"}, Version: version}
		}
		_, err := b.e.UnclaimTask(b.ctx, task.ID, finance("bob", 0))
		require.ErrorIs(t, err, waymark.ErrConflict, "not claimed")
		claimed, err := b.e.ClaimTask(b.ctx, task.ID, finance("bob", 0))
		require.NoError(t, err)

		_, err = b.e.UnclaimTask(b.ctx, task.ID, finance("carl", 0))
		require.ErrorIs(t, err, waymark.ErrForbidden, "only the assignee")
		_, err = b.e.UnclaimTask(b.ctx, task.ID, finance("bob", claimed.Version+1))
		require.ErrorIs(t, err, waymark.ErrVersionMismatch)
		_, err = b.e.UnclaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		require.Equal(t, "bob", b.openTasks(inst.ID)[0].Assignee, "refused unclaims change nothing")

		released, err := b.e.UnclaimTask(b.ctx, task.ID, finance("bob", claimed.Version))
		require.NoError(t, err)
		require.Empty(t, released.Assignee)
		require.Contains(t, b.logEvents(inst.ID), "task.unclaimed:approve")
		// Back with the role: carl may take it now.
		_, err = b.e.ClaimTask(b.ctx, task.ID, finance("carl", 0))
		require.NoError(t, err)
		_, err = b.e.UnclaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "root", Admin: true})
		require.NoError(t, err, "an admin may unclaim anyone's task")
		_, err = b.e.UnclaimTask(b.ctx, "nope", finance("bob", 0))
		require.ErrorIs(t, err, waymark.ErrNotFound)
	})
}

func TestUnclaimTaskWithoutRoles(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy(`
id: mine
activities:
  - {id: ask, type: userTask, assignee: ann, next: done}
  - {id: done, type: end}
`)
		inst := b.start("mine", `{}`)
		task := b.openTasks(inst.ID)[0]
		_, err := b.e.UnclaimTask(b.ctx, task.ID, &waymark.CompleteTaskParams{User: "ann"})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		require.ErrorContains(t, err, "no candidate roles")
		require.Equal(t, "ann", b.openTasks(inst.ID)[0].Assignee)
	})
}
