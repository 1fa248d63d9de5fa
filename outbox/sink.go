package outbox

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Sink delivers events somewhere. Deliver returns nil once the event is
// accepted. An error is retried later with backoff, unless it is
// Permanent; RetryAfter asks for a pause before the next attempt. Deliver
// must honour ctx: it bounds the attempt (Options.AttemptTimeout) and ends
// when the dispatcher stops. It is called from several goroutines at once,
// never with two events of one instance at once.
type Sink interface {
	Deliver(ctx context.Context, e *Event) error
}

// SinkFunc is a function as a Sink.
type SinkFunc func(ctx context.Context, e *Event) error

// Deliver implements Sink.
func (f SinkFunc) Deliver(ctx context.Context, e *Event) error { return f(ctx, e) }

// permanentError is an error not worth retrying.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: the event goes dead at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError asks for a pause before the next attempt.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (r *retryAfterError) Error() string { return r.err.Error() }
func (r *retryAfterError) Unwrap() error { return r.err }

// RetryAfter marks err as retryable no sooner than after d (a receiver's
// Retry-After).
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err, d}
}

func retryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// LogSink writes one structured line per event.
type LogSink struct {
	Logger *slog.Logger
	// Level is the lines' level (default Info).
	Level slog.Level
}

// Deliver implements Sink.
func (l *LogSink) Deliver(ctx context.Context, e *Event) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []slog.Attr{
		slog.String("event_id", e.ID), slog.String("type", e.Type),
		slog.Time("occurred_at", e.OccurredAt), slog.String("sink", e.Sink),
	}
	if e.InstanceID != "" {
		attrs = append(attrs, slog.String("instance_id", e.InstanceID))
	}
	if tp := e.Headers["traceparent"]; tp != "" {
		attrs = append(attrs, slog.String("traceparent", tp))
	}
	attrs = append(attrs, slog.String("data", string(e.Data)))
	logger.LogAttrs(ctx, l.Level, "outbox: event", attrs...)
	return nil
}
