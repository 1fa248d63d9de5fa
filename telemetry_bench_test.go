package waymark_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/postgres"
	"github.com/waymarkdev/waymark/store/sqlite"
	"github.com/waymarkdev/waymark/store/storetest"
)

// BenchmarkObservabilityOverhead is BenchmarkThreeStepWorkflow with
// telemetry off, metrics on (an SDK meter provider), tracing on (an SDK
// tracer provider sampling everything, batching to an exporter that drops
// the spans) and both; run with -count to interleave them:
//
//	go test -run '^$' -bench ObservabilityOverhead -benchtime 3000x -count 5 .
func BenchmarkObservabilityOverhead(b *testing.B) {
	modes := []struct {
		name  string
		tweak func(b *testing.B) func(*waymark.Config)
	}{
		{"Off", func(*testing.B) func(*waymark.Config) { return nil }},
		{"Metrics", func(b *testing.B) func(*waymark.Config) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			return func(c *waymark.Config) { c.MeterProvider = mp }
		}},
		{"Tracing", func(b *testing.B) func(*waymark.Config) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			return func(c *waymark.Config) { c.TracerProvider = tp }
		}},
		{"Both", func(b *testing.B) func(*waymark.Config) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) })
			return func(c *waymark.Config) { c.MeterProvider, c.TracerProvider = mp, tp }
		}},
	}
	stores := []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"SQLite", func(b *testing.B) store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"PostgreSQL", func(b *testing.B) store.Store {
			s, err := postgres.Open(context.Background(), storetest.PostgresSchemaURL(b), &postgres.Config{AutoMigrate: true, MaxConns: 20})
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			for _, m := range modes {
				b.Run(m.name, func(b *testing.B) { benchThreeStepsWith(b, st.open(b), m.tweak(b)) })
			}
		})
	}
}
