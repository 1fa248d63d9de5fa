package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

func (b *testBundle) deploy(src string) {
	b.t.Helper()
	resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/definitions", token: adminKey, body: src})
	require.Contains(b.t, []int{http.StatusOK, http.StatusCreated}, resp.status, "body: %s", resp.body)
}

func (b *testBundle) start(def string, input any, query string, header map[string]string) (*waymark.Instance, *response) {
	b.t.Helper()
	resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/instances" + query, token: operatorKey,
		body: map[string]any{"definition": def, "input": input}, header: header})
	want := http.StatusCreated
	if header["Idempotency-Key"] != "" {
		want = resp.status // 201 the first time, 200 after: checked by the caller
	}
	require.Equal(b.t, want, resp.status, "body: %s", resp.body)
	var inst waymark.Instance
	resp.decode(b.t, &inst)
	require.Equal(b.t, `"`+strconv.FormatInt(inst.Version, 10)+`"`, resp.header.Get("ETag"))
	return &inst, resp
}

func (b *testBundle) instance(id string, query string) (*waymark.Instance, *response) {
	b.t.Helper()
	resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/instances/" + id + query, token: viewerKey})
	require.Equal(b.t, http.StatusOK, resp.status, "body: %s", resp.body)
	var inst waymark.Instance
	resp.decode(b.t, &inst)
	return &inst, resp
}

func TestInstances(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(helloYAML)

		// ?wait= returns the finished instance.
		inst, resp := b.start("hello", map[string]any{"name": "Ada"}, "?wait=20s", nil)
		require.Equal(t, store.InstanceCompleted, inst.Status, "body: %s", resp.body)
		require.JSONEq(t, `{"sent":{"name":"Ada"}}`, string(inst.Variables))
		require.Equal(t, server.Prefix+"/instances/"+inst.ID, resp.header.Get("Location"))
		require.NotEmpty(t, inst.Activities)

		got, resp := b.instance(inst.ID, "")
		require.Equal(t, inst.ID, got.ID)
		require.Equal(t, `"`+strconv.FormatInt(got.Version, 10)+`"`, resp.header.Get("ETag"))
		require.Len(t, got.Activities, 2)

		// Idempotent start: the same key, the same instance.
		key := map[string]string{"Idempotency-Key": "start-1"}
		first, resp1 := b.start("hello", map[string]any{"name": "Bo"}, "", key)
		again, resp2 := b.start("hello", map[string]any{"name": "Bo"}, "", key)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, http.StatusCreated, resp1.status)
		require.Equal(t, http.StatusOK, resp2.status, "a replay is not a creation")
		resp = b.do(req{method: http.MethodPost, path: server.Prefix + "/instances", token: operatorKey,
			body: map[string]any{"definition": "hello", "input": map[string]any{"name": "Cy"}}, header: key})
		require.Equal(t, http.StatusConflict, resp.status, "the key of another start: %s", resp.body)

		// Lists page with cursors, filter by definition and status.
		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/instances?definition=hello&limit=1", token: viewerKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var page waymark.Page[*waymark.Instance]
		resp.decode(t, &page)
		require.Len(t, page.Items, 1)
		require.NotEmpty(t, page.NextCursor)
		resp = b.do(req{method: http.MethodGet, token: viewerKey,
			path: server.Prefix + "/instances?definition=hello&limit=1&cursor=" + url.QueryEscape(page.NextCursor)})
		var next waymark.Page[*waymark.Instance]
		resp.decode(t, &next)
		require.Len(t, next.Items, 1)
		require.NotEqual(t, page.Items[0].ID, next.Items[0].ID)

		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/instances?status=failed", token: viewerKey})
		resp.decode(t, &page)
		require.Empty(t, page.Items)
		require.NotNil(t, page.Items, "an empty list is [], not null")

		// The log.
		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/instances/" + inst.ID + "/log", token: viewerKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var log waymark.Page[*waymark.LogEntry]
		resp.decode(t, &log)
		require.Equal(t, waymark.EventInstanceStarted, log.Items[0].Event)
		require.Equal(t, waymark.EventInstanceCompleted, log.Items[len(log.Items)-1].Event)
	})
}

func TestInstanceErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.deploy(helloYAML)
	start := func(token string, body any, query string) *response {
		return b.do(req{method: http.MethodPost, path: server.Prefix + "/instances" + query, token: token, body: body})
	}
	start(operatorKey, map[string]any{"definition": "nope"}, "").requireError(t, http.StatusNotFound, server.CodeNotFound)
	e := start(operatorKey, map[string]any{"definition": "hello", "input": map[string]any{"name": 3}}, "").
		requireError(t, http.StatusBadRequest, server.CodeInvalid)
	require.Contains(t, e.Error.Message, "name")
	start(operatorKey, map[string]any{}, "").requireError(t, http.StatusBadRequest, server.CodeInvalid)
	start(operatorKey, map[string]any{"definition": "hello", "input": map[string]any{"name": "x"}}, "?wait=soon").
		requireError(t, http.StatusBadRequest, server.CodeInvalid)
	start(viewerKey, map[string]any{"definition": "hello"}, "").requireError(t, http.StatusForbidden, server.CodeForbidden)

	get := func(path string) *response { return b.do(req{method: http.MethodGet, path: path, token: viewerKey}) }
	e = get(server.Prefix+"/instances/no-such-id").requireError(t, http.StatusNotFound, server.CodeNotFound)
	require.Equal(t, "instance no-such-id: get instance: not found", e.Error.Message, "no driver text")
	get(server.Prefix+"/instances/no-such-id/log").requireError(t, http.StatusNotFound, server.CodeNotFound)
	get(server.Prefix+"/instances?status=bogus").requireError(t, http.StatusBadRequest, server.CodeInvalid)
	get(server.Prefix+"/instances?limit=5000").requireError(t, http.StatusBadRequest, server.CodeInvalid)
	get(server.Prefix+"/instances/x?wait=-1s").requireError(t, http.StatusBadRequest, server.CodeInvalid)
	get(server.Prefix+"/instances?cursor=zzz&limit=abc").requireError(t, http.StatusBadRequest, server.CodeInvalid)
	b.do(req{method: http.MethodGet, path: server.Prefix + "/instances"}).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
}

func TestInstanceLongPoll(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := setup(t, setupOpts{handlers: map[string]waymark.TaskHandler{
		"greet": func(ctx context.Context, _ *waymark.Task) (any, error) {
			select {
			case <-release:
				return map[string]any{"ok": true}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}})
	b.deploy(helloYAML)
	inst, _ := b.start("hello", map[string]any{"name": "Ada"}, "", nil)
	require.Equal(t, store.InstanceRunning, inst.Status)

	// The time runs out: the answer is the instance as it is.
	got, _ := b.instance(inst.ID, "?wait=100ms")
	require.Equal(t, store.InstanceRunning, got.Status)

	// The handler returns while the request waits: the answer is the end.
	done := make(chan *waymark.Instance, 1)
	go func() {
		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/instances/" + inst.ID + "?wait=30", token: viewerKey})
		var inst waymark.Instance
		resp.decode(t, &inst)
		done <- &inst
	}()
	close(release)
	select {
	case got := <-done:
		require.Equal(t, store.InstanceCompleted, got.Status)
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not answer")
	}
}

func TestInstanceControl(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(approvalYAML)
		act := func(id, verb, ifMatch string, body any) *response {
			var h map[string]string
			if ifMatch != "" {
				h = map[string]string{"If-Match": ifMatch}
			}
			return b.do(req{method: http.MethodPost, path: server.Prefix + "/instances/" + id + "/" + verb,
				token: operatorKey, body: body, header: h})
		}
		ok := func(resp *response, status store.InstanceStatus) string {
			t.Helper()
			require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
			var inst waymark.Instance
			resp.decode(t, &inst)
			require.Equal(t, status, inst.Status)
			return resp.header.Get("ETag")
		}

		inst, startResp := b.start("approval", map[string]any{"order": "o-1"}, "?wait=10s", nil)
		require.Equal(t, store.InstanceWaiting, inst.Status)
		tag := startResp.header.Get("ETag")

		// If-Match: a stale revision is refused with 412 and changes nothing.
		act(inst.ID, "suspend", `"999"`, nil).requireError(t, http.StatusPreconditionFailed, server.CodePreconditionFailed)
		act(inst.ID, "suspend", "garbage", nil).requireError(t, http.StatusBadRequest, server.CodeInvalid)
		tag = ok(act(inst.ID, "suspend", tag, nil), store.InstanceSuspended)
		act(inst.ID, "suspend", "", nil).requireError(t, http.StatusConflict, server.CodeConflict)
		tag = ok(act(inst.ID, "resume", tag, nil), store.InstanceWaiting)
		act(inst.ID, "retry", "", nil).requireError(t, http.StatusConflict, server.CodeConflict)
		act(inst.ID, "skip", "", map[string]any{}).requireError(t, http.StatusBadRequest, server.CodeInvalid)
		ok(act(inst.ID, "skip", tag, map[string]any{"activity": "approve", "output": map[string]any{"outcome": "approved"}}),
			store.InstanceCompleted)

		other, _ := b.start("approval", map[string]any{"order": "o-2"}, "?wait=10s", nil)
		ok(act(other.ID, "cancel", "", map[string]any{"reason": "changed my mind"}), store.InstanceCancelled)
		act(other.ID, "cancel", "", nil).requireError(t, http.StatusConflict, server.CodeConflict)
		act("no-such-id", "resume", "", nil).requireError(t, http.StatusNotFound, server.CodeNotFound)

		resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/instances/" + other.ID + "/cancel", token: viewerKey})
		resp.requireError(t, http.StatusForbidden, server.CodeForbidden)

		// The log names who intervened.
		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/instances/" + other.ID + "/log", token: viewerKey})
		var log waymark.Page[*waymark.LogEntry]
		resp.decode(t, &log)
		require.Equal(t, "olga", log.Items[len(log.Items)-1].Actor)
	})
}

