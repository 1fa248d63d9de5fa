package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/waymarkdev/waymark/internal/telemetry"
)

func TestParseTraceparent(t *testing.T) {
	t.Parallel()
	sc, err := telemetry.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	require.NoError(t, err)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", sc.TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", sc.SpanID().String())
	require.True(t, sc.IsSampled())
	require.True(t, sc.IsRemote())
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", telemetry.FormatTraceparent(sc))

	for _, bad := range []string{"", "00-xyz", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"} {
		_, err := telemetry.ParseTraceparent(bad)
		require.Error(t, err, bad)
		require.ErrorContains(t, err, "traceparent")
	}
}

func TestInstanceContext(t *testing.T) {
	t.Parallel()
	const id = "01a233c3-2019-73a6-85d7-838516b8e807"
	sc := telemetry.InstanceContext(id, "")
	require.Equal(t, "01a233c3201973a685d7838516b8e807", sc.TraceID().String(), "derived from the id")
	require.True(t, sc.IsValid())
	stored := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	require.Equal(t, stored, telemetry.FormatTraceparent(telemetry.InstanceContext(id, stored)), "the stored one wins")
	require.Equal(t, sc, telemetry.InstanceContext(id, "garbage"), "an unreadable one is ignored")
	child := telemetry.ChildTraceparent(sc, "01a233c3-2023-7ebf-b6de-eb6ed885092b")
	require.Equal(t, "00-01a233c3201973a685d7838516b8e807-b6deeb6ed885092b-01", child)
}

func TestDeliverySpanAndInject(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(nil, nil)
	require.NoError(t, err)
	require.False(t, tel.Tracing)
	ctx, span := telemetry.StartDeliverySpan(context.Background(), tel.Tracer, "webhook", &telemetry.DeliveryEvent{
		ID: "e1", Type: "instance.started", Headers: []byte(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`),
	})
	telemetry.EndSpan(span, nil)
	h := http.Header{}
	telemetry.Inject(ctx, h)
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", h.Get("Traceparent"),
		"without tracing, the event's traceparent is carried on as it is")
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", trace.SpanContextFromContext(telemetry.Extract(context.Background(), h)).TraceID().String())
	require.Empty(t, telemetry.TraceparentFromHeaders([]byte(`not json`)))
}

func TestLogHandlerAddsTheTrace(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewTextHandler(&buf, nil)))
	sc, err := telemetry.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	require.NoError(t, err)
	log.InfoContext(trace.ContextWithRemoteSpanContext(context.Background(), sc), "x", slog.String("k", "v"))
	require.Contains(t, buf.String(), "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7")
	buf.Reset()
	log.With("a", 1).InfoContext(context.Background(), "y")
	require.NotContains(t, buf.String(), "trace_id")
	buf.Reset()
	log.InfoContext(trace.ContextWithRemoteSpanContext(context.Background(), sc), "z", slog.String("trace_id", "mine"))
	require.Contains(t, buf.String(), "trace_id=mine")
	require.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("trace_id")))
}
