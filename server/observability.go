package server

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/service"
)

// Paths of the observability endpoints.
const (
	// PathMetrics serves Config.Metrics (Prometheus text format).
	PathMetrics = "/metrics"
	// PathPprof is the prefix of the Go profiler's endpoints (admin only).
	PathPprof = "/debug/pprof/"
)

// SinkStats is the delivery state of one outbox sink (see
// OutboxStatsSource).
type SinkStats = telemetry.SinkStats

// OutboxStatsSource reports the outbox per sink for the metrics and the
// diagnostics.
type OutboxStatsSource = telemetry.OutboxStats

// OutboxStatsFunc adapts a function to OutboxStatsSource.
type OutboxStatsFunc = telemetry.OutboxStatsFunc

// storeOutboxStats reads the backlog per sink from the store (the
// default OutboxStatsSource).
func (s *Server) storeOutboxStats(ctx context.Context) ([]SinkStats, error) {
	st, err := outbox.Stats(ctx, s.engine.Store(), s.engine.Clock().Now().UTC())
	if err != nil {
		return nil, err
	}
	out := make([]SinkStats, len(st))
	for i, x := range st {
		out[i] = SinkStats{Sink: x.Sink, Pending: x.Pending, OldestPendingAge: x.Lag, Dead: x.Dead}
	}
	return out, nil
}

// startRequest starts the server span of a request, a child of its
// traceparent, and returns the request with the span in its context.
func (s *Server) startRequest(r *http.Request) (*http.Request, trace.Span) {
	ctx := telemetry.Extract(r.Context(), r.Header)
	if !s.tel.Tracing {
		return r.WithContext(ctx), trace.SpanFromContext(ctx)
	}
	ctx, span := s.tel.Tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
	))
	return r.WithContext(ctx), span
}

// endRequest names the request's span by its route, ends it, and records
// the request's latency by method, route and status.
func (s *Server) endRequest(r *http.Request, span trace.Span, status int, start time.Time) {
	route := routeOf(r)
	telemetry.Record(r.Context(), s.tel.APIRequestDuration, telemetry.Since(start),
		attribute.String(telemetry.LabelMethod, r.Method), attribute.String(telemetry.LabelRoute, route),
		attribute.String(telemetry.LabelStatus, strconv.Itoa(status)))
	if !s.tel.Tracing {
		return
	}
	span.SetName(r.Method + " " + route)
	span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		telemetry.EndSpan(span, &Error{status: status, Body: ErrorBody{Code: CodeInternal, Message: http.StatusText(status)}})
		return
	}
	span.End()
}

// routeOf is the route pattern that served r (/api/v1/instances/{id}), a
// fixed name for the paths outside the mux, or "unmatched": never the raw
// path, which would make the metric's labels unbounded.
func routeOf(r *http.Request) string {
	if _, path, ok := strings.Cut(r.Pattern, " "); ok && path != "/" {
		return path
	}
	switch p := r.URL.Path; {
	case p == PathHealth, p == PathReady, p == PathMetrics, p == PathOpenAPI, p == PathIndex:
		return p
	case strings.HasPrefix(p, PathPprof):
		return PathPprof
	}
	return "unmatched"
}

// servicesOK reports whether every background service of the process
// (Config.Services) can do its work, as /readyz checks.
func (s *Server) servicesOK() bool {
	for _, svc := range s.cfg.Services {
		if !svc.Health().OK {
			return false
		}
	}
	return true
}

// servePprof answers the profiler's endpoints.
func servePprof(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, PathPprof) {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}

// registerGauges reads the outbox per sink (Config.OutboxStats), the
// server's readiness and its build when metrics are scraped.
func (s *Server) registerGauges(mp metric.MeterProvider) error {
	m := mp.Meter(telemetry.ScopeName)
	ready, err := m.Int64ObservableGauge(telemetry.MetricServerReady, metric.WithDescription("1 while this server is ready (see /readyz), 0 otherwise."))
	if err != nil {
		return err
	}
	build, err := m.Int64ObservableGauge(telemetry.MetricBuildInfo, metric.WithDescription("1, labelled with the server's version."))
	if err != nil {
		return err
	}
	pending, err1 := m.Int64ObservableGauge(telemetry.MetricOutboxPending, metric.WithDescription("Events waiting for delivery, by sink."))
	lag, err2 := m.Float64ObservableGauge(telemetry.MetricOutboxLag, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event waiting for delivery (the lag), by sink."))
	dead, err3 := m.Int64ObservableGauge(telemetry.MetricOutboxDead, metric.WithDescription("Events that gave up (dead letters), by sink."))
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return err
		}
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		o.ObserveInt64(build, 1, metric.WithAttributes(attribute.String(telemetry.LabelVersion, s.cfg.Version)))
		v := int64(0)
		if s.ready(ctx) == nil && s.servicesOK() {
			v = 1
		}
		o.ObserveInt64(ready, v)
		if s.cfg.OutboxStats == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		stats, err := s.cfg.OutboxStats.OutboxStats(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "server: outbox stats for metrics", logErrorAttr(err))
			return err
		}
		for _, st := range stats {
			sink := metric.WithAttributes(attribute.String(telemetry.LabelSink, st.Sink))
			o.ObserveInt64(pending, st.Pending, sink)
			o.ObserveFloat64(lag, st.OldestPendingAge.Seconds(), sink)
			o.ObserveInt64(dead, st.Dead, sink)
		}
		return nil
	}, ready, build, pending, lag, dead)
	return err
}

