package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of Waymark's tracer and meter.
const ScopeName = "github.com/waymarkdev/waymark"

// Telemetry is the tracer and the instruments of one engine or server.
// Its zero value is not usable; build it with New.
type Telemetry struct {
	Tracer trace.Tracer
	Meter  metric.Meter
	// Tracing is false when the tracer provider is the no-op one: callers
	// may then skip building span attributes.
	Tracing bool

	InstancesStarted   metric.Int64Counter
	InstancesEnded     metric.Int64Counter
	StepDuration       metric.Float64Histogram
	StepTxDuration     metric.Float64Histogram
	StepErrors         metric.Int64Counter
	WorkStarted        metric.Int64Counter
	HandlerDuration    metric.Float64Histogram
	HTTPCallDuration   metric.Float64Histogram
	ActivityFaults     metric.Int64Counter
	Retries            metric.Int64Counter
	Suspensions        metric.Int64Counter
	TimerLateness      metric.Float64Histogram
	LeaseTakeovers     metric.Int64Counter
	APIRequestDuration metric.Float64Histogram
}

// New builds the instruments on the providers; a nil provider means the
// no-op one.
func New(tp trace.TracerProvider, mp metric.MeterProvider) (*Telemetry, error) {
	t := &Telemetry{Tracing: tp != nil}
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if _, noop := tp.(tracenoop.TracerProvider); noop {
		t.Tracing = false
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	t.Tracer = tp.Tracer(ScopeName)
	t.Meter = mp.Meter(ScopeName)
	m := t.Meter
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithDescription(desc), metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	t.InstancesStarted = counter(MetricInstancesStarted, "Instances started, by definition.")
	t.InstancesEnded = counter(MetricInstancesEnded, "Instances that reached a final status, by definition and status.")
	t.StepDuration = hist(MetricStepDuration, "Time of one step, from its first transaction's begin to its commit, retries included, by kind.", LatencyBuckets)
	t.StepTxDuration = hist(MetricStepTxDuration, "Time of one step transaction attempt, begin to commit or rollback, by outcome.", LatencyBuckets)
	t.StepErrors = counter(MetricStepErrors, "Work items whose run failed (they are retried after their lease), by work kind: task, step, http.")
	t.WorkStarted = counter(MetricWorkStarted, "Work items this engine started to run, by work kind and how it got them: via claim (the work loop claimed them) or inline (the step that scheduled them enqueued them claimed for this engine).")
	t.HandlerDuration = hist(MetricHandlerDuration, "Run time of task handlers, by handler and outcome.", LatencyBuckets)
	t.HTTPCallDuration = hist(MetricHTTPCallDuration, "Time of http activity calls, by target host and outcome (a status class or a fault class).", LatencyBuckets)
	t.ActivityFaults = counter(MetricActivityFaults, "Failed activity attempts, by definition, activity type and fault class.")
	t.Retries = counter(MetricRetries, "Activity attempts scheduled again after a failure, by definition.")
	t.Suspensions = counter(MetricSuspensions, "Instances suspended (by an operator or after too many failures), by definition.")
	t.TimerLateness = hist(MetricTimerLateness, "How late timers, deadlines and due dates fired after their due time, by kind.", LatenessBuckets)
	t.LeaseTakeovers = counter(MetricLeaseTakeovers, "Work claimed again after another holder's lease expired, by work kind.")
	t.APIRequestDuration = hist(MetricAPIRequestDuration, "API request latency, by method, route pattern and status.", LatencyBuckets)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Since returns the seconds since start, for a histogram.
func Since(start time.Time) float64 { return time.Since(start).Seconds() }

// Add adds n to c with the attributes.
func Add(ctx context.Context, c metric.Int64Counter, n int64, attrs ...attribute.KeyValue) {
	c.Add(ctx, n, metric.WithAttributes(attrs...))
}

// Record records v in h with the attributes.
func Record(ctx context.Context, h metric.Float64Histogram, v float64, attrs ...attribute.KeyValue) {
	h.Record(ctx, v, metric.WithAttributes(attrs...))
}
