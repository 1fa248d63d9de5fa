package store

import (
	"encoding/json"
	"time"
)

// InstanceStatus is the lifecycle state of an Instance.
type InstanceStatus string

// Instance statuses (DESIGN §1).
const (
	InstanceRunning      InstanceStatus = "running"
	InstanceWaiting      InstanceStatus = "waiting"
	InstanceSuspended    InstanceStatus = "suspended"
	InstanceCompleted    InstanceStatus = "completed"
	InstanceFailed       InstanceStatus = "failed"
	InstanceCancelled    InstanceStatus = "cancelled"
	InstanceCompensating InstanceStatus = "compensating"
	InstanceTimedOut     InstanceStatus = "timed_out"
)

// Finished reports whether the status is final: nothing will run again.
func (s InstanceStatus) Finished() bool {
	switch s {
	case InstanceCompleted, InstanceFailed, InstanceCancelled, InstanceTimedOut:
		return true
	}
	return false
}

// BookmarkType says what an instance waits for.
type BookmarkType string

// Bookmark types (DESIGN §1).
const (
	BookmarkUserAction      BookmarkType = "UserAction"
	BookmarkTimer           BookmarkType = "Timer"
	BookmarkExternalMessage BookmarkType = "ExternalMessage"
)

// DeliveryState is the state of an event a sink parked: one it failed to
// deliver, or one behind such an event.
type DeliveryState string

// Delivery states of parked events.
const (
	// DeliveryRetry is a failed event waiting for its next attempt; it is
	// the head of its ordering key on its sink.
	DeliveryRetry DeliveryState = "retry"
	// DeliveryHeld is an event waiting behind an earlier event of its
	// ordering key that is parked on the same sink.
	DeliveryHeld DeliveryState = "held"
	// DeliveryDead is an event the sink gave up on: attempts exhausted or
	// a permanent error. It holds the events behind it until replayed.
	DeliveryDead DeliveryState = "dead"
)

// BreakerState is the state of a circuit breaker.
type BreakerState string

// Circuit breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half_open"
)

// Breaker is a named circuit breaker, shared by every engine on the store.
type Breaker struct {
	Name  string       `json:"name"`
	State BreakerState `json:"state"`
	// Failures counts failed calls in a row.
	Failures int `json:"failures"`
	// OpenedAt is when it last opened; nil while closed.
	OpenedAt  *time.Time `json:"openedAt,omitempty"`
	UpdatedAt time.Time  `json:"updatedAt"`
}

// ExternalCallStatus is the state of a two-phase external call.
type ExternalCallStatus string

// External call statuses (DESIGN §1).
const (
	ExternalCallPending   ExternalCallStatus = "pending"
	ExternalCallSucceeded ExternalCallStatus = "succeeded"
	ExternalCallFailed    ExternalCallStatus = "failed"
	ExternalCallUnknown   ExternalCallStatus = "unknown"
)

// Definition is one immutable, deployed version of a workflow definition.
type Definition struct {
	ID          string
	Version     int
	Name        string
	Source      []byte
	ContentHash string
	DeployedAt  time.Time
}

// Instance is one run of a definition version. Version is its
// optimistic-concurrency token: every update checks and bumps it.
type Instance struct {
	ID                string
	DefinitionID      string
	DefinitionVersion int
	Status            InstanceStatus
	Input             json.RawMessage
	Variables         json.RawMessage
	Output            json.RawMessage
	Error             json.RawMessage
	BusinessKey       string
	ParentID          string
	ParentExecutionID string
	IdempotencyKey    string
	Deadline          *time.Time
	Version           int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// TraceParent is the W3C traceparent the instance's spans hang from;
	// empty means one derived from its id.
	TraceParent string
}

// ActivityExecution is the attempt history of one activity within an
// instance. Version is its optimistic-concurrency token.
type ActivityExecution struct {
	ID         string
	InstanceID string
	ActivityID string
	Type       string
	Status     string
	Attempt    int
	Input      json.RawMessage
	Output     json.RawMessage
	Error      json.RawMessage
	StartedAt  *time.Time
	FinishedAt *time.Time
	Version    int64
	CreatedAt  time.Time
	// Token is the engine's record of the path that led to the execution
	// (the forks it is a branch of, the forEach iteration it belongs to);
	// nil on no branch. Set on insert, never changed.
	Token json.RawMessage
}

