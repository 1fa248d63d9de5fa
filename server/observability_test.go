package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
)

// observed engine and server: a Prometheus registry behind /metrics, as
// waymark serve wires it.
type obsOpts struct {
	store    store.Store
	handlers map[string]waymark.TaskHandler
	engine   func(*waymark.Config)
	server   func(*server.Config)
}

func setupObserved(t *testing.T, o obsOpts) *testBundle {
	t.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo(),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes))
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s := o.store
	if s == nil {
		s = openSQLite(t)
	}
	cfg := &waymark.Config{Handlers: o.handlers, PollInterval: 50 * time.Millisecond, MeterProvider: mp}
	if o.engine != nil {
		o.engine(cfg)
	}
	e, err := waymark.New(s, cfg)
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })
	return newTestServer(t, e, s, func(c *server.Config) {
		c.MeterProvider, c.Metrics = mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		if o.server != nil {
			o.server(c)
		}
	})
}

// documentedMetrics reads the metric names docs/observability.md lists.
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/observability.md")
	require.NoError(t, err)
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(waymark_[a-z_]+)` \\|").FindAllSubmatch(doc, -1) {
		names = append(names, string(m[1]))
	}
	require.Greater(t, len(names), 20)
	return names
}

// scrape reads /metrics: series (name{labels}) → value.
func (b *testBundle) scrape(token string) map[string]string {
	b.t.Helper()
	resp := b.do(req{method: http.MethodGet, path: server.PathMetrics, token: token})
	require.Equal(b.t, http.StatusOK, resp.status, "body: %s", resp.body)
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(resp.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

func metricName(series string) string {
	name, _, _ := strings.Cut(series, "{")
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		name = strings.TrimSuffix(name, suffix)
	}
	return name
}

// After a scripted run every documented metric is scraped, with the
// expected values, and no label carries an instance id.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		var calls sync.Mutex
		n := 0
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			calls.Lock()
			n++
			first := n == 1
			calls.Unlock()
			if first {
				w.WriteHeader(http.StatusServiceUnavailable) // recorded by the breaker
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true}`))
		}))
		t.Cleanup(api.Close)
		b := setupObserved(t, obsOpts{
			store: s,
			handlers: map[string]waymark.TaskHandler{
				"greet":  func(context.Context, *waymark.Task) (any, error) { return "hi", nil },
				"broken": func(context.Context, *waymark.Task) (any, error) { return nil, errors.New("down") },
			},
			engine: func(c *waymark.Config) {
				c.HTTP.AllowPrivate = true
				c.Alerts = waymark.AlertsConfig{Every: 20 * time.Millisecond, Rules: []waymark.AlertRule{
					{Name: "suspended", Condition: waymark.AlertSuspendedInstances},
				}}
			},
			server: func(c *server.Config) {
				withWorkerKey(c)
				c.OutboxStats = server.OutboxStatsFunc(func(context.Context) ([]server.SinkStats, error) {
					return []server.SinkStats{{Sink: "webhook", Pending: 3, OldestPendingAge: 90 * time.Second, Dead: 1}}, nil
				})
			},
		})
		b.deploy("id: hello\nactivities:\n  - {id: greet, type: task, handler: greet, next: nap}\n  - {id: nap, type: timer, duration: 1ms}\n")
		b.deploy(`
id: broken
defaults: {retry: {maxAttempts: 10, initialInterval: 5ms, maxInterval: 5ms}, suspendAfterFailures: 2}
activities:
  - {id: call, type: task, handler: broken}
`)
		b.deploy("id: review\nactivities:\n  - {id: approve, type: userTask}\n")
		b.deploy("id: call\ndefaults: {retry: {maxAttempts: 3, initialInterval: 5ms}}\nactivities:\n  - {id: post, type: http, request: {method: POST, url: '" + api.URL + "/x'}, circuitBreaker: crm}\n")
		b.deploy("id: remote\nactivities:\n  - {id: work, type: task, handler: elsewhere}\n")

		var ids []string
		for _, def := range []string{"hello", "broken", "review", "call", "remote"} {
			inst, _ := b.start(def, map[string]any{}, "", nil)
			ids = append(ids, inst.ID)
		}
		// The remote job is claimed by a worker that dies (its lease
		// expires at once); another takes it over.
		now, err := s.ClockNow(b.ctx)
		require.NoError(t, err)
		claimed, err := s.WorkClaim(b.ctx, &store.WorkClaimParams{Owner: "ghost", Now: now, LeaseFor: time.Millisecond,
			Limit: 1, Handlers: []string{"elsewhere"}})
		require.NoError(t, err)
		require.Len(t, claimed, 1)
		jobs := b.poll("w2", 10, map[string]any{"handlers": []string{"elsewhere"}})
		require.Len(t, jobs, 1)
		require.NotEmpty(t, jobs[0].TraceParent, "a job carries the instance's traceparent")

		waitFor := func(id string, status store.InstanceStatus) {
			t.Helper()
			require.Eventually(t, func() bool {
				inst, err := s.InstanceGet(b.ctx, id)
				return err == nil && inst.Status == status
			}, 20*time.Second, 10*time.Millisecond, "instance %s never %s", id, status)
		}
		waitFor(ids[0], store.InstanceCompleted)
		waitFor(ids[1], store.InstanceSuspended)
		waitFor(ids[2], store.InstanceWaiting)
		waitFor(ids[3], store.InstanceCompleted)
		want := map[string]string{
			`waymark_instances{definition="broken",status="suspended"}`:                                                     "1",
			`waymark_instances{definition="hello",status="completed"}`:                                                      "1",
			`waymark_instances{definition="review",status="waiting"}`:                                                       "1",
			`waymark_instances_started_total{definition="hello"}`:                                                           "1",
			`waymark_instances_ended_total{definition="hello",status="completed"}`:                                          "1",
			`waymark_activity_retries_total{definition="broken"}`:                                                           "1",
			`waymark_instance_suspensions_total{definition="broken"}`:                                                       "1",
			`waymark_activity_faults_total{class="transient",definition="broken"}`:                                          "2",
			`waymark_user_tasks_open`:                                                                                       "1",
			`waymark_outbox_pending{sink="webhook"}`:                                                                        "3",
			`waymark_outbox_lag_seconds{sink="webhook"}`:                                                                    "90",
			`waymark_outbox_dead{sink="webhook"}`:                                                                           "1",
			`waymark_breaker_state{breaker="crm"}`:                                                                          "0",
			`waymark_lease_takeovers_total{kind="task"}`:                                                                    "1",
			`waymark_server_ready`:                                                                                          "1",
			`waymark_timer_lateness_seconds_count{kind="timer"}`:                                                            "1",
			`waymark_http_call_duration_seconds_count{host="` + strings.TrimPrefix(api.URL, "http://") + `",outcome="2xx"}`: "1",
			`waymark_http_call_duration_seconds_count{host="` + strings.TrimPrefix(api.URL, "http://") + `",outcome="5xx"}`: "1",
		}
		want[`waymark_alerts_firing{alert="suspended"}`] = "1" // the built-in alert fires
		var m map[string]string
		require.Eventually(t, func() bool {
			m = b.scrape("")
			for series, v := range want {
				if m[series] != v {
					return false
				}
			}
			return true
		}, 20*time.Second, 20*time.Millisecond, "the metrics settle")

		names := map[string]bool{}
		for series := range m {
			names[metricName(series)] = true
		}
		for _, want := range documentedMetrics(t) {
			require.True(t, names[want], "documented metric %s is not scraped", want)
		}
		for series, v := range want {
			require.Equal(t, v, m[series], "%s", series)
		}
		require.Contains(t, m, `waymark_api_request_duration_seconds_count{method="POST",route="/api/v1/instances",status="201"}`)

		// Bounded cardinality: no instance or job id in any label, and a
		// modest number of series.
		waymarkSeries := 0
		for series := range m {
			if !strings.HasPrefix(series, "waymark_") {
				continue
			}
			waymarkSeries++
			for _, id := range append(ids, jobs[0].ID) {
				require.NotContains(t, series, id)
			}
		}
		require.Less(t, waymarkSeries, 400)
	})
}

