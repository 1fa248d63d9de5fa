package telemetry

// Metric names, as Prometheus shows them. The Prometheus exporter is set up
// without suffixes (see PrometheusOptions in the server's wiring), so these
// are the names scraped. No metric carries an instance id or any other
// unbounded label: labels are definitions, statuses, handlers, hosts, fault
// classes, sinks, breakers and routes.
const (
	MetricInstances          = "waymark_instances"                         // gauge: definition, status
	MetricInstancesStarted   = "waymark_instances_started_total"           // counter: definition
	MetricInstancesEnded     = "waymark_instances_ended_total"             // counter: definition, status
	MetricStepDuration       = "waymark_step_duration_seconds"             // histogram: kind
	MetricStepTxDuration     = "waymark_step_transaction_duration_seconds" // histogram: outcome
	MetricStepErrors         = "waymark_step_errors_total"                 // counter: kind
	MetricWorkStarted        = "waymark_work_started_total"                // counter: kind, via
	MetricHandlerDuration    = "waymark_handler_duration_seconds"          // histogram: handler, outcome
	MetricHTTPCallDuration   = "waymark_http_call_duration_seconds"        // histogram: host, outcome
	MetricActivityFaults     = "waymark_activity_faults_total"             // counter: definition, type, class
	MetricRetries            = "waymark_activity_retries_total"            // counter: definition
	MetricSuspensions        = "waymark_instance_suspensions_total"        // counter: definition
	MetricUserTasksOpen      = "waymark_user_tasks_open"                   // gauge
	MetricUserTaskOldestAge  = "waymark_user_task_oldest_age_seconds"      // gauge
	MetricTimerLateness      = "waymark_timer_lateness_seconds"            // histogram: kind
	MetricOutboxPending      = "waymark_outbox_pending"                    // gauge: sink
	MetricOutboxLag          = "waymark_outbox_lag_seconds"                // gauge: sink
	MetricOutboxDead         = "waymark_outbox_dead"                       // gauge: sink
	MetricBreakerState       = "waymark_breaker_state"                     // gauge: breaker (0 closed, 1 half-open, 2 open)
	MetricLeaseTakeovers     = "waymark_lease_takeovers_total"             // counter: kind
	MetricDBConnsOpen        = "waymark_db_connections_open"               // gauge
	MetricDBConnsInUse       = "waymark_db_connections_in_use"             // gauge
	MetricDBConnsIdle        = "waymark_db_connections_idle"               // gauge
	MetricDBConnsWait        = "waymark_db_connection_waits_total"         // counter (observed)
	MetricAPIRequestDuration = "waymark_api_request_duration_seconds"      // histogram: method, route, status
	MetricAlertsFiring       = "waymark_alerts_firing"                     // gauge: alert
	MetricServerReady        = "waymark_server_ready"                      // gauge: 1 while ready
	MetricBuildInfo          = "waymark_build_info"                        // gauge: version
)

// Label (attribute) names of the metrics.
const (
	LabelDefinition = "definition"
	LabelStatus     = "status"
	LabelKind       = "kind"
	LabelOutcome    = "outcome"
	LabelHandler    = "handler"
	LabelHost       = "host"
	LabelType       = "type"
	LabelClass      = "class"
	LabelSink       = "sink"
	LabelBreaker    = "breaker"
	LabelMethod     = "method"
	LabelRoute      = "route"
	LabelAlert      = "alert"
	LabelVersion    = "version"
	LabelVia        = "via"
)

// Span names.
const (
	SpanInstanceStart = "waymark.instance.start"
	SpanStep          = "waymark.step"
	SpanTask          = "waymark.task"
	SpanOutboxDeliver = "waymark.outbox.deliver"
	// HTTP client spans are named by their method ("POST"), API request
	// spans "METHOD ROUTE", as the semantic conventions say.
)

// Span attribute names of Waymark's own (the HTTP ones are semconv's).
const (
	AttrInstanceID   = "waymark.instance.id"
	AttrDefinition   = "waymark.definition"
	AttrVersion      = "waymark.definition.version"
	AttrActivityID   = "waymark.activity.id"
	AttrExecutionID  = "waymark.execution.id"
	AttrHandler      = "waymark.handler"
	AttrAttempt      = "waymark.attempt"
	AttrStepKind     = "waymark.step.kind"
	AttrInstances    = "waymark.step.instances"
	AttrEvents       = "waymark.step.events"
	AttrTries        = "waymark.step.tries"
	AttrFaultClass   = "waymark.fault.class"
	AttrSink         = "waymark.outbox.sink"
	AttrEventID      = "waymark.event.id"
	AttrEventType    = "waymark.event.type"
	AttrOutboxAttmpt = "waymark.outbox.attempt"
)

// Log attribute keys (slog), shared by the engine and the server.
const (
	LogInstanceID  = "instance_id"
	LogActivityID  = "activity_id"
	LogExecutionID = "execution_id"
	LogTraceID     = "trace_id"
	LogSpanID      = "span_id"
	LogDefinition  = "definition"
	LogNodeID      = "node_id"
	LogError       = "error"
)

// Histogram buckets, in seconds.
var (
	// LatencyBuckets suit steps, handlers, calls and API requests: 1ms to 60s.
	LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	// LatenessBuckets suit timer lateness: 10ms to 10min.
	LatenessBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}
)
