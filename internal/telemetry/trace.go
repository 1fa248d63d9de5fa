package telemetry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceparent is the W3C Trace Context header (and the CloudEvents
// distributed-tracing extension attribute, and the NATS header) that
// carries a span's context to another process.
const HeaderTraceparent = "traceparent"

var propagator = propagation.TraceContext{}

// ParseTraceparent reads a W3C traceparent ("00-<trace id>-<span id>-<flags>").
// It returns an error naming what is wrong; the span context is remote.
func ParseTraceparent(s string) (trace.SpanContext, error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return trace.SpanContext{}, fmt.Errorf("traceparent %q: want 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>", s)
	}
	if parts[0] == "ff" || (parts[0] == "00" && len(parts) != 4) {
		return trace.SpanContext{}, fmt.Errorf("traceparent %q: unsupported version", s)
	}
	tid, err := trace.TraceIDFromHex(parts[1])
	if err != nil {
		return trace.SpanContext{}, fmt.Errorf("traceparent %q: trace id: %w", s, err)
	}
	sid, err := trace.SpanIDFromHex(parts[2])
	if err != nil {
		return trace.SpanContext{}, fmt.Errorf("traceparent %q: span id: %w", s, err)
	}
	flags, err := hex.DecodeString(parts[3])
	if err != nil {
		return trace.SpanContext{}, fmt.Errorf("traceparent %q: flags: %w", s, err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true,
	}), nil
}

// FormatTraceparent writes sc as a W3C traceparent; "" for an invalid one.
func FormatTraceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// InstanceContext is the trace context every span of an instance hangs
// from: the stored traceparent (the one the instance was started with, or
// its start span), or, for an instance that has none, one derived from its
// id (trace id = the id's 32 hex digits), so that even without tracing the
// instance's log lines, events and outgoing calls share one trace id.
func InstanceContext(instanceID, stored string) trace.SpanContext {
	if stored != "" {
		if sc, err := ParseTraceparent(stored); err == nil {
			return sc
		}
	}
	h := hexDigits(instanceID, 32)
	tid, _ := trace.TraceIDFromHex(h)
	sid, _ := trace.SpanIDFromHex(h[16:])
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// ChildTraceparent is a traceparent in the trace of parent with spanHint's
// hex digits as its span id: what an outgoing request carries when no span
// is recording.
func ChildTraceparent(parent trace.SpanContext, spanHint string) string {
	sid, err := trace.SpanIDFromHex(hexDigits(spanHint, 16))
	if err != nil || !sid.IsValid() {
		sid = parent.SpanID()
	}
	return FormatTraceparent(parent.WithSpanID(sid))
}

// hexDigits keeps the last n hex digits of id (dashes dropped), padded with
// zeros; a result of all zeros becomes ...01 (an all-zero id is invalid).
func hexDigits(id string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') {
			b.WriteRune(r)
		}
	}
	h := b.String()
	h = strings.Repeat("0", max(n-len(h), 0)) + h
	h = h[len(h)-n:]
	if strings.Trim(h, "0") == "" {
		h = h[:n-1] + "1"
	}
	return h
}

// Inject writes ctx's span context into h as traceparent (and tracestate).
func Inject(ctx context.Context, h http.Header) { propagator.Inject(ctx, propagation.HeaderCarrier(h)) }

// Extract reads a traceparent from h into ctx (a remote parent).
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// TraceparentFromHeaders reads the traceparent of an outbox event's stored
// headers (a JSON object of strings).
func TraceparentFromHeaders(headers json.RawMessage) string {
	if len(headers) == 0 {
		return ""
	}
	var m map[string]string
	if json.Unmarshal(headers, &m) != nil {
		return ""
	}
	return m[HeaderTraceparent]
}

// DeliveryEvent is what StartDeliverySpan needs of an outbox event.
type DeliveryEvent struct {
	ID         string
	Type       string
	InstanceID string
	// Headers are the event's stored headers; their traceparent, if any,
	// becomes the span's parent.
	Headers json.RawMessage
	// Attempt is the delivery attempt, from 1.
	Attempt int
}

// StartDeliverySpan starts the producer span of one delivery of ev to sink,
// a child of the event's traceparent, so that it joins the instance's
// trace. The returned context carries the span: inject it into the
// delivery (Inject for HTTP headers, Traceparent for a CloudEvents
// attribute or a NATS header). End the span with EndSpan.
func StartDeliverySpan(ctx context.Context, tr trace.Tracer, sink string, ev *DeliveryEvent) (context.Context, trace.Span) {
	if tp := TraceparentFromHeaders(ev.Headers); tp != "" {
		if sc, err := ParseTraceparent(tp); err == nil {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	return tr.Start(ctx, SpanOutboxDeliver, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String(AttrSink, sink), attribute.String(AttrEventID, ev.ID), attribute.String(AttrEventType, ev.Type),
		attribute.String(AttrInstanceID, ev.InstanceID), attribute.Int(AttrOutboxAttmpt, ev.Attempt),
	))
}

// Traceparent is ctx's span as a traceparent value ("" without one).
func Traceparent(ctx context.Context) string {
	return FormatTraceparent(trace.SpanContextFromContext(ctx))
}

// EndSpan ends span, marking it failed with err when err is not nil.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
