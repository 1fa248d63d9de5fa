package waymark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/store"
)

// The engine's telemetry: spans, metrics and the maintained instance
// counts. Instrument names live in internal/telemetry; docs/observability.md
// lists them.

// instanceTrace is the span context an instance's spans hang from.
func instanceTrace(inst *store.Instance) trace.SpanContext {
	return telemetry.InstanceContext(inst.ID, inst.TraceParent)
}

// traceHeaders are the stored headers of the instance's outbox events: the
// traceparent that puts their deliveries into the instance's trace.
func (s *instState) traceHeaders() []byte {
	if s.headers == nil {
		s.headers = []byte(`{"traceparent":"` + telemetry.FormatTraceparent(instanceTrace(s.inst)) + `"}`)
	}
	return s.headers
}

// stepKind labels a unit of work by who asked for it, with a bounded set
// of values (an actor may be any user id).
func stepKind(actor string) string {
	switch actor {
	case "":
		return "engine"
	case "timer":
		return "timer"
	}
	return "command"
}

// countDeltas adds the changes of the maintained instance counts that t
// makes: +1 for a new instance in its status, -1/+1 for a status change.
func (t *txn) countDeltas() error {
	var deltas []store.InstanceCountDelta
	add := func(def string, st store.InstanceStatus, d int64) {
		for i := range deltas {
			if deltas[i].DefinitionID == def && deltas[i].Status == st {
				deltas[i].Delta += d
				return
			}
		}
		deltas = append(deltas, store.InstanceCountDelta{DefinitionID: def, Status: st, Delta: d})
	}
	for _, s := range t.order {
		switch {
		case s.isNew:
			add(s.inst.DefinitionID, s.status, 1)
		case s.status != s.inst.Status:
			add(s.inst.DefinitionID, s.inst.Status, -1)
			add(s.inst.DefinitionID, s.status, 1)
		}
	}
	deltas = slices.DeleteFunc(deltas, func(d store.InstanceCountDelta) bool { return d.Delta == 0 })
	if len(deltas) == 0 {
		return nil
	}
	// One order for every transaction: no deadlocks between them.
	slices.SortFunc(deltas, func(a, b store.InstanceCountDelta) int {
		return strings.Compare(a.DefinitionID+"\x00"+string(a.Status), b.DefinitionID+"\x00"+string(b.Status))
	})
	return t.tx.InstanceCountsAdd(t.ctx, &store.InstanceCountsAddParams{Shard: rand.IntN(16), Deltas: deltas})
}

// observeStep records a committed unit of work: its metrics, the metrics
// its events stand for, and (tracing) its span, in the trace of the first
// instance it touched.
func (e *Engine) observeStep(t *txn, start time.Time, tries int) {
	tel := e.tel
	ctx := t.ctx
	kind := attribute.String(telemetry.LabelKind, stepKind(t.actor))
	telemetry.Record(ctx, tel.StepDuration, telemetry.Since(start), kind)
	for _, l := range t.lateness {
		telemetry.Record(ctx, tel.TimerLateness, l.d.Seconds(), attribute.String(telemetry.LabelKind, l.kind))
	}
	for _, ev := range t.events {
		def := attribute.String(telemetry.LabelDefinition, ev.DefinitionID)
		switch ev.Type {
		case EventInstanceStarted:
			telemetry.Add(ctx, tel.InstancesStarted, 1, def)
		case EventInstanceCompleted, EventInstanceFailed, EventInstanceCancelled, EventInstanceTimedOut:
			telemetry.Add(ctx, tel.InstancesEnded, 1, def,
				attribute.String(telemetry.LabelStatus, strings.TrimPrefix(ev.Type, "instance.")))
		case EventInstanceSuspended:
			telemetry.Add(ctx, tel.Suspensions, 1, def)
		case EventActivityRetrying, EventActivityFailed:
			class, _ := ev.Data["class"].(string)
			if class == "" {
				class = "unknown"
			}
			telemetry.Add(ctx, tel.ActivityFaults, 1, def, attribute.String(telemetry.LabelClass, class))
			if ev.Type == EventActivityRetrying {
				telemetry.Add(ctx, tel.Retries, 1, def)
			}
		}
	}
	if !tel.Tracing || len(t.order) == 0 {
		return
	}
	first := t.order[0].inst
	parent := trace.ContextWithRemoteSpanContext(ctx, instanceTrace(first))
	if trace.SpanContextFromContext(ctx).IsValid() && trace.SpanContextFromContext(ctx).TraceID() == instanceTrace(first).TraceID() {
		parent = ctx // inside the instance's own span (its start, a handler's)
	}
	_, span := tel.Tracer.Start(parent, telemetry.SpanStep, trace.WithTimestamp(start), trace.WithAttributes(
		attribute.String(telemetry.AttrInstanceID, first.ID),
		attribute.String(telemetry.AttrDefinition, first.DefinitionID),
		attribute.Int(telemetry.AttrVersion, first.DefinitionVersion),
		attribute.String(telemetry.AttrStepKind, stepKind(t.actor)),
		attribute.Int(telemetry.AttrInstances, len(t.order)),
		attribute.Int(telemetry.AttrEvents, len(t.events)),
		attribute.Int(telemetry.AttrTries, tries),
	))
	for _, ev := range t.events {
		span.AddEvent(ev.Type, trace.WithTimestamp(ev.OccurredAt), trace.WithAttributes(attribute.String(telemetry.AttrActivityID, ev.ActivityID)))
	}
	span.End()
}