func TestMetricsAuth(t *testing.T) {
	t.Parallel()
	b := setupObserved(t, obsOpts{server: func(c *server.Config) { c.MetricsAuth = true }})
	b.do(req{method: http.MethodGet, path: server.PathMetrics}).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	b.do(req{method: http.MethodGet, path: server.PathMetrics, token: financeKey}).requireError(t, http.StatusForbidden, server.CodeForbidden)
	require.NotEmpty(t, b.scrape(viewerKey))

	plain := setup(t, setupOpts{})
	plain.do(req{method: http.MethodGet, path: server.PathMetrics}).requireError(t, http.StatusNotFound, server.CodeNotFound)
}

func TestPprofIsForAdmins(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.do(req{method: http.MethodGet, path: server.PathPprof}).requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	for _, token := range []string{viewerKey, operatorKey} {
		b.do(req{method: http.MethodGet, path: server.PathPprof, token: token}).requireError(t, http.StatusForbidden, server.CodeForbidden)
		b.do(req{method: http.MethodGet, path: server.PathPprof + "cmdline", token: token}).requireError(t, http.StatusForbidden, server.CodeForbidden)
	}
	resp := b.do(req{method: http.MethodGet, path: server.PathPprof, token: adminKey})
	require.Equal(t, http.StatusOK, resp.status)
	require.Contains(t, string(resp.body), "goroutine")
	resp = b.do(req{method: http.MethodGet, path: server.PathPprof + "goroutine?debug=1", token: adminKey})
	require.Equal(t, http.StatusOK, resp.status)
	require.Contains(t, string(resp.body), "goroutine profile")
}

