package waymark

import (
	"encoding/json"
	"time"
)

// Event types the engine writes to the execution log and the outbox.
const (
	EventInstanceStarted    = "instance.started"
	EventInstanceCompleted  = "instance.completed"
	EventInstanceFailed     = "instance.failed"
	EventInstanceCancelled  = "instance.cancelled"
	EventInstanceTimedOut   = "instance.timed_out"
	EventInstanceSuspended  = "instance.suspended"
	EventInstanceResumed    = "instance.resumed"
	EventInstanceCompensate = "instance.compensating"
	EventActivityStarted    = "activity.started"
	EventActivityCompleted  = "activity.completed"
	EventActivityFailed     = "activity.failed"
	EventActivityRetrying   = "activity.retrying"
	EventActivitySkipped    = "activity.skipped"
	EventActivityCancelled  = "activity.cancelled"
	// EventScopeCancelling: a scope is cancelled or fails; what ran
	// inside it is compensated before it goes on.
	EventScopeCancelling     = "scope.cancelling"
	EventTaskCreated         = "task.created"
	EventTaskClaimed         = "task.claimed"
	EventTaskUnclaimed       = "task.unclaimed"
	EventTaskCompleted       = "task.completed"
	EventTaskExpired         = "task.expired"
	EventMessageCorrelated   = "message.correlated"
	EventMessageTimedOut     = "message.timed_out"
	EventTimerFired          = "timer.fired"
	EventSubworkflowFinished = "subworkflow.finished"
	// EventActivityHeld: an http call is held back unsent by an open
	// circuit breaker.
	EventActivityHeld = "activity.held"
	// EventBreakerOpened and EventBreakerClosed are written on the
	// instance whose call opened or closed a circuit breaker.
	EventBreakerOpened = "breaker.opened"
	EventBreakerClosed = "breaker.closed"
)

// Event is one state change, as written to the execution log and, with the
// same id, to the outbox. Consumers deduplicate on ID.
type Event struct {
	ID                string         `json:"id"`
	Type              string         `json:"type"`
	InstanceID        string         `json:"instanceId"`
	DefinitionID      string         `json:"definition"`
	DefinitionVersion int            `json:"version"`
	ActivityID        string         `json:"activityId,omitempty"`
	ExecutionID       string         `json:"executionId,omitempty"`
	OccurredAt        time.Time      `json:"occurredAt"`
	Actor             string         `json:"actor,omitempty"`
	TraceID           string         `json:"traceId"`
	Data              map[string]any `json:"data,omitempty"`

	// body, set for the events of emit activities, is the outbox payload
	// as the definition wrote it; such events are not execution-log rows.
	body json.RawMessage
}

func (ev *Event) payload() json.RawMessage { return mustJSON(ev) }

func (ev *Event) details() json.RawMessage {
	if len(ev.Data) == 0 {
		return nil
	}
	return mustJSON(ev.Data)
}
