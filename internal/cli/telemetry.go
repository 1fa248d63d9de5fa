package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// serveTelemetry is what serve wires: the Prometheus exporter behind
// /metrics, always, and an OTLP/HTTP trace exporter when the standard
// OTEL_* variables ask for one.
type serveTelemetry struct {
	// tracer is nil when tracing is off.
	tracer  trace.TracerProvider
	meter   *sdkmetric.MeterProvider
	metrics http.Handler
	close   func(ctx context.Context) error
}

// tracingWanted reads the standard variables: OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn tracing off; OTEL_TRACES_EXPORTER=otlp or
// an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turn it on. Off by default.
func tracingWanted(lookup func(string) (string, bool)) (bool, error) {
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER %q: this build exports traces with otlp (OTLP/HTTP) or none", exp)
	}
	if p := get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p == "" {
		p = get("OTEL_EXPORTER_OTLP_PROTOCOL")
		if p != "" && p != "http/protobuf" {
			return false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: this build exports with http/protobuf", p)
		}
	} else if p != "http/protobuf" {
		return false, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL %q: this build exports with http/protobuf", p)
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
}

// setupTelemetry builds the providers of serve.
func setupTelemetry(ctx context.Context, lookup func(string) (string, bool), nodeID string) (*serveTelemetry, error) {
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithAttributes(
		attribute.String("service.name", "waymark"), attribute.String("service.version", Version),
		attribute.String("service.instance.id", nodeID)))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	out := &serveTelemetry{meter: mp, metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), close: mp.Shutdown}
	on, err := tracingWanted(lookup)
	if err != nil {
		return nil, err
	}
	if on {
		te, err := otlptracehttp.New(ctx) // endpoint, headers, TLS, timeout: OTEL_EXPORTER_OTLP_*
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		// The sampler follows OTEL_TRACES_SAMPLER (parent-based, always
		// on, by default).
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(te), sdktrace.WithResource(res))
		out.tracer = tp
		out.close = func(ctx context.Context) error { return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx)) }
	}
	return out, nil
}