// AttentionList is the answer of GET /attention.
type AttentionList struct {
	Items []*waymark.AttentionItem `json:"items"`
}

type attentionInput struct {
	WaitingLongerThan string `query:"waitingLongerThan" doc:"how long an instance may wait before it needs attention (1h, 30m); 24h when left out"`
	Limit             int    `query:"limit" minimum:"0" maximum:"1000" doc:"at most this many items per reason; 100 when left out"`
}

type attentionOutput struct {
	Body *AttentionList
}

// DiagnosticsSummary is the answer of GET /diagnostics.
type DiagnosticsSummary struct {
	*waymark.Diagnostics
	// ServerVersion is the server's configured version.
	ServerVersion string `json:"serverVersion"`
	// Ready is the server's readiness; NotReady says why not.
	Ready    bool   `json:"ready"`
	NotReady string `json:"notReady,omitempty"`
	// Outbox is the outbox per sink.
	Outbox []OutboxSinkView `json:"outbox"`
	// ProcessServices are the background services the process runs beside
	// the engine (the outbox dispatcher, …), with their health.
	ProcessServices []service.Health `json:"processServices"`
}

// OutboxSinkView is one sink's outbox state in the diagnostics.
type OutboxSinkView struct {
	Sink                    string  `json:"sink"`
	Pending                 int64   `json:"pending"`
	OldestPendingAgeSeconds float64 `json:"oldestPendingAgeSeconds"`
	Dead                    int64   `json:"dead"`
}

type diagnosticsOutput struct {
	Body *DiagnosticsSummary
}

func (s *Server) registerObservability() {
	register(s, huma.Operation{
		OperationID: "attention", Method: http.MethodGet, Path: Prefix + "/attention",
		Tags: []string{"operations"}, Summary: "What needs an operator now", Errors: []int{http.StatusBadRequest},
		Description: "Suspended instances, activities failing and retrying, instances waiting longer than the threshold, " +
			"instances with an undelivered event, and open breakers — each with the reason. Suspended first, then " +
			"retrying, dead events, waiting and breakers; the oldest first within each.",
	}, permRead, func(ctx context.Context, _ *Principal, in *attentionInput) (*attentionOutput, error) {
		p := &waymark.AttentionParams{Limit: in.Limit}
		if in.WaitingLongerThan != "" {
			d, err := time.ParseDuration(in.WaitingLongerThan)
			if err != nil || d <= 0 {
				return nil, newError(http.StatusBadRequest, CodeInvalid,
					"waitingLongerThan "+strconv.Quote(in.WaitingLongerThan)+": want a positive duration such as 1h",
					ErrorDetail{Path: "query.waitingLongerThan", Message: "want a positive duration such as 1h"})
			}
			p.WaitingLongerThan = d
		}
		items, err := s.engine.Attention(ctx, p)
		if err != nil {
			return nil, err
		}
		if items == nil {
			items = []*waymark.AttentionItem{}
		}
		return &attentionOutput{Body: &AttentionList{Items: items}}, nil
	})
	register(s, huma.Operation{
		OperationID: "diagnostics", Method: http.MethodGet, Path: Prefix + "/diagnostics",
		Tags: []string{"operations"}, Summary: "Diagnostics of this server",
		Description: "Version, node id, database and schema version, background services and their last runs, " +
			"service leases, connection pool and outbox state.",
	}, permAdmin, func(ctx context.Context, _ *Principal, _ *struct{}) (*diagnosticsOutput, error) {
		d, err := s.engine.Diagnostics(ctx)
		if err != nil {
			return nil, err
		}
		out := &DiagnosticsSummary{Diagnostics: d, ServerVersion: s.cfg.Version, Ready: true,
			Outbox: []OutboxSinkView{}, ProcessServices: []service.Health{}}
		if err := s.ready(ctx); err != nil {
			out.Ready, out.NotReady = false, err.Body.Message
		}
		for _, svc := range s.cfg.Services {
			h := svc.Health()
			out.ProcessServices = append(out.ProcessServices, h)
			if !h.OK && out.Ready {
				out.Ready, out.NotReady = false, h.Name+" is not running or failing"
			}
		}
		if s.cfg.OutboxStats != nil {
			stats, err := s.cfg.OutboxStats.OutboxStats(ctx)
			if err != nil {
				return nil, err
			}
			for _, st := range stats {
				out.Outbox = append(out.Outbox, OutboxSinkView{Sink: st.Sink, Pending: st.Pending,
					OldestPendingAgeSeconds: st.OldestPendingAge.Seconds(), Dead: st.Dead})
			}
		}
		return &diagnosticsOutput{Body: out}, nil
	})
}
