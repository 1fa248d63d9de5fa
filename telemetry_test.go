package waymark_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/internal/telemetry"
	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
)

// One trace per instance: the start, its steps, a handler run, an http
// call to a local server (which receives the traceparent of the client
// span) and an outbox delivery, all under the traceparent the start was
// given.
func TestTracingOneTracePerInstance(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		spans := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		api := newFakeAPI(t, func(_ int, w http.ResponseWriter, _ *http.Request) { replyJSON(w, 200, `{"ok":true}`) })
		var handlerTrace atomic.Value
		b := setup(t, s, setupOpts{
			handlers: map[string]waymark.TaskHandler{"reserve": func(ctx context.Context, _ *waymark.Task) (any, error) {
				handlerTrace.Store(trace.SpanContextFromContext(ctx).TraceID().String())
				return "r-1", nil
			}},
			tweak: func(c *waymark.Config) {
				c.TracerProvider = tp
				c.HTTP.AllowPrivate = true
				c.Secrets = map[string]string{"key": "sup3r-s3cret"}
			},
		})
		b.deploy(`
id: traced
activities:
  - {id: reserve, type: task, handler: reserve, output: reservation, next: notify}
  - id: notify
    type: http
    request: {method: POST, url: '` + api.srv.URL + `/notify', query: {key: '${ secrets.key }'}, body: {r: '${ vars.reservation }'}}
    output: sent
`)
		const incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		inst, err := b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: "traced", Input: json.RawMessage(`{}`), TraceParent: incoming})
		require.NoError(t, err)
		b.waitStatus(inst.ID, store.InstanceCompleted)
		require.NoError(t, b.e.Stop(b.ctx))

		const traceID = "0af7651916cd43dd8448eb211c80319c"
		require.Equal(t, traceID, handlerTrace.Load(), "the handler's context carries the instance's trace")
		// The outbox delivery (as the dispatcher makes it) joins the trace.
		events := b.outbox(inst.ID, waymark.EventInstanceCompleted)
		for _, ev := range events {
			require.Contains(t, telemetry.TraceparentFromHeaders(ev.Headers), traceID, "every event of the instance carries its traceparent")
		}
		ctx, span := telemetry.StartDeliverySpan(b.ctx, tp.Tracer("test"), "webhook", &telemetry.DeliveryEvent{
			ID: events[0].ID, Type: events[0].Type, InstanceID: inst.ID, Headers: events[0].Headers, Attempt: 1,
		})
		hdr := http.Header{}
		telemetry.Inject(ctx, hdr)
		telemetry.EndSpan(span, nil)
		require.Contains(t, hdr.Get("Traceparent"), traceID, "a delivery carries the trace on")

		byName := map[string][]tracetest.SpanStub{}
		for _, sp := range spans.GetSpans() {
			require.Equal(t, traceID, sp.SpanContext.TraceID().String(), "span %s is in another trace", sp.Name)
			byName[sp.Name] = append(byName[sp.Name], sp)
			for _, a := range sp.Attributes {
				require.NotContains(t, a.Value.Emit(), "sup3r-s3cret", "a secret in span %s", sp.Name)
			}
		}
		require.Len(t, byName[telemetry.SpanInstanceStart], 1)
		start := byName[telemetry.SpanInstanceStart][0]
		require.Equal(t, "b7ad6b7169203331", start.Parent.SpanID().String(), "the start continues the incoming traceparent")
		require.NotEmpty(t, byName[telemetry.SpanStep], "a span per step")
		for _, st := range byName[telemetry.SpanStep] {
			require.Equal(t, start.SpanContext.SpanID(), st.Parent.SpanID(), "steps hang from the start")
		}
		require.Len(t, byName[telemetry.SpanTask], 1)
		require.Equal(t, start.SpanContext.SpanID(), byName[telemetry.SpanTask][0].Parent.SpanID())
		require.Len(t, byName["POST"], 1)
		call := byName["POST"][0]
		require.Equal(t, trace.SpanKindClient, call.SpanKind)
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range call.Attributes {
			attrs[a.Key] = a.Value
		}
		require.Equal(t, "POST", attrs["http.request.method"].AsString())
		require.EqualValues(t, 200, attrs["http.response.status_code"].AsInt64())
		require.Equal(t, "127.0.0.1", attrs["server.address"].AsString())
		require.Len(t, byName[telemetry.SpanOutboxDeliver], 1)

		reqs := api.requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "00-"+traceID+"-"+call.SpanContext.SpanID().String()+"-01", reqs[0].Trace,
			"the called server's parent is the client span")
	})
}

