package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
)

type statsInput struct {
	Window int `query:"window" minimum:"0" maximum:"604800" doc:"the recent period in seconds, 3600 by default"`
}

type statsOutput struct {
	Body *waymark.InstanceStats
}

func (s *Server) registerStats() {
	register(s, huma.Operation{
		OperationID: "get-instance-stats", Method: http.MethodGet, Path: Prefix + "/stats/instances",
		Tags: []string{"instances"}, Summary: "Instance counts by definition and status, and recent starts and ends",
		Description: "What the dashboard's overview shows: one count per definition and status, and how many " +
			"instances started and ended in the last window seconds.",
		Errors: []int{http.StatusBadRequest},
	}, permRead, func(ctx context.Context, _ *Principal, in *statsInput) (*statsOutput, error) {
		st, err := s.engine.Stats(ctx, time.Duration(in.Window)*time.Second)
		if err != nil {
			return nil, err
		}
		return &statsOutput{Body: st}, nil
	})
}