func TestInstancesByVersionAndTime(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(helloYAML)
		v1, _ := b.start("hello", map[string]any{"name": "Ada"}, "", nil)
		b.deploy(strings.Replace(helloYAML, "name: Hello", "name: Hello again", 1))
		v2, _ := b.start("hello", map[string]any{"name": "Bo"}, "", nil)
		require.Equal(t, 1, v1.DefinitionVersion)
		require.Equal(t, 2, v2.DefinitionVersion)
		list := func(query string) []string {
			t.Helper()
			resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/instances?" + query, token: viewerKey})
			require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
			var page waymark.Page[*waymark.Instance]
			resp.decode(t, &page)
			ids := []string{}
			for _, i := range page.Items {
				ids = append(ids, i.ID)
			}
			return ids
		}
		require.Equal(t, []string{v1.ID}, list("definition=hello&version=1"))
		require.Equal(t, []string{v2.ID}, list("definition=hello&version=2"))
		require.Empty(t, list("version=3"))

		ts := func(tm time.Time) string { return url.QueryEscape(tm.Format(time.RFC3339Nano)) }
		require.Equal(t, []string{v2.ID, v1.ID}, list("createdAfter="+ts(v1.CreatedAt.Add(-time.Second))))
		require.Empty(t, list("createdAfter="+ts(v2.CreatedAt.Add(time.Second))))
		require.Equal(t, []string{v2.ID, v1.ID}, list("createdBefore="+ts(v2.CreatedAt.Add(time.Second))))
		require.Empty(t, list("createdBefore="+ts(v1.CreatedAt.Add(-time.Second))))

		b.do(req{method: http.MethodGet, path: server.Prefix + "/instances?createdAfter=yesterday", token: viewerKey}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
		b.do(req{method: http.MethodGet, path: server.Prefix + "/instances?version=-1", token: viewerKey}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
	})
}

func TestRetryWithVars(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s, handlers: map[string]waymark.TaskHandler{
			"charge": func(_ context.Context, task *waymark.Task) (any, error) {
				var amount float64
				if err := json.Unmarshal(task.Input, &amount); err != nil || amount <= 0 {
					return nil, waymark.Permanent(errors.New("amount must be positive"))
				}
				return map[string]any{"charged": amount}, nil
			},
		}})
		b.deploy(`id: charge
activities:
  - {id: init, type: set, vars: {amount: -1}, next: charge}
  - {id: charge, type: task, handler: charge, input: "${ vars.amount }", output: receipt, next: done}
  - {id: done, type: end}
`)
		inst, _ := b.start("charge", nil, "?wait=10s", nil)
		require.Equal(t, store.InstanceFailed, inst.Status)
		retry := func(body any) *response {
			return b.do(req{method: http.MethodPost, path: server.Prefix + "/instances/" + inst.ID + "/retry", token: operatorKey, body: body})
		}
		retry(map[string]any{"vars": map[string]any{"": 1}}).requireError(t, http.StatusBadRequest, server.CodeInvalid)
		resp := retry(map[string]any{"vars": map[string]any{"amount": 12}, "reason": "corrected the amount"})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		done, _ := b.instance(inst.ID, "?wait=10s")
		require.Equal(t, store.InstanceCompleted, done.Status)
		require.JSONEq(t, `{"amount":12,"receipt":{"charged":12}}`, string(done.Variables))
	})
}