func TestStartRefusesABadTraceparent(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy("id: d\nactivities:\n  - {id: a, type: set, vars: {x: 1}}\n")
		_, err := b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: "d", TraceParent: "00-nothex-01"})
		require.ErrorIs(t, err, waymark.ErrInvalid)
		require.ErrorContains(t, err, "traceParent")
		list, err := s.InstanceList(b.ctx, &store.InstanceListParams{})
		require.NoError(t, err)
		require.Empty(t, list, "nothing started")
	})
}

// collect reads every metric point, by name, as "label=value,…" → value.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]map[string]float64{}
	key := func(set attribute.Set) string {
		var parts []string
		for _, kv := range set.ToSlice() {
			parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
		}
		return strings.Join(parts, ",")
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			points := map[string]float64{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					points[key(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					points[key(p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					points[key(p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					points[key(p.Attributes)] = float64(p.Count)
				}
			}
			out[m.Name] = points
		}
	}
	return out
}

// A scripted run: one instance that retries once and completes, one that
// is suspended after failing twice, one waiting on a user task. The
// metrics say so, and the maintained counts match the rows.
func TestMetricsAfterAScriptedRun(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		var calls atomic.Int32
		b := setup(t, s, setupOpts{
			handlers: map[string]waymark.TaskHandler{
				"flaky": func(context.Context, *waymark.Task) (any, error) {
					if calls.Add(1) == 1 {
						return nil, errors.New("first call fails")
					}
					return "ok", nil
				},
				"broken": func(context.Context, *waymark.Task) (any, error) { return nil, errors.New("always") },
			},
			tweak: func(c *waymark.Config) { c.MeterProvider = mp },
		})
		b.deploy(`
id: flaky
defaults: {retry: {maxAttempts: 3, initialInterval: 5ms, maxInterval: 5ms}}
activities:
  - {id: call, type: task, handler: flaky}
`)
		b.deploy(`
id: broken
defaults: {retry: {maxAttempts: 10, initialInterval: 5ms, maxInterval: 5ms}, suspendAfterFailures: 2}
activities:
  - {id: call, type: task, handler: broken}
`)
		b.deploy("id: review\nactivities:\n  - {id: approve, type: userTask}\n")
		done := b.start("flaky", `{}`)
		suspended := b.start("broken", `{}`)
		waiting := b.start("review", `{}`)
		b.waitStatus(done.ID, store.InstanceCompleted)
		b.waitStatus(suspended.ID, store.InstanceSuspended)
		b.waitStatus(waiting.ID, store.InstanceWaiting)
		m := collect(t, reader)
		require.Equal(t, map[string]float64{
			"definition=flaky,status=completed":  1,
			"definition=broken,status=suspended": 1,
			"definition=review,status=waiting":   1,
		}, m[telemetry.MetricInstances])
		require.Equal(t, 1.0, m[telemetry.MetricInstancesStarted]["definition=flaky"])
		require.Equal(t, 1.0, m[telemetry.MetricInstancesStarted]["definition=broken"])
		require.Equal(t, 1.0, m[telemetry.MetricInstancesEnded]["definition=flaky,status=completed"])
		require.Equal(t, 1.0, m[telemetry.MetricRetries]["definition=flaky"])
		require.Equal(t, 1.0, m[telemetry.MetricRetries]["definition=broken"], "the second failure suspends instead")
		require.Equal(t, 1.0, m[telemetry.MetricSuspensions]["definition=broken"])
		require.Equal(t, 2.0, m[telemetry.MetricActivityFaults]["class=transient,definition=broken"])
		require.Equal(t, 1.0, m[telemetry.MetricUserTasksOpen][""])
		require.Equal(t, 2.0, m[telemetry.MetricHandlerDuration]["handler=flaky,outcome=ok"]+m[telemetry.MetricHandlerDuration]["handler=flaky,outcome=error"])
		require.NotZero(t, m[telemetry.MetricStepDuration]["kind=engine"])
		require.NotZero(t, m[telemetry.MetricStepTxDuration]["outcome=committed"])
		require.Contains(t, m, telemetry.MetricDBConnsOpen)
		for name, points := range m {
			for labels := range points {
				for _, id := range []string{done.ID, suspended.ID, waiting.ID} {
					require.NotContains(t, labels, id, "an instance id in a label of %s", name)
				}
			}
		}

		// Resuming and cancelling move the maintained counts.
		require.NoError(t, b.e.Cancel(b.ctx, waiting.ID, &waymark.CancelParams{Reason: "test"}))
		require.NoError(t, b.e.Cancel(b.ctx, suspended.ID, &waymark.CancelParams{Reason: "test"}))
		counts, err := s.InstanceCounts(b.ctx)
		require.NoError(t, err)
		got := map[string]int64{}
		for _, c := range counts {
			got[c.DefinitionID+"/"+string(c.Status)] = c.Count
		}
		require.Equal(t, map[string]int64{"flaky/completed": 1, "broken/cancelled": 1, "review/cancelled": 1}, got)

		// Purged instances leave the counts with them.
		res, err := s.InstancePurge(b.ctx, &store.InstancePurgeParams{Before: time.Now().Add(time.Hour), Limit: 10})
		require.NoError(t, err)
		require.EqualValues(t, 3, res.Instances)
		counts, err = s.InstanceCounts(b.ctx)
		require.NoError(t, err)
		require.Empty(t, counts)
	})
}

// A subworkflow's instance continues its parent's trace.
func TestSubworkflowSharesTheParentsTrace(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, s, setupOpts{noStart: true})
		b.deploy("id: kid\nactivities:\n  - {id: a, type: set, vars: {x: 1}}\n")
		b.deploy("id: parent\nactivities:\n  - {id: call, type: subworkflow, definition: kid, input: {}, output: kid}\n")
		const tp = "00-11112222333344445555666677778888-1234567812345678-01"
		inst, err := b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: "parent", TraceParent: tp})
		require.NoError(t, err)
		kids, err := s.InstanceList(b.ctx, &store.InstanceListParams{ParentID: inst.ID})
		require.NoError(t, err)
		require.Len(t, kids, 1)
		require.Equal(t, tp, kids[0].TraceParent)
		entries, err := s.LogList(b.ctx, &store.LogListParams{InstanceID: kids[0].ID, Limit: 100})
		require.NoError(t, err)
		require.NotEmpty(t, entries)
		for _, e := range entries {
			require.Equal(t, "11112222333344445555666677778888", e.TraceID)
		}
	})
}

