package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
)

// Breaker is a named circuit breaker of http activities, shared by every
// server on the database.
type Breaker struct {
	Name     string     `json:"name"`
	State    string     `json:"state" enum:"closed,open,half_open"`
	Failures int        `json:"failures" doc:"failed calls in a row"`
	OpenedAt *time.Time `json:"openedAt,omitempty" doc:"when it last opened"`
	// UpdatedAt is when it last recorded a call or changed state.
	UpdatedAt time.Time `json:"updatedAt"`
}

func breakerView(b *waymark.Breaker) *Breaker {
	return &Breaker{Name: b.Name, State: string(b.State), Failures: b.Failures, OpenedAt: b.OpenedAt, UpdatedAt: b.UpdatedAt}
}

// BreakerList is the answer of GET /breakers.
type BreakerList struct {
	Items []*Breaker `json:"items"`
}

type breakerListOutput struct {
	Body *BreakerList
}

type breakerResetInput struct {
	Name string `path:"name" doc:"the breaker's name"`
}

type breakerOutput struct {
	Body *Breaker
}

func (s *Server) registerBreakers() {
	register(s, huma.Operation{
		OperationID: "list-breakers", Method: http.MethodGet, Path: Prefix + "/breakers",
		Tags: []string{"breakers"}, Summary: "List circuit breakers",
		Description: "Every named circuit breaker that has recorded a call, by name, with its state.",
	}, permRead, func(ctx context.Context, _ *Principal, _ *struct{}) (*breakerListOutput, error) {
		list, err := s.engine.Breakers(ctx)
		if err != nil {
			return nil, err
		}
		out := &BreakerList{Items: make([]*Breaker, len(list))}
		for i, b := range list {
			out.Items[i] = breakerView(b)
		}
		return &breakerListOutput{Body: out}, nil
	})
	register(s, huma.Operation{
		OperationID: "reset-breaker", Method: http.MethodPost, Path: Prefix + "/breakers/{name}/reset",
		Tags: []string{"breakers"}, Summary: "Close a circuit breaker",
		Description: "Closes the breaker and clears its failure count; the calls it holds go at their next look.",
		Errors:      []int{http.StatusNotFound},
	}, permOperate, func(ctx context.Context, p *Principal, in *breakerResetInput) (*breakerOutput, error) {
		b, err := s.engine.ResetBreaker(ctx, in.Name)
		if err != nil {
			return nil, err
		}
		s.log.InfoContext(ctx, "server: breaker reset", slog.String("breaker", b.Name), slog.String("user", p.User))
		return &breakerOutput{Body: breakerView(b)}, nil
	})
}
