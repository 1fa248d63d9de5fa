package store

import (
	"encoding/json"
	"time"
)

// DefinitionInsertParams are the fields of a new definition version.
type DefinitionInsertParams struct {
	ID          string
	Version     int
	Name        string
	Source      []byte
	ContentHash string
	DeployedAt  time.Time
}

// InstanceInsertParams are the fields of a new instance.
type InstanceInsertParams struct {
	ID                string
	DefinitionID      string
	DefinitionVersion int
	Status            InstanceStatus
	Input             json.RawMessage
	Variables         json.RawMessage
	BusinessKey       string
	ParentID          string
	ParentExecutionID string
	IdempotencyKey    string
	Deadline          *time.Time
	CreatedAt         time.Time
	// TraceParent is the W3C traceparent the instance's spans hang from;
	// empty means one derived from its id.
	TraceParent string
}

// InstanceUpdateParams are the mutable fields of an instance. Version is the
// version the caller read.
type InstanceUpdateParams struct {
	ID        string
	Version   int64
	Status    InstanceStatus
	Variables json.RawMessage
	Output    json.RawMessage
	Error     json.RawMessage
	Deadline  *time.Time
	UpdatedAt time.Time
}

// InstanceListParams filter and page InstanceList. Empty fields match all.
// Before is a cursor: the id of the last instance of the previous page.
// After keeps only ids above it; ids are UUIDv7, so Before and After bound
// the creation time too.
type InstanceListParams struct {
	Status            InstanceStatus
	DefinitionID      string
	DefinitionVersion int
	BusinessKey       string
	ParentID          string
	Before            string
	After             string
	Limit             int
}

// InstanceCountParams say what "recently" is for InstanceCount.
type InstanceCountParams struct {
	// StartedAfterID counts the instances whose id is above it (ids are
	// UUIDv7: see IDAt).
	StartedAfterID string
	// EndedSince counts the finished instances last updated at or after it.
	EndedSince time.Time
	// ByStatus counts every instance by definition and status too (a scan
	// of the instances: the engine reads the maintained InstanceCounts
	// instead).
	ByStatus bool
}

// InstanceCounts is what InstanceCount answers.
type InstanceCounts struct {
	// ByStatus has one row per definition and status with instances.
	ByStatus []InstanceCount
	Started  int64
	Ended    int64
}

// ExecutionInsertParams are the fields of a new activity execution.
type ExecutionInsertParams struct {
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
	CreatedAt  time.Time
	// Token is the path that led to the execution (see ActivityExecution).
	Token json.RawMessage
}

