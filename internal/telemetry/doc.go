// Package telemetry holds every instrument of Waymark in one place: the
// OpenTelemetry tracer and its span names, the metric instruments with their
// Prometheus names and buckets, the slog attribute keys, and the W3C
// traceparent helpers.
//
// The engine and the server take the OpenTelemetry API providers
// (trace.TracerProvider, metric.MeterProvider) and build a Telemetry from
// them; without providers every instrument is a no-op and costs next to
// nothing. Only the server's command (internal/cli) wires exporters: OTLP/HTTP
// for traces from the standard OTEL_* environment variables, and the
// Prometheus exporter behind /metrics.
//
// Import rules: this package imports only the OpenTelemetry API and semantic
// conventions, never the SDK and never another Waymark package.
package telemetry
