package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark/definition"
)

// Graph is a definition version as a graph: its activities and the
// transitions between them, for drawing (the dashboard lays it out).
type Graph struct {
	ID      string       `json:"id"`
	Version int          `json:"version"`
	Start   string       `json:"start" doc:"the id of the first activity"`
	Nodes   []*GraphNode `json:"nodes"`
	Edges   []*GraphEdge `json:"edges"`
}

// GraphNode is one activity.
type GraphNode struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
	// Line is the activity's line in the source.
	Line int `json:"line,omitempty"`
	// Parent is the scope the activity belongs to, empty at the top level.
	Parent string `json:"parent,omitempty" doc:"the id of the scope node this activity is drawn inside"`
	// Cancel is the scope a cancel end cancels.
	Cancel string `json:"cancel,omitempty"`
	// Detail says what the activity does in a few words: its handler,
	// message, timer, subworkflow or breaker.
	Detail string `json:"detail,omitempty"`
}

// GraphEdge is one transition.
type GraphEdge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Kind  string `json:"kind" enum:"scope,next,outcome,case,default,branch,onTimeout,onCancel,onError,boundary,body,compensate"`
	Label string `json:"label,omitempty" doc:"the outcome, switch condition or error name"`
}

type graphOutput struct {
	Body *Graph
}

// graphOf turns a parsed definition into its graph.
func graphOf(def *definition.Definition, version int) *Graph {
	g := &Graph{ID: def.ID, Version: version, Start: def.Start, Nodes: []*GraphNode{}, Edges: []*GraphEdge{}}
	for _, a := range def.Activities {
		n := &GraphNode{ID: a.ID, Type: string(a.Type), Name: a.Name, Line: a.Line, Parent: a.Parent, Cancel: a.Cancel}
		switch {
		case a.Handler != "":
			n.Detail = "handler " + a.Handler
		case a.Message != "":
			n.Detail = "message " + a.Message
		case a.Duration > 0:
			n.Detail = "after " + a.Duration.String()
		case a.Definition != "":
			n.Detail = "starts " + a.Definition
		case a.CircuitBreaker != "":
			n.Detail = "breaker " + a.CircuitBreaker
		case len(a.CandidateRoles) > 0:
			n.Detail = "for " + strings.Join(a.CandidateRoles, ", ")
		}
		g.Nodes = append(g.Nodes, n)
		for _, e := range a.Edges() {
			g.Edges = append(g.Edges, &GraphEdge{From: e.From, To: e.To, Kind: string(e.Kind), Label: e.Label})
		}
	}
	return g
}

func (s *Server) registerGraph() {
	register(s, huma.Operation{
		OperationID: "get-definition-graph", Method: http.MethodGet, Path: Prefix + "/definitions/{id}/versions/{version}/graph",
		Tags: []string{"definitions"}, Summary: "One version of a definition as a graph of activities and transitions",
		Description: "What the dashboard draws its process maps from: nodes (activities) and edges (transitions, " +
			"with the outcome, case, default, branch, onTimeout, onError or compensate they follow).",
		Errors: []int{http.StatusNotFound},
	}, permRead, func(ctx context.Context, _ *Principal, in *definitionVersionInput) (*graphOutput, error) {
		d, err := s.engine.Definition(ctx, in.ID, in.Version)
		if err != nil {
			return nil, err
		}
		def, err := definition.Parse([]byte(d.Source))
		if err != nil {
			return nil, err
		}
		return &graphOutput{Body: graphOf(def, d.Version)}, nil
	})
}
