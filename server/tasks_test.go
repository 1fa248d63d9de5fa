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