// ExecutionUpdateParams are the mutable fields of an activity execution.
// Version is the version the caller read.
type ExecutionUpdateParams struct {
	ID         string
	Version    int64
	Status     string
	Attempt    int
	Input      json.RawMessage
	Output     json.RawMessage
	Error      json.RawMessage
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// BookmarkInsertParams are the fields of a new bookmark.
type BookmarkInsertParams struct {
	ID          string
	InstanceID  string
	ExecutionID string
	ActivityID  string
	Type        BookmarkType
	Key         string
	Payload     json.RawMessage
	Assignee    string
	DueAt       *time.Time
	CreatedAt   time.Time
}

// BookmarkConsumeParams identify the bookmark to consume and who consumes it.
type BookmarkConsumeParams struct {
	ID         string
	ConsumedBy string
	ConsumeKey string
	Result     json.RawMessage
	At         time.Time
}

// BookmarkAssignParams set the assignee of an open bookmark.
type BookmarkAssignParams struct {
	ID       string
	Version  int64
	Assignee string
}

// BookmarkListParams filter BookmarkListOpen. Empty fields match all.
type BookmarkListParams struct {
	InstanceID string
	Type       BookmarkType
	Key        string
	Assignee   string
	Limit      int
}

// BookmarkListDueParams select bookmarks due at or before Now.
type BookmarkListDueParams struct {
	Now   time.Time
	Limit int
}

// LogAppendParams are the fields of one execution-log entry.
type LogAppendParams struct {
	InstanceID string
	ActivityID string
	Event      string
	At         time.Time
	Actor      string
	Details    json.RawMessage
	TraceID    string
}

// LogListParams select one instance's log entries after AfterSeq.
type LogListParams struct {
	InstanceID string
	AfterSeq   int64
	Limit      int
}

// OutboxInsertParams are the fields of a new outbox event. OrderingKey
// defaults to InstanceID, or to ID when there is no instance.
type OutboxInsertParams struct {
	ID          string
	InstanceID  string
	OrderingKey string
	Type        string
	Payload     json.RawMessage
	Headers     json.RawMessage
	OccurredAt  time.Time
}

// ExternalCallInsertParams are the fields of a new external call (phase 1).
type ExternalCallInsertParams struct {
	ID             string
	InstanceID     string
	ExecutionID    string
	IdempotencyKey string
	Request        json.RawMessage
	CreatedAt      time.Time
}

// ExternalCallUpdateParams are the mutable fields of an external call.
type ExternalCallUpdateParams struct {
	ID        string
	Version   int64
	Status    ExternalCallStatus
	Response  json.RawMessage
	Attempts  int
	LastError string
	UpdatedAt time.Time
}

// BreakerRecordParams record one call's outcome through breaker Name.
type BreakerRecordParams struct {
	Name      string
	Success   bool
	Threshold int
	Now       time.Time
}

// BreakerProbeParams ask to let one probe through breaker Name.
type BreakerProbeParams struct {
	Name   string
	Now    time.Time
	Before time.Time
}

// ExternalCallListParams select unfinished calls last updated before Before.
type ExternalCallListParams struct {
	Before time.Time
	Limit  int
}

// InboxInsertParams identify an accepted message and its result.
type InboxInsertParams struct {
	Source     string
	MessageID  string
	ReceivedAt time.Time
	Result     json.RawMessage
}

// WorkEnqueueParams are the fields of a new work item.
type WorkEnqueueParams struct {
	ID          string
	InstanceID  string
	ExecutionID string
	Kind        string
	Handler     string
	RunAt       time.Time
	CreatedAt   time.Time
	// LeaseOwner, when set, enqueues the item already claimed by that
	// owner until LeaseExpiresAt, as if it had claimed it (attempts 1):
	// the engine whose step scheduled the work runs it at once, without
	// a claim, and any engine may claim it once the lease has run out.
	LeaseOwner     string
	LeaseExpiresAt time.Time
}

// WorkClaimParams lease up to Limit due items to Owner until Now+LeaseFor.
// Kind and Handlers, when set, restrict which items are claimed.
type WorkClaimParams struct {
	Owner    string
	Now      time.Time
	LeaseFor time.Duration
	Limit    int
	Kind     string
	Handlers []string
}

// WorkExtendParams prolong Owner's lease on ID until Until.
type WorkExtendParams struct {
	ID    string
	Owner string
	Until time.Time
}

// WorkRetryParams release Owner's lease on ID and make it runnable at RunAt.
type WorkRetryParams struct {
	ID    string
	Owner string
	RunAt time.Time
}

// MessageInsertParams are the fields of a message kept for a later receive.
type MessageInsertParams struct {
	ID          string
	Name        string
	Correlation string
	Payload     json.RawMessage
	Source      string
	MessageID   string
	ReceivedAt  time.Time
	ExpiresAt   time.Time
}

// MessageTakeParams select the message to consume and who consumes it.
type MessageTakeParams struct {
	Name        string
	Correlation string
	ConsumedBy  string
	Now         time.Time
}

// WorkReleaseParams give back Owner's lease on ID unattempted: the item is
// runnable again at RunAt and its claim does not count as an attempt.
type WorkReleaseParams struct {
	ID    string
	Owner string
	RunAt time.Time
}

// TaskStatus filters TaskList.
type TaskStatus string

// Task statuses for TaskList: open (not consumed), closed (consumed in any
// way), or "" for both.
const (
	TaskOpen   TaskStatus = "open"
	TaskClosed TaskStatus = "closed"
)

// TaskListParams filter and page the user tasks (UserAction bookmarks).
// Empty fields match all; AfterID is the cursor (ids are time-ordered).
type TaskListParams struct {
	InstanceID string
	Assignee   string
	// Role matches tasks that name it among their candidate roles.
	Role    string
	Status  TaskStatus
	AfterID string
	Limit   int
}

// EventTailParams read up to Limit committed events after After.
type EventTailParams struct {
	After EventPosition
	Limit int
}

// InstanceCountDelta changes the number of instances of one definition in
// one status.
type InstanceCountDelta struct {
	DefinitionID string
	Status       InstanceStatus
	Delta        int64
}

// InstanceCountsAddParams add deltas to the maintained instance counts, on
// Shard (0 to 15: callers spread over the shards so that concurrent
// transactions rarely update one row). Callers sort Deltas by definition
// and status, so that transactions lock rows in one order.
type InstanceCountsAddParams struct {
	Shard  int
	Deltas []InstanceCountDelta
}

// InstanceListIdleParams list instances in Status not updated since
// UpdatedBefore, oldest first.
type InstanceListIdleParams struct {
	Status        InstanceStatus
	UpdatedBefore time.Time
	Limit         int
}
