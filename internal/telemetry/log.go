package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler wraps h so that every record logged with a context that
// carries a valid span gets trace_id and span_id, unless the record has
// them already.
func LogHandler(h slog.Handler) slog.Handler { return &logHandler{h: h} }

type logHandler struct{ h slog.Handler }

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if sc.IsValid() {
		hasTrace, hasSpan := false, false
		r.Attrs(func(a slog.Attr) bool {
			hasTrace = hasTrace || a.Key == LogTraceID
			hasSpan = hasSpan || a.Key == LogSpanID
			return true
		})
		if !hasTrace {
			r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()))
		}
		if !hasSpan {
			r.AddAttrs(slog.String(LogSpanID, sc.SpanID().String()))
		}
	}
	return l.h.Handle(ctx, r)
}

func (l *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{h: l.h.WithAttrs(attrs)}
}

func (l *logHandler) WithGroup(name string) slog.Handler { return &logHandler{h: l.h.WithGroup(name)} }