// Bookmark is a point where an instance waits for the outside world. A
// bookmark is consumed exactly once; ConsumeKey is the idempotency key the
// winning consumer carried, so a retry with the same key can be recognised.
type Bookmark struct {
	ID          string
	InstanceID  string
	ExecutionID string
	ActivityID  string
	Type        BookmarkType
	Key         string
	Payload     json.RawMessage
	Assignee    string
	DueAt       *time.Time
	ConsumedAt  *time.Time
	ConsumedBy  string
	ConsumeKey  string
	Result      json.RawMessage
	Version     int64
	CreatedAt   time.Time
}

// Consumed reports whether the bookmark has been consumed.
func (b *Bookmark) Consumed() bool { return b.ConsumedAt != nil }

// LogEntry is one row of the append-only execution log.
type LogEntry struct {
	Seq        int64
	InstanceID string
	ActivityID string
	Event      string
	At         time.Time
	Actor      string
	Details    json.RawMessage
	TraceID    string
}

// OutboxEvent is an event written in the same transaction as the state
// change that caused it, and never changed afterwards. ID is stable across
// delivery attempts. Events sharing an OrderingKey (the instance id) fall in
// one Part (see OutboxPart) and are delivered to each sink strictly in
// Position order.
type OutboxEvent struct {
	Position    EventPosition
	ID          string
	OrderingKey string
	InstanceID  string
	Type        string
	Part        int
	Payload     json.RawMessage
	Headers     json.RawMessage
	OccurredAt  time.Time
}

// ExternalCall is the two-phase record of a call to another system.
type ExternalCall struct {
	ID             string
	InstanceID     string
	ExecutionID    string
	IdempotencyKey string
	Status         ExternalCallStatus
	Request        json.RawMessage
	Response       json.RawMessage
	Attempts       int
	LastError      string
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// InboxEntry records a message already accepted, keyed by (Source,
// MessageID), with the result its first handling produced.
type InboxEntry struct {
	Source     string
	MessageID  string
	ReceivedAt time.Time
	Result     json.RawMessage
}

// WorkItem is a unit of runnable work (advance an activity execution, or a
// job for an external worker) leased to one owner at a time.
type WorkItem struct {
	ID             string
	InstanceID     string
	ExecutionID    string
	Kind           string
	Handler        string
	RunAt          time.Time
	Attempts       int
	LeaseOwner     string
	LeaseExpiresAt *time.Time
	CreatedAt      time.Time
	// InstanceVersion is the version the item's instance had when WorkClaim
	// claimed the item (0 from the other calls, or when the instance is
	// gone): an engine whose cached state of the instance is older knows
	// at once that it is stale.
	InstanceVersion int64
}

// Message is a message delivered before any bookmark waited for it, kept
// until ExpiresAt so that a later receive can consume it.
type Message struct {
	ID          string
	Name        string
	Correlation string
	Payload     json.RawMessage
	Source      string
	MessageID   string
	ReceivedAt  time.Time
	ExpiresAt   time.Time
	ConsumedAt  *time.Time
	ConsumedBy  string
}

// EventPosition is a place in the stream of committed events: the
// transaction id that wrote the event (always 0 on SQLite) and its seq.
// Positions are totally ordered by (Xid, Seq); no event can commit later
// at a position before one already read.
type EventPosition struct {
	Xid int64
	Seq int64
}

// Less reports whether p comes before o.
func (p EventPosition) Less(o EventPosition) bool {
	return p.Xid < o.Xid || p.Xid == o.Xid && p.Seq < o.Seq
}

// TailEvent is an outbox event as the live stream reads it.
type TailEvent struct {
	Position   EventPosition
	ID         string
	InstanceID string
	Type       string
	Payload    json.RawMessage
	OccurredAt time.Time
}

// InstanceCount is how many instances of a definition have a status.
type InstanceCount struct {
	DefinitionID string
	Status       InstanceStatus
	Count        int64
}

// UserTaskStats summarises the open user tasks.
type UserTaskStats struct {
	Open int64
	// OldestCreatedAt is when the oldest open task was created; nil when
	// none is open.
	OldestCreatedAt *time.Time
}

// RetryingExecution is an activity execution waiting for another attempt
// after a failure.
type RetryingExecution struct {
	InstanceID   string
	DefinitionID string
	ActivityID   string
	ExecutionID  string
	Attempt      int
	Error        json.RawMessage
	UpdatedAt    time.Time
}

// AlertState is the state of one built-in alert rule: "ok", "pending"
// (the condition holds, not yet for its duration) or "firing", since when,
// and the value last seen.
type AlertState struct {
	Name      string
	State     string
	Since     *time.Time
	Value     float64
	UpdatedAt time.Time
}
