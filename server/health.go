package server

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// HealthStatus is the answer of /healthz and /readyz.
type HealthStatus struct {
	Status string `json:"status" doc:"ok, or ready"`
}

type healthOutput struct {
	Body *HealthStatus
}

// schemaVersioner is a store that can tell its schema version: both
// drivers. /readyz asks it, which proves the database answers.
type schemaVersioner interface {
	SchemaVersion(ctx context.Context) (int64, error)
}

func (s *Server) registerHealth() {
	register(s, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: PathHealth, Tags: []string{"health"},
		Summary: "Liveness: the process answers",
	}, permUser, func(ctx context.Context, _ *Principal, _ *struct{}) (*healthOutput, error) {
		return &healthOutput{Body: &HealthStatus{Status: "ok"}}, nil
	})
	register(s, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: PathReady, Tags: []string{"health"},
		Summary:     "Readiness: the database answers and the server is not shutting down",
		Description: "503 while the database cannot be reached, its schema is missing, or the server is stopping.",
	}, permUser, func(ctx context.Context, _ *Principal, _ *struct{}) (*healthOutput, error) {
		select {
		case <-s.closing:
			return nil, newError(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down")
		default:
		}
		if sv, ok := s.engine.Store().(schemaVersioner); ok {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			v, err := sv.SchemaVersion(ctx)
			if err != nil {
				s.log.WarnContext(ctx, "server: not ready", logErrorAttr(err))
				return nil, newError(http.StatusServiceUnavailable, CodeUnavailable, "the database is unavailable").withRetryAfter(1)
			}
			if v == 0 {
				return nil, newError(http.StatusServiceUnavailable, CodeUnavailable, "the database has no Waymark schema; run waymark migrate").withRetryAfter(5)
			}
		}
		return &healthOutput{Body: &HealthStatus{Status: "ready"}}, nil
	})
}
