package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/server"
)

func TestDefinitionGraph(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.deploy(approvalYAML)
	resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/definitions/approval/versions/1/graph", token: viewerKey})
	require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
	var g server.Graph
	resp.decode(t, &g)
	require.Equal(t, "approval", g.ID)
	require.Equal(t, 1, g.Version)
	require.Equal(t, "approve", g.Start)
	require.Equal(t, []*server.GraphNode{
		{ID: "approve", Type: "userTask", Line: 3, Detail: "for finance"},
		{ID: "done", Type: "end", Line: 9},
	}, g.Nodes)
	require.Equal(t, []*server.GraphEdge{
		{From: "approve", To: "done", Kind: "outcome", Label: "approved"},
		{From: "approve", To: "done", Kind: "outcome", Label: "rejected"},
	}, g.Edges)

	b.do(req{method: http.MethodGet, path: server.Prefix + "/definitions/approval/versions/9/graph", token: viewerKey}).
		requireError(t, http.StatusNotFound, server.CodeNotFound)
	b.do(req{method: http.MethodGet, path: server.Prefix + "/definitions/approval/versions/1/graph", token: financeKey}).
		requireError(t, http.StatusForbidden, server.CodeForbidden)
}
