package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

func TestBreakers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		var list server.BreakerList
		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/breakers", token: operatorKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		resp.decode(t, &list)
		require.Empty(t, list.Items)

		_, err := s.BreakerRecord(t.Context(), &store.BreakerRecordParams{Name: "crm", Threshold: 1, Now: time.Now().UTC()})
		require.NoError(t, err)
		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/breakers", token: operatorKey})
		resp.decode(t, &list)
		require.Len(t, list.Items, 1)
		require.Equal(t, "open", list.Items[0].State)
		require.NotNil(t, list.Items[0].OpenedAt)

		b.do(req{method: http.MethodPost, path: server.Prefix + "/breakers/crm/reset", token: viewerKey}).
			requireError(t, http.StatusForbidden, server.CodeForbidden)
		var br server.Breaker
		resp = b.do(req{method: http.MethodPost, path: server.Prefix + "/breakers/crm/reset", token: operatorKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		resp.decode(t, &br)
		require.Equal(t, "closed", br.State)
		require.Zero(t, br.Failures)
		b.do(req{method: http.MethodPost, path: server.Prefix + "/breakers/nope/reset", token: operatorKey}).
			requireError(t, http.StatusNotFound, server.CodeNotFound)
	})
}