// lateness is how late a timer fired.
type lateness struct {
	kind string
	d    time.Duration
}

// registerGauges makes the engine's gauges read the database when
// scraped: instances by definition and status (the maintained counts), open
// user tasks and the oldest one's age, and breaker states.
func (e *Engine) registerGauges() error {
	m := e.tel.Meter
	instances, err := m.Int64ObservableGauge(telemetry.MetricInstances,
		metric.WithDescription("Instances by definition and status (maintained counts)."))
	if err != nil {
		return err
	}
	tasksOpen, err := m.Int64ObservableGauge(telemetry.MetricUserTasksOpen, metric.WithDescription("Open user tasks."))
	if err != nil {
		return err
	}
	taskAge, err := m.Float64ObservableGauge(telemetry.MetricUserTaskOldestAge,
		metric.WithDescription("Age of the oldest open user task (0 with none)."), metric.WithUnit("s"))
	if err != nil {
		return err
	}
	breakers, err := m.Int64ObservableGauge(telemetry.MetricBreakerState,
		metric.WithDescription("Circuit breaker state: 0 closed, 1 half-open, 2 open."))
	if err != nil {
		return err
	}
	alerts, err := m.Int64ObservableGauge(telemetry.MetricAlertsFiring,
		metric.WithDescription("Built-in alert rules: 1 while firing, 0 otherwise."))
	if err != nil {
		return err
	}
	connsOpen, err1 := m.Int64ObservableGauge(telemetry.MetricDBConnsOpen, metric.WithDescription("Open database connections."))
	connsInUse, err2 := m.Int64ObservableGauge(telemetry.MetricDBConnsInUse, metric.WithDescription("Database connections serving a query."))
	connsIdle, err3 := m.Int64ObservableGauge(telemetry.MetricDBConnsIdle, metric.WithDescription("Idle database connections."))
	connWaits, err4 := m.Int64ObservableCounter(telemetry.MetricDBConnsWait, metric.WithDescription("Connection acquisitions that had to wait."))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st, ok := e.PoolStats()
		if !ok {
			return nil
		}
		o.ObserveInt64(connsOpen, int64(st.Open))
		o.ObserveInt64(connsInUse, int64(st.InUse))
		o.ObserveInt64(connsIdle, int64(st.Idle))
		o.ObserveInt64(connWaits, st.Waits)
		return nil
	}, connsOpen, connsInUse, connsIdle, connWaits)
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		counts, err := e.store.InstanceCounts(ctx)
		if err != nil {
			e.cfg.Logger.WarnContext(ctx, "engine: read instance counts for metrics", slog.Any(telemetry.LogError, err))
			return err
		}
		for _, c := range counts {
			o.ObserveInt64(instances, c.Count, metric.WithAttributes(
				attribute.String(telemetry.LabelDefinition, c.DefinitionID), attribute.String(telemetry.LabelStatus, string(c.Status))))
		}
		st, err := e.store.UserTaskStats(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(tasksOpen, st.Open)
		age := 0.0
		if st.OldestCreatedAt != nil {
			age = max(e.clock.Now().Sub(*st.OldestCreatedAt).Seconds(), 0)
		}
		o.ObserveFloat64(taskAge, age)
		bs, err := e.store.BreakerList(ctx)
		if err != nil {
			return err
		}
		for _, b := range bs {
			v := int64(0)
			switch b.State {
			case store.BreakerHalfOpen:
				v = 1
			case store.BreakerOpen:
				v = 2
			}
			o.ObserveInt64(breakers, v, metric.WithAttributes(attribute.String(telemetry.LabelBreaker, b.Name)))
		}
		if len(e.cfg.Alerts.Rules) == 0 {
			return nil
		}
		states, err := e.store.AlertStateList(ctx)
		if err != nil {
			return err
		}
		firing := map[string]bool{}
		for _, st := range states {
			firing[st.Name] = st.State == alertFiring
		}
		for _, r := range e.cfg.Alerts.Rules {
			v := int64(0)
			if firing[r.Name] {
				v = 1
			}
			o.ObserveInt64(alerts, v, metric.WithAttributes(attribute.String(telemetry.LabelAlert, r.Name)))
		}
		return nil
	}, instances, tasksOpen, taskAge, breakers, alerts)
	return err
}