func TestDiagnostics(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.do(req{method: http.MethodGet, path: server.Prefix + "/diagnostics", token: operatorKey}).
			requireError(t, http.StatusForbidden, server.CodeForbidden)
		type diagnostics struct {
			NodeID        string `json:"nodeId"`
			Database      string `json:"database"`
			SchemaVersion int64  `json:"schemaVersion"`
			SchemaLatest  int64  `json:"schemaLatest"`
			Started       bool   `json:"started"`
			Ready         bool   `json:"ready"`
			Services      []struct {
				Name    string    `json:"name"`
				LastRun time.Time `json:"lastRun"`
			} `json:"services"`
			Leases []any `json:"leases"`
			Pool   *struct {
				Open int `json:"open"`
			} `json:"pool"`
		}
		// A service is listed once it has run a round; right after the
		// engine starts one of them may not have yet.
		var d diagnostics
		hasRun := func(name string) bool {
			for _, svc := range d.Services {
				if svc.Name == name {
					return true
				}
			}
			return false
		}
		require.Eventually(t, func() bool {
			resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/diagnostics", token: adminKey})
			require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
			d = diagnostics{}
			resp.decode(t, &d)
			return hasRun("work") && hasRun("timer")
		}, 10*time.Second, 20*time.Millisecond, "the work and timer services never reported a round")
		require.NotEmpty(t, d.NodeID)
		require.Contains(t, []string{"sqlite", "postgres"}, d.Database)
		require.Equal(t, d.SchemaLatest, d.SchemaVersion)
		require.Positive(t, d.SchemaVersion)
		require.True(t, d.Started)
		require.True(t, d.Ready)
		require.NotNil(t, d.Pool)
		require.NotNil(t, d.Leases)
		var names []string
		for _, svc := range d.Services {
			names = append(names, svc.Name)
			require.False(t, svc.LastRun.IsZero())
		}
		require.Contains(t, names, "work")
		require.Contains(t, names, "timer")
	})
}

func TestAttentionRoute(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		b := setup(t, setupOpts{store: s})
		b.deploy("id: review\nactivities:\n  - {id: approve, type: userTask}\n")
		inst, _ := b.start("review", map[string]any{}, "", nil)
		require.NoError(t, b.e.Suspend(b.ctx, inst.ID, "ops", 0))

		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/attention", token: viewerKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
		var list struct {
			Items []waymark.AttentionItem `json:"items"`
		}
		resp.decode(t, &list)
		require.Len(t, list.Items, 1)
		require.Equal(t, waymark.AttentionSuspended, list.Items[0].Reason)
		require.Equal(t, inst.ID, list.Items[0].InstanceID)

		// A fresh waiting instance needs attention only past the threshold.
		resp = b.do(req{method: http.MethodGet, path: server.Prefix + "/attention?waitingLongerThan=1h&limit=10", token: viewerKey})
		require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)

		bad := b.do(req{method: http.MethodGet, path: server.Prefix + "/attention?waitingLongerThan=soon", token: viewerKey}).
			requireError(t, http.StatusBadRequest, server.CodeInvalid)
		require.Equal(t, "query.waitingLongerThan", bad.Error.Details[0].Path)
		b.do(req{method: http.MethodGet, path: server.Prefix + "/attention", token: financeKey}).
			requireError(t, http.StatusForbidden, server.CodeForbidden)
	})
}

