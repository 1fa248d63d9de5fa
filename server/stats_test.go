package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

func TestInstanceStats(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy(helloYAML)
		b.deploy(approvalYAML)
		b.start("hello", map[string]any{"name": "Ada"}, "?wait=10s", nil)
		b.start("approval", map[string]any{"order": "o-1"}, "?wait=10s", nil)
		b.start("approval", map[string]any{"order": "o-2"}, "?wait=10s", nil)

		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/stats/instances", token: viewerKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var st waymark.InstanceStats
		resp.decode(t, &st)
		require.Equal(t, []waymark.InstanceCount{
			{Definition: "approval", Status: store.InstanceWaiting, Count: 2},
			{Definition: "hello", Status: store.InstanceCompleted, Count: 1},
		}, st.ByStatus)
		require.EqualValues(t, 3600, st.Window)
		require.EqualValues(t, 3, st.Started)
		require.EqualValues(t, 1, st.Ended)

		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/stats/instances?window=60", token: viewerKey})
		resp.decode(t, &st)
		require.EqualValues(t, 60, st.Window)
		b.do(req{method: http.MethodGet, path: server.Prefix + "/stats/instances?window=-1", token: viewerKey}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
		b.do(req{method: http.MethodGet, path: server.Prefix + "/stats/instances", token: financeKey}).
			requireError(t, http.StatusForbidden, server.CodeForbidden)
	})
}