// startTaskSpan starts the span of one handler run, in the instance's
// trace; the handler's context carries it.
func (e *Engine) startTaskSpan(ctx context.Context, inst *store.Instance, x *store.ActivityExecution, item *store.WorkItem) (context.Context, trace.Span) {
	ctx = trace.ContextWithRemoteSpanContext(ctx, instanceTrace(inst))
	if !e.tel.Tracing {
		return ctx, trace.SpanFromContext(ctx)
	}
	return e.tel.Tracer.Start(ctx, telemetry.SpanTask, trace.WithAttributes(
		attribute.String(telemetry.AttrInstanceID, inst.ID),
		attribute.String(telemetry.AttrDefinition, inst.DefinitionID),
		attribute.String(telemetry.AttrActivityID, x.ActivityID),
		attribute.String(telemetry.AttrExecutionID, x.ID),
		attribute.String(telemetry.AttrHandler, item.Handler),
		attribute.Int(telemetry.AttrAttempt, item.Attempts),
	))
}

// endTaskSpan ends a handler run's span and records its duration.
func (e *Engine) endTaskSpan(ctx context.Context, span trace.Span, handler string, started time.Time, err error, timedOut bool) {
	outcome := "ok"
	switch {
	case timedOut:
		outcome = "timeout"
	case err != nil:
		outcome = "error"
	}
	telemetry.Record(ctx, e.tel.HandlerDuration, telemetry.Since(started),
		attribute.String(telemetry.LabelHandler, handler), attribute.String(telemetry.LabelOutcome, outcome))
	if e.tel.Tracing {
		telemetry.EndSpan(span, err)
	}
}

// startCallSpan starts the client span of one http request, named and
// described as the HTTP semantic conventions say. The URL is the stored
// one: placeholders, not secrets.
func (e *Engine) startCallSpan(ctx context.Context, r *callRequest, u *url.URL) (context.Context, trace.Span) {
	if !e.tel.Tracing {
		return ctx, trace.SpanFromContext(ctx)
	}
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.ServerAddress(u.Hostname()),
		semconv.URLFull(redactURL(r.URL)),
		semconv.URLScheme(u.Scheme),
	}
	if port, err := strconv.Atoi(u.Port()); err == nil {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	return e.tel.Tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endCallSpan ends an http request's span and records its duration, by
// host and outcome: the status class (2xx…5xx) or, without a response,
// "error".
func (e *Engine) endCallSpan(ctx context.Context, span trace.Span, u *url.URL, started time.Time, res *sendResult, err error) {
	outcome := "error"
	status := 0
	if err == nil && res != nil {
		status, _ = res.response["status"].(int)
		outcome = strconv.Itoa(status/100) + "xx"
	}
	telemetry.Record(ctx, e.tel.HTTPCallDuration, telemetry.Since(started),
		attribute.String(telemetry.LabelHost, u.Host), attribute.String(telemetry.LabelOutcome, outcome))
	if !e.tel.Tracing {
		return
	}
	if status > 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 400 {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(status))
		}
	}
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
	}
	telemetry.EndSpan(span, err)
}

// redactURL drops the user info and the query's values of a URL for a span
// (a query may carry a token even without a secret placeholder).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