// lockedBuffer is a log sink for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// A traceparent on POST /instances becomes the instance's trace: the
// server's span, the engine's spans, its events and every log line about
// it carry its trace id; no token reaches the log.
func TestTraceparentOnStartAndLogs(t *testing.T) {
	t.Parallel()
	for _, tracing := range []bool{false, true} {
		t.Run(map[bool]string{false: "TracingOff", true: "TracingOn"}[tracing], func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			spans := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			b := setupObserved(t, obsOpts{
				handlers: map[string]waymark.TaskHandler{"greet": func(context.Context, *waymark.Task) (any, error) { return "hi", nil }},
				engine: func(c *waymark.Config) {
					c.Logger = logger
					if tracing {
						c.TracerProvider = tp
					}
				},
				server: func(c *server.Config) {
					c.Logger = logger
					if tracing {
						c.TracerProvider = tp
					}
				},
			})
			b.deploy("id: hello\nactivities:\n  - {id: greet, type: task, handler: greet}\n")
			const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			inst, _ := b.start("hello", map[string]any{}, "?wait=20s&token="+adminKey, map[string]string{
				"Traceparent": "00-" + traceID + "-00f067aa0ba902b7-01",
			})
			require.Equal(t, store.InstanceCompleted, inst.Status)
			entries, err := b.s.LogList(b.ctx, &store.LogListParams{InstanceID: inst.ID, Limit: 100})
			require.NoError(t, err)
			require.NotEmpty(t, entries)
			for _, e := range entries {
				require.Equal(t, traceID, e.TraceID, "the instance's log rows carry the incoming trace")
			}

			text := logs.String()
			for _, secret := range []string{adminKey, operatorKey, server.HashAPIKey(operatorKey)} {
				require.NotContains(t, text, secret, "a token in the log")
			}
			var sawRequest, sawEngine bool
			for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
				var rec map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
				msg, _ := rec["msg"].(string)
				if msg == "server: request" && rec["path"] == server.Prefix+"/instances" {
					sawRequest = true
					require.Equal(t, traceID, rec["trace_id"], "the request line carries the trace: %s", line)
					require.NotEmpty(t, rec["span_id"])
				}
				if rec["instance_id"] == inst.ID {
					sawEngine = true
					require.Equal(t, traceID, rec["trace_id"], line)
					if strings.HasPrefix(msg, "engine: activity.") {
						require.Equal(t, "greet", rec["activity_id"], line)
					}
				}
			}
			require.True(t, sawRequest)
			require.True(t, sawEngine)

			if !tracing {
				require.Empty(t, spans.GetSpans())
				return
			}
			byName := map[string]tracetest.SpanStub{}
			for _, sp := range spans.GetSpans() {
				if sp.Name == "POST /api/v1/definitions" {
					continue // the deploy: its own trace
				}
				require.Equal(t, traceID, sp.SpanContext.TraceID().String(), sp.Name)
				byName[sp.Name] = sp
			}
			api, ok := byName["POST /api/v1/instances"]
			require.True(t, ok, "a server span named by its route: %v", byName)
			require.Equal(t, "00f067aa0ba902b7", api.Parent.SpanID().String())
			require.Equal(t, api.SpanContext.SpanID(), byName["waymark.instance.start"].Parent.SpanID())
		})
	}
}

// The shipped alert rules and dashboard read only documented metrics.
func TestShippedRulesAndDashboardUseDocumentedMetrics(t *testing.T) {
	t.Parallel()
	documented := map[string]bool{}
	for _, name := range documentedMetrics(t) {
		documented[name] = true
	}
	dash, err := os.ReadFile("../deploy/grafana/waymark.json")
	require.NoError(t, err)
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(dash, &d))
	require.Equal(t, "Waymark", d.Title)
	require.NotEmpty(t, d.Panels)
	rules, err := os.ReadFile("../deploy/prometheus/alerts.yaml")
	require.NoError(t, err)
	exprs := []string{string(rules)}
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range regexp.MustCompile(`waymark_[a-z_]+`).FindAllString(e, -1) {
			used[metricName(m)] = true
		}
	}
	for name := range used {
		require.True(t, documented[name], "%s is not a documented metric", name)
	}
	for _, want := range []string{"waymark_instances", "waymark_outbox_dead", "waymark_outbox_lag_seconds", "waymark_breaker_state",
		"waymark_timer_lateness_seconds", "waymark_server_ready", "waymark_activity_faults_total"} {
		require.True(t, used[want], "%s is not used", want)
	}
}
