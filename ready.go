package waymark

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/waymarkdev/waymark/store"
)

// ErrUnavailable reports that the database cannot be reached.
var ErrUnavailable = store.ErrUnavailable

// ErrNotReady reports an engine that cannot do its work yet: see Ready.
var ErrNotReady = errors.New("waymark: not ready")

// NotReadyError says why the engine is not ready: Reason is meant for
// operators (no driver text), Err is the cause, when there is one.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string {
	if e.Err == nil {
		return "not ready: " + e.Reason
	}
	return "not ready: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap makes the error ErrNotReady and its cause.
func (e *NotReadyError) Unwrap() []error { return []error{ErrNotReady, e.Err} }

func notReady(err error, format string, args ...any) error {
	return &NotReadyError{Reason: fmt.Sprintf(format, args...), Err: err}
}

// schemaStore is a store whose schema is versioned (both drivers).
type schemaStore interface {
	SchemaVersion(ctx context.Context) (int64, error)
	SchemaLatest() (int64, error)
}

// Ready reports whether the engine can do its work: the database answers
// (within 2s), its schema is the one this build expects (migrated, and not
// by a newer build), and — when the engine has been started — its
// background services run. The error, a *NotReadyError, says what is
// wrong; it wraps ErrNotReady, and ErrUnavailable when the database cannot
// be reached.
func (e *Engine) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := e.store.ClockNow(ctx); err != nil {
		if !errors.Is(err, store.ErrUnavailable) && ctx.Err() != nil {
			err = fmt.Errorf("%w: no answer within 2s: %w", store.ErrUnavailable, err)
		}
		return notReady(err, "the database does not answer")
	}
	if ss, ok := e.store.(schemaStore); ok {
		have, err := ss.SchemaVersion(ctx)
		if err != nil {
			return notReady(err, "the database schema version cannot be read")
		}
		want, err := ss.SchemaLatest()
		if err != nil {
			return notReady(err, "this build's migrations cannot be read")
		}
		switch {
		case have < want:
			return notReady(nil, "the database schema is at version %d, this build needs %d: run waymark migrate", have, want)
		case have > want:
			return notReady(nil, "the database schema is at version %d, newer than this build's %d: upgrade Waymark", have, want)
		}
	}
	e.runMu.Lock()
	started := e.started
	e.runMu.Unlock()
	if started != nil {
		select {
		case <-started.done:
			return notReady(nil, "the engine's background services have stopped")
		default:
		}
	}
	return nil
}
