package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

func TestDeliverMessage(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		send := func(body any) *response {
			return b.do(req{method: http.MethodPost, path: server.Prefix + "/messages", token: operatorKey, body: body})
		}

		// Nobody waits: the message is kept; again with the same id, a duplicate.
		msg := map[string]any{"name": "paid", "correlation": "o-1", "payload": map[string]any{"paid": 5},
			"messageId": "m-1", "source": "billing"}
		resp := send(msg)
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var res waymark.MessageResult
		resp.decode(t, &res)
		require.True(t, res.Stored)
		require.False(t, res.Duplicate)

		resp = send(msg)
		require.Equal(t, http.StatusOK, resp.status)
		resp.decode(t, &res)
		require.True(t, res.Duplicate)

		send(map[string]any{"correlation": "o-1"}).requireError(t, http.StatusBadRequest, server.CodeInvalid)
		e := send(map[string]any{"name": "paid", "unknown": 1}).requireError(t, http.StatusBadRequest, server.CodeInvalid)
		require.Equal(t, "invalid request: body.unknown: unexpected property", e.Error.Message)
		require.Equal(t, "body.unknown", e.Error.Details[0].Path)
		send("{not json").requireError(t, http.StatusBadRequest, server.CodeInvalid)
	})
}
