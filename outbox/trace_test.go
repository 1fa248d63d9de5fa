package outbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
)

// Each delivery attempt is a producer span in the event's trace (a child
// of the traceparent the event was written with), and the receiver gets
// that span's context as traceparent.
func TestDeliveriesAreSpansInTheInstancesTrace(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	got := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, err := s.OutboxInsert(context.Background(), &store.OutboxInsertParams{ID: store.NewID(), InstanceID: "i1",
		Type: "instance.started", Headers: json.RawMessage(`{"traceparent":"` + parent + `"}`), OccurredAt: time.Now().UTC()})
	require.NoError(t, err)
	startDispatcher(t, fast(outbox.Options{Store: s, TracerProvider: tp,
		Routes: []outbox.Route{{Name: "hook", Sink: &outbox.Webhook{URL: recv.URL, Secret: "s"}}}}))
	var header string
	select {
	case header = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("not delivered")
	}
	require.Eventually(t, func() bool { return len(spans.GetSpans()) == 1 }, 5*time.Second, 10*time.Millisecond)
	span := spans.GetSpans()[0]
	require.Equal(t, telemetry.SpanOutboxDeliver, span.Name)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", span.SpanContext.TraceID().String(), "the instance's trace")
	require.Equal(t, "00f067aa0ba902b7", span.Parent.SpanID().String())
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-"+span.SpanContext.SpanID().String()+"-01", header,
		"the receiver continues from the delivery's span")
}
