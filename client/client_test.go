package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const approvalYAML = `id: approval
activities:
  - id: approve
    type: userTask
    title: ${ "Approve " + input.order }
    candidateRoles: [finance]
    outcomes: [approved, rejected]
    next: {approved: wait, rejected: done}
  - id: wait
    type: receive
    message: paid
    correlation: ${ input.order }
    next: done
  - id: done
    type: end
`

// setup runs a server on a real engine and returns clients for an admin
// and for a finance user.
func setup(t *testing.T, tweak func(*server.Config)) (base string, admin, finance *client.Client) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	e, err := waymark.New(s, &waymark.Config{PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	cfg := &server.Config{APIKeys: []server.APIKey{
		{User: "root", Hash: server.HashAPIKey("admin-key"), Roles: []string{server.RoleAdmin}},
		{User: "fran", Hash: server.HashAPIKey("finance-key"), Roles: []string{"finance"}},
	}, RateLimit: -1}
	if tweak != nil {
		tweak(cfg)
	}
	srv, err := server.New(e, cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	admin, err = client.New(hs.URL, &client.Config{Token: "admin-key"})
	require.NoError(t, err)
	finance, err = client.New(hs.URL, &client.Config{Token: "finance-key"})
	require.NoError(t, err)
	return hs.URL, admin, finance
}

func TestClient(t *testing.T) {
	t.Parallel()
	base, admin, finance := setup(t, nil)
	ctx := context.Background()
	require.NoError(t, admin.Health(ctx))
	require.NoError(t, admin.Ready(ctx))

	// Definitions.
	d, err := admin.Deploy(ctx, []byte(approvalYAML))
	require.NoError(t, err)
	require.Equal(t, "approval", d.ID)
	require.True(t, d.Created)
	d, err = admin.Deploy(ctx, []byte(approvalYAML))
	require.NoError(t, err)
	require.False(t, d.Created)
	defs, err := admin.Definitions(ctx)
	require.NoError(t, err)
	require.Len(t, defs, 1)
	def, err := admin.Definition(ctx, "approval", 1)
	require.NoError(t, err)
	require.Equal(t, approvalYAML, def.Source)
	def, err = admin.Definition(ctx, "approval", 0)
	require.NoError(t, err)
	require.Equal(t, 1, def.Version)
	versions, err := admin.DefinitionVersions(ctx, "approval")
	require.NoError(t, err)
	require.Len(t, versions, 1)

	_, err = admin.Deploy(ctx, []byte("id: bad\nactivities:\n  - id: a\n    type: nope\n"))
	var verr *definition.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "activities[0].type", verr.Problems[0].Path)
	require.ErrorIs(t, err, waymark.ErrInvalid)

	// Instances.
	inst, err := admin.StartInstance(ctx, &client.StartParams{Definition: "approval",
		Input: json.RawMessage(`{"order":"o-1"}`), BusinessKey: "B-1", IdempotencyKey: "k1", Wait: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, waymark.InstanceStatus("waiting"), inst.Status)
	again, err := admin.StartInstance(ctx, &client.StartParams{Definition: "approval", Input: json.RawMessage(`{"order":"o-1"}`),
		BusinessKey: "B-1", IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.Equal(t, inst.ID, again.ID)
	_, err = admin.StartInstance(ctx, &client.StartParams{Definition: "approval", Input: json.RawMessage(`{"order":"o-2"}`), IdempotencyKey: "k1"})
	require.ErrorIs(t, err, waymark.ErrConflict, "the key of another start")
	got, err := admin.Instance(ctx, inst.ID, 0)
	require.NoError(t, err)
	require.NotEmpty(t, got.Bookmarks)
	page, err := admin.Instances(ctx, &waymark.InstanceQuery{BusinessKey: "B-1", Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)

	// Interventions, with revisions.
	_, err = admin.Suspend(ctx, inst.ID, got.Version+5)
	require.ErrorIs(t, err, waymark.ErrVersionMismatch)
	susp, err := admin.Suspend(ctx, inst.ID, got.Version)
	require.NoError(t, err)
	require.Equal(t, waymark.InstanceStatus("suspended"), susp.Status)
	res, err := admin.Resume(ctx, inst.ID, susp.Version)
	require.NoError(t, err)
	require.Equal(t, waymark.InstanceStatus("waiting"), res.Status)

	// Tasks, as the finance user.
	tasks, err := finance.Tasks(ctx, &waymark.TaskQuery{Role: "finance"})
	require.NoError(t, err)
	require.Len(t, tasks.Items, 1)
	task, err := finance.Task(ctx, tasks.Items[0].ID)
	require.NoError(t, err)
	_, err = finance.Tasks(ctx, nil)
	require.ErrorIs(t, err, waymark.ErrForbidden)
	claimed, err := finance.ClaimTask(ctx, task.ID, task.Version)
	require.NoError(t, err)
	require.Equal(t, "fran", claimed.Assignee)
	_, err = finance.CompleteTask(ctx, task.ID, &client.CompleteParams{Outcome: "approved", Revision: task.Version})
	require.ErrorIs(t, err, waymark.ErrVersionMismatch)
	done, err := finance.CompleteTask(ctx, task.ID, &client.CompleteParams{Outcome: "approved",
		Data: json.RawMessage(`{"ok":true}`), IdempotencyKey: "c1"})
	require.NoError(t, err)
	require.Equal(t, "fran", done.User)
	_, err = admin.CompleteTask(ctx, task.ID, &client.CompleteParams{Outcome: "rejected"})
	require.ErrorIs(t, err, waymark.ErrConflict)

	// The message ends it.
	msg, err := finance.DeliverMessage(ctx, &waymark.MessageParams{Name: "paid", Correlation: "o-1"})
	require.ErrorIs(t, err, waymark.ErrForbidden, "%v", msg)
	msg, err = admin.DeliverMessage(ctx, &waymark.MessageParams{Name: "paid", Correlation: "o-1",
		Payload: json.RawMessage(`{"paid":1}`), MessageID: "m1", Source: "bank"})
	require.NoError(t, err)
	require.Equal(t, inst.ID, msg.InstanceID)
	end, err := admin.Instance(ctx, inst.ID, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, waymark.InstanceStatus("completed"), end.Status)
	_, err = admin.Retry(ctx, inst.ID, 0)
	require.ErrorIs(t, err, waymark.ErrConflict)
	log, err := admin.Log(ctx, &waymark.LogQuery{InstanceID: inst.ID, Limit: 2})
	require.NoError(t, err)
	require.Len(t, log.Items, 2)
	require.NotEmpty(t, log.NextCursor)

	// Cancel and Skip on another instance.
	other, err := admin.StartInstance(ctx, &client.StartParams{Definition: "approval", Input: json.RawMessage(`{"order":"o-2"}`), Wait: 10 * time.Second})
	require.NoError(t, err)
	skipped, err := admin.Skip(ctx, other.ID, "approve", json.RawMessage(`{"outcome":"rejected"}`), 0)
	require.NoError(t, err)
	require.Equal(t, waymark.InstanceStatus("completed"), skipped.Status)
	_, err = admin.Cancel(ctx, other.ID, &client.CancelParams{Reason: "late"})
	require.ErrorIs(t, err, waymark.ErrConflict)

	// Errors.
	_, err = admin.Instance(ctx, "no-such-id", 0)
	require.ErrorIs(t, err, waymark.ErrNotFound)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 404, apiErr.Status)
	anon, err := client.New(base, nil)
	require.NoError(t, err)
	_, err = anon.Definitions(ctx)
	require.ErrorIs(t, err, client.ErrUnauthorized)
	_, err = client.New("127.0.0.1:8080", nil)
	require.Error(t, err)
}

func TestClientRateLimitAndSize(t *testing.T) {
	t.Parallel()
	_, admin, _ := setup(t, func(c *server.Config) { c.RateLimit, c.RateBurst, c.MaxBodyBytes = 0.001, 2, 64 })
	ctx := context.Background()
	_, err := admin.Deploy(ctx, make([]byte, 100))
	require.ErrorIs(t, err, client.ErrTooLarge)
	_, err = admin.Definitions(ctx)
	require.NoError(t, err)
	_, err = admin.Definitions(ctx)
	require.ErrorIs(t, err, client.ErrRateLimited)
	var apiErr *client.Error
	require.True(t, errors.As(err, &apiErr))
	require.Positive(t, apiErr.RetryAfter)
}
