package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

func TestTasks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(approvalYAML)
		inst, _ := b.start("approval", map[string]any{"order": "o-1"}, "?wait=10s", nil)
		list := func(token, query string) *response {
			return b.do(req{method: http.MethodGet, path: server.Prefix + "/tasks" + query, token: token})
		}

		// A finance user sees the inbox of their role; not everything.
		resp := list(financeKey, "?role=finance")
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var page waymark.Page[*waymark.UserTask]
		resp.decode(t, &page)
		require.Len(t, page.Items, 1)
		task := page.Items[0]
		require.Equal(t, inst.ID, task.InstanceID)
		require.Equal(t, "Approve o-1", task.Title)
		require.Equal(t, []string{"finance"}, task.CandidateRoles)
		list(financeKey, "").requireError(t, http.StatusForbidden, server.CodeForbidden)
		list(financeKey, "?role=admin").requireError(t, http.StatusForbidden, server.CodeForbidden)
		list(financeKey, "?status=bogus&role=finance").requireError(t, http.StatusBadRequest, server.CodeInvalid)
		resp = list(viewerKey, "?instance="+inst.ID)
		resp.decode(t, &page)
		require.Len(t, page.Items, 1)

		get := func(token, id string) *response {
			return b.do(req{method: http.MethodGet, path: server.Prefix + "/tasks/" + id, token: token})
		}
		resp = get(financeKey, task.ID)
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		tag := resp.header.Get("ETag")
		require.NotEmpty(t, tag)
		require.Equal(t, http.StatusOK, get(operatorKey, task.ID).status, "operators read every task")
		get(viewerKey, "no-such-task").requireError(t, http.StatusNotFound, server.CodeNotFound)

		post := func(token, verb string, body any, h map[string]string) *response {
			return b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task.ID + "/" + verb,
				token: token, body: body, header: h})
		}
		// The engine guards the task: olga (operator) is not in finance.
		post(operatorKey, "claim", nil, nil).requireError(t, http.StatusForbidden, server.CodeForbidden)
		post(financeKey, "claim", nil, map[string]string{"If-Match": `"42"`}).
			requireError(t, http.StatusPreconditionFailed, server.CodePreconditionFailed)
		resp = post(financeKey, "claim", nil, map[string]string{"If-Match": tag})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var claimed waymark.UserTask
		resp.decode(t, &claimed)
		require.Equal(t, "fran", claimed.Assignee)
		require.NotEqual(t, tag, resp.header.Get("ETag"))

		// Completing with the old revision: 412; with a bad outcome: 400.
		post(financeKey, "complete", map[string]any{"outcome": "approved"}, map[string]string{"If-Match": tag}).
			requireError(t, http.StatusPreconditionFailed, server.CodePreconditionFailed)
		post(financeKey, "complete", map[string]any{"outcome": "maybe"}, nil).requireError(t, http.StatusBadRequest, server.CodeInvalid)
		post(operatorKey, "complete", map[string]any{"outcome": "approved"}, nil).requireError(t, http.StatusForbidden, server.CodeForbidden)

		key := map[string]string{"Idempotency-Key": "done-1"}
		resp = post(financeKey, "complete", map[string]any{"outcome": "approved", "data": map[string]any{"note": "ok"}}, key)
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var res waymark.TaskResult
		resp.decode(t, &res)
		require.Equal(t, "approved", res.Outcome)
		require.Equal(t, "fran", res.User)

		// The same completion again: the first result; another: a conflict.
		resp = post(financeKey, "complete", map[string]any{"outcome": "approved"}, key)
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		post(adminKey, "complete", map[string]any{"outcome": "rejected"}, nil).requireError(t, http.StatusConflict, server.CodeConflict)
		post(adminKey, "claim", nil, nil).requireError(t, http.StatusConflict, server.CodeConflict)
		b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/no-such-task/complete", token: adminKey}).
			requireError(t, http.StatusNotFound, server.CodeNotFound)

		done, _ := b.instance(inst.ID, "?wait=10s")
		require.Equal(t, store.InstanceCompleted, done.Status)
	})
}

const formYAML = `id: expense
activities:
  - id: approve
    type: userTask
    title: Approve the expense
    candidateRoles: [finance]
    outcomes: [approved, rejected]
    form:
      type: object
      required: [amount]
      properties:
        amount: {type: number, title: Amount, minimum: 0}
        reason: {type: string, title: Reason, enum: [travel, budget]}
    next: {approved: done, rejected: done}
  - id: done
    type: end
`

