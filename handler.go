package waymark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// TaskHandler runs a task activity. It returns the activity's output (any
// JSON-encodable value) or an error: retried with backoff by default, not
// retried when wrapped with Permanent, routed by the activity's onError when
// a BusinessError.
//
// A handler runs at least once per activity execution and may run more than
// once (after a crash, a lost lease or a retry); Task.IdempotencyKey is the
// same every time, so the handler, and the services it calls, can
// deduplicate.
type TaskHandler func(ctx context.Context, t *Task) (any, error)

// Task is one attempt of a task activity.
type Task struct {
	InstanceID  string
	ActivityID  string
	ExecutionID string
	// Handler is the handler name from the definition.
	Handler string
	// Attempt counts from 1.
	Attempt int
	// IdempotencyKey is stable across every attempt of this execution.
	IdempotencyKey string
	// Input is the activity's evaluated input, or the instance input when
	// the activity declares none.
	Input json.RawMessage
	// BusinessKey of the instance.
	BusinessKey string
}

// Decode unmarshals the task input into v.
func (t *Task) Decode(v any) error { return json.Unmarshal(t.Input, v) }

// HandlerPanic is the error of a handler that panicked.
type HandlerPanic struct {
	Handler string
	Value   any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (p *HandlerPanic) Error() string {
	return fmt.Sprintf("handler %s panicked: %v", p.Handler, p.Value)
}

// RunHandler runs h for t the way the engine runs task handlers: under the
// activity's timeout (0: none; timedOut reports that it ran out), with a
// panic turned into a *HandlerPanic, and with the output encoded as it is
// stored (JSON, nothing HTML-escaped; nil is no output) — an output that
// does not encode is a Permanent error. External workers (client.Worker)
// run handlers with it, so a handler behaves the same in and out of the
// engine's process.
func RunHandler(ctx context.Context, h TaskHandler, t *Task, timeout time.Duration) (output json.RawMessage, err error, timedOut bool) {
	hctx, cancel := context.WithCancel(ctx)
	if timeout > 0 {
		hctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	var out any
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = &HandlerPanic{Handler: t.Handler, Value: v, Stack: debug.Stack()}
			}
		}()
		out, err = h(hctx, t)
	}()
	if err != nil {
		return nil, err, errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	}
	if output, err = encodeJSON(out); err != nil {
		return nil, Permanent(fmt.Errorf("handler output: %w", err)), false
	}
	return output, nil, false
}
