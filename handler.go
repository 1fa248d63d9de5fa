package waymark

import (
	"context"
	"encoding/json"
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