func TestTaskForm(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(formYAML)
		inst, _ := b.start("expense", nil, "?wait=10s", nil)
		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/tasks?instance=" + inst.ID, token: viewerKey})
		var page waymark.Page[*waymark.UserTask]
		resp.decode(t, &page)
		require.Len(t, page.Items, 1)
		task := page.Items[0]
		require.JSONEq(t, `{"type":"object","required":["amount"],"properties":{
			"amount":{"type":"number","title":"Amount","minimum":0},
			"reason":{"type":"string","title":"Reason","enum":["travel","budget"]}}}`, string(task.Form))

		complete := func(data any) *response {
			return b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task.ID + "/complete", token: financeKey,
				body: map[string]any{"outcome": "approved", "data": data}})
		}
		// Data the form refuses: 422 naming each field; the task stays open.
		e := complete(map[string]any{"amount": -5, "reason": "fun"}).requireError(t, http.StatusUnprocessableEntity, server.CodeInvalidData)
		paths := []string{}
		for _, d := range e.Error.Details {
			paths = append(paths, d.Path)
		}
		require.ElementsMatch(t, []string{"body.data/amount", "body.data/reason"}, paths)
		require.Contains(t, e.Error.Message, "/amount: must be >= 0")
		e = complete(map[string]any{"reason": "travel"}).requireError(t, http.StatusUnprocessableEntity, server.CodeInvalidData)
		require.Equal(t, "body.data/amount", e.Error.Details[0].Path)
		require.Equal(t, "is required", e.Error.Details[0].Message)
		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/tasks/" + task.ID, token: financeKey})
		var still waymark.UserTask
		resp.decode(t, &still)
		require.Equal(t, waymark.TaskOpen, still.Status)
		require.Equal(t, task.Version, still.Version, "a refused completion changes nothing")

		resp = complete(map[string]any{"amount": 12.5, "reason": "travel"})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		done, _ := b.instance(inst.ID, "?wait=10s")
		require.Equal(t, store.InstanceCompleted, done.Status)
	})
}

func TestUnclaimTask(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(approvalYAML)
		inst, _ := b.start("approval", map[string]any{"order": "o-2"}, "?wait=10s", nil)
		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/tasks?instance=" + inst.ID, token: viewerKey})
		var page waymark.Page[*waymark.UserTask]
		resp.decode(t, &page)
		require.Len(t, page.Items, 1)
		id := page.Items[0].ID
		post := func(token, verb string, h map[string]string) *response {
			return b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/" + id + "/" + verb, token: token, header: h})
		}
		post(financeKey, "unclaim", nil).requireError(t, http.StatusConflict, server.CodeConflict)
		resp = post(financeKey, "claim", nil)
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		tag := resp.header.Get("ETag")
		post(operatorKey, "unclaim", nil).requireError(t, http.StatusForbidden, server.CodeForbidden)
		post(financeKey, "unclaim", map[string]string{"If-Match": `"1"`}).
			requireError(t, http.StatusPreconditionFailed, server.CodePreconditionFailed)
		resp = post(financeKey, "unclaim", map[string]string{"If-Match": tag})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var task waymark.UserTask
		resp.decode(t, &task)
		require.Empty(t, task.Assignee)
		b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/no-such/unclaim", token: adminKey}).
			requireError(t, http.StatusNotFound, server.CodeNotFound)
		log, err := b.e.Log(b.ctx, &waymark.LogQuery{InstanceID: inst.ID})
		require.NoError(t, err)
		var events []string
		for _, l := range log.Items {
			events = append(events, l.Event+":"+l.Actor)
		}
		require.Contains(t, events, "task.unclaimed:fran")
	})
}

func TestMe(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var me server.Me
	resp := b.do(req{method: http.MethodGet, path: server.PathMe, token: operatorKey})
	require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
	resp.decode(t, &me)
	require.Equal(t, server.Me{User: "olga", Roles: []string{"operator"}, May: []string{"read", "operate"}}, me)
	resp = b.do(req{method: http.MethodGet, path: server.PathMe, token: financeKey})
	resp.decode(t, &me)
	require.Equal(t, server.Me{User: "fran", Roles: []string{"finance"}, May: []string{}}, me)
	b.do(req{method: http.MethodGet, path: server.PathMe}).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)

	dev := setup(t, setupOpts{tweak: func(c *server.Config) { *c = server.Config{InsecureDev: true, RateLimit: -1} }})
	resp = dev.do(req{method: http.MethodGet, path: server.PathMe, header: map[string]string{server.HeaderUser: "ann", server.HeaderRoles: "finance,worker"}})
	resp.decode(t, &me)
	require.Equal(t, server.Me{User: "ann", Roles: []string{"finance", "worker"}, InsecureDev: true, May: []string{"work"}}, me)
}