// The outbox dispatcher carries an instance's traceparent to a webhook:
// as the traceparent header and the CloudEvents distributed-tracing
// attribute, in the instance's trace.
func TestOutboxDeliveryCarriesTheTrace(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		type got struct{ header, attr string }
		recv := make(chan got, 100)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ce struct {
				TraceParent string `json:"traceparent"`
			}
			_ = json.NewDecoder(r.Body).Decode(&ce)
			recv <- got{r.Header.Get("Traceparent"), ce.TraceParent}
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(hook.Close)
		b := setup(t, s, setupOpts{})
		changes, stop := b.e.Changes()
		t.Cleanup(stop)
		d, err := outbox.New(outbox.Options{Store: s, Owner: "d1", Now: b.e.Clock().Now, Wake: changes, PollInterval: 20 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler),
			Routes: []outbox.Route{{Name: "hook", Sink: &outbox.Webhook{URL: hook.URL, Secret: "s", Timeout: 5 * time.Second}, Types: []string{"instance.started"}}}})
		require.NoError(t, err)
		require.NoError(t, d.Start(b.ctx))
		t.Cleanup(func() { require.NoError(t, d.Stop(context.Background())) })
		b.deploy("id: d\nactivities:\n  - {id: a, type: set, vars: {x: 1}}\n")
		const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		_, err = b.e.StartInstance(b.ctx, &waymark.StartParams{Definition: "d", TraceParent: tp})
		require.NoError(t, err)
		select {
		case g := <-recv:
			require.Equal(t, tp, g.header)
			require.Equal(t, tp, g.attr)
		case <-time.After(20 * time.Second):
			t.Fatal("no delivery")
		}
	})
}
