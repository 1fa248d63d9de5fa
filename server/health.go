package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/service"
)

// HealthStatus is the answer of /healthz and /readyz.
type HealthStatus struct {
	Status string `json:"status" doc:"ok, or ready"`
	// Services is each background service's health (readyz only).
	Services []service.Health `json:"services,omitempty"`
}

type healthOutput struct {
	Body *HealthStatus
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
		Summary: "Readiness: the database answers, its schema is current, the engine's services run",
		Description: "503 with the reason while the database cannot be reached, its schema is not the one this build " +
			"needs, the engine's background services have stopped, or the server is shutting down.",
	}, permUser, func(ctx context.Context, _ *Principal, _ *struct{}) (*healthOutput, error) {
		if err := s.ready(ctx); err != nil {
			return nil, err
		}
		var services []service.Health
		for _, svc := range s.cfg.Services {
			h := svc.Health()
			if !h.OK {
				msg := h.Name + " is not running"
				if h.Running {
					msg = h.Name + " is failing"
				}
				s.log.WarnContext(ctx, "server: not ready", slog.String("service", h.Name), slog.String("error", h.Error))
				return nil, newError(http.StatusServiceUnavailable, CodeUnavailable, msg).withRetryAfter(1)
			}
			services = append(services, h)
		}
		return &healthOutput{Body: &HealthStatus{Status: "ready", Services: services}}, nil
	})
}

// ready is the answer of /readyz: nil, or why the server is not ready.
func (s *Server) ready(ctx context.Context) *Error {
	select {
	case <-s.closing:
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "the server is shutting down")
	default:
	}
	if err := s.engine.Ready(ctx); err != nil {
		s.log.WarnContext(ctx, "server: not ready", logErrorAttr(err))
		msg := "not ready"
		var nr *waymark.NotReadyError
		if errors.As(err, &nr) {
			msg = nr.Reason
		}
		return newError(http.StatusServiceUnavailable, CodeUnavailable, msg).withRetryAfter(1)
	}
	return nil
}
