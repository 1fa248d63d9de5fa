package definition

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEdges(t *testing.T) {
	t.Parallel()

	def := mustParseFile(t, "testdata/valid/expense-approval.yaml")
	require.Equal(t, []Edge{
		{From: "validate", To: "route", Kind: EdgeNext},
		{From: "route", To: "approve", Kind: EdgeCase, Label: "input.amount > 1000"},
		{From: "route", To: "pay", Kind: EdgeDefault},
		{From: "approve", To: "pay", Kind: EdgeOutcome, Label: "approved"},
		{From: "approve", To: "notify_rejected", Kind: EdgeOutcome, Label: "rejected"},
		{From: "approve", To: "escalate", Kind: EdgeTimeout},
		{From: "pay", To: "wait_receipt", Kind: EdgeNext},
		{From: "pay", To: "refund", Kind: EdgeCompensate},
		{From: "wait_receipt", To: "cool_off", Kind: EdgeNext},
		{From: "wait_receipt", To: "notify_rejected", Kind: EdgeTimeout},
		{From: "cool_off", To: "done", Kind: EdgeNext},
		{From: "escalate", To: "approve", Kind: EdgeNext},
	}, def.Edges())

	all := mustParseFile(t, "testdata/valid/all-types.yaml")
	require.Equal(t, []Edge{
		{From: "reserve", To: "failed", Kind: EdgeError, Label: "*"},
		{From: "reserve", To: "out_of_stock", Kind: EdgeError, Label: "out_of_stock"},
	}, filterEdges(all.Activity("reserve").Edges(), EdgeError))
	require.Equal(t, []Edge{
		{From: "fork", To: "charge", Kind: EdgeBranch},
		{From: "fork", To: "pack", Kind: EdgeBranch},
	}, all.Activity("fork").Edges())
}

func filterEdges(edges []Edge, kind EdgeKind) []Edge {
	var out []Edge
	for _, e := range edges {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}
