// Package store is Waymark's one storage seam: the records every guarantee
// rests on, the Store and Tx interfaces the engine talks to, and the sentinel
// errors every driver translates its own errors into.
//
// The interfaces are internal to Waymark in spirit: they change whenever the
// engine needs them to. Do not implement them outside this module; use
// store/sqlite or store/postgres. Both drivers are held to the same behaviour
// by the conformance suite in store/storetest.
//
// Conventions: methods are named Noun+Verb and take (ctx, *XxxParams) when
// they need more than an id. Times are stored in UTC with microsecond
// precision. JSON columns hold json.RawMessage; nil means SQL NULL.
package store

import (
	"context"
	"time"
)

// Executor is every query a unit of work can run. Both Store (each call its
// own transaction) and Tx (calls share one transaction) implement it.
type Executor interface {
	// DefinitionInsert stores a new definition version. It fails with
	// ErrDuplicate when (ID, Version) exists. Use DefinitionDeploy to assign
	// the next version.
	DefinitionInsert(ctx context.Context, p *DefinitionInsertParams) (*Definition, error)
	// DefinitionGet returns one version, or the latest when version is 0.
	DefinitionGet(ctx context.Context, id string, version int) (*Definition, error)
	// DefinitionCheckLatest succeeds if version is the newest version of
	// definition id: ErrStale if a newer one exists (or none does).
	DefinitionCheckLatest(ctx context.Context, id string, version int) error
	// DefinitionGetByHash returns the version of id whose content hash is
	// hash, the lowest if several.
	DefinitionGetByHash(ctx context.Context, id, hash string) (*Definition, error)
	// DefinitionList returns the latest version of every definition, by id.
	DefinitionList(ctx context.Context) ([]*Definition, error)
	// DefinitionListVersions returns every version of id, oldest first.
	DefinitionListVersions(ctx context.Context, id string) ([]*Definition, error)

	// InstanceInsert stores a new instance at version 1. A non-empty
	// IdempotencyKey already used fails with ErrDuplicate.
	InstanceInsert(ctx context.Context, p *InstanceInsertParams) (*Instance, error)
	InstanceGet(ctx context.Context, id string) (*Instance, error)
	InstanceGetByIdempotencyKey(ctx context.Context, key string) (*Instance, error)
	// InstanceUpdate writes the mutable fields if the stored version equals
	// p.Version, and bumps it; otherwise ErrStale (ErrNotFound if missing).
	InstanceUpdate(ctx context.Context, p *InstanceUpdateParams) (*Instance, error)
	// InstanceCheckVersion succeeds if the instance is at version:
	// ErrStale if it has moved on, ErrNotFound if it is gone.
	InstanceCheckVersion(ctx context.Context, id string, version int64) error
	// InstanceList pages through instances, newest first.
	InstanceList(ctx context.Context, p *InstanceListParams) ([]*Instance, error)
	// InstanceCount counts instances by definition and status, and those
	// started (id above p.StartedAfterID) and ended (a final status,
	// updated at or after p.EndedSince) recently.
	InstanceCount(ctx context.Context, p *InstanceCountParams) (*InstanceCounts, error)

	ExecutionInsert(ctx context.Context, p *ExecutionInsertParams) (*ActivityExecution, error)
	ExecutionGet(ctx context.Context, id string) (*ActivityExecution, error)
	// ExecutionUpdate writes the mutable fields if the stored version equals
	// p.Version, and bumps it; otherwise ErrStale (ErrNotFound if missing).
	ExecutionUpdate(ctx context.Context, p *ExecutionUpdateParams) (*ActivityExecution, error)
	// ExecutionListByInstance returns an instance's executions in creation order.
	ExecutionListByInstance(ctx context.Context, instanceID string) ([]*ActivityExecution, error)

	BookmarkInsert(ctx context.Context, p *BookmarkInsertParams) (*Bookmark, error)
	BookmarkGet(ctx context.Context, id string) (*Bookmark, error)
	// BookmarkConsume marks an open bookmark consumed. Exactly one of any
	// number of concurrent callers succeeds; the others get ErrConflict
	// (ErrNotFound if the bookmark does not exist).
	BookmarkConsume(ctx context.Context, p *BookmarkConsumeParams) (*Bookmark, error)
	// BookmarkAssign sets the assignee of an open bookmark if its version
	// equals p.Version (ErrStale otherwise; ErrConflict if consumed).
	BookmarkAssign(ctx context.Context, p *BookmarkAssignParams) (*Bookmark, error)
	// BookmarkListOpen returns unconsumed bookmarks matching p, oldest first.
	BookmarkListOpen(ctx context.Context, p *BookmarkListParams) ([]*Bookmark, error)
	// BookmarkListDue returns unconsumed bookmarks whose DueAt is at or
	// before p.Now, earliest first. Never one that is not yet due.
	BookmarkListDue(ctx context.Context, p *BookmarkListDueParams) ([]*Bookmark, error)
	// TaskList pages through user tasks (UserAction bookmarks) by id.
	TaskList(ctx context.Context, p *TaskListParams) ([]*Bookmark, error)
	// BookmarkNextDue returns the earliest DueAt of any unconsumed bookmark,
	// or nil when none has one.
	BookmarkNextDue(ctx context.Context) (*time.Time, error)

	// LogAppend appends entries to the execution log in order, in one
	// statement.
	LogAppend(ctx context.Context, entries []*LogAppendParams) error
	// LogList returns an instance's log entries after p.AfterSeq in order.
	LogList(ctx context.Context, p *LogListParams) ([]*LogEntry, error)

	OutboxInsert(ctx context.Context, p *OutboxInsertParams) (*OutboxEvent, error)
	// OutboxInsertBatch inserts events in one statement, in order.
	OutboxInsertBatch(ctx context.Context, events []*OutboxInsertParams) error
	OutboxGet(ctx context.Context, id string) (*OutboxEvent, error)
	// OutboxTail returns up to p.Limit events of partition p.Part after
	// p.After in position order, every one committed and final (as
	// EventTail).
	OutboxTail(ctx context.Context, p *OutboxTailParams) ([]*OutboxEvent, error)

	// SinkCursorClaim creates the sink's cursors that do not exist yet
	// (one per partition, at p.Start), renews those p.Owner holds and takes
	// free or expired ones (bumping their fence) until p.Owner holds p.Max,
	// and returns the ones p.Owner holds, by partition.
	SinkCursorClaim(ctx context.Context, p *SinkCursorClaimParams) ([]*SinkCursor, error)
	// SinkCursorList returns the cursors of sink ("" = every sink) by sink
	// and partition.
	SinkCursorList(ctx context.Context, sink string) ([]*SinkCursor, error)
	// SinkCursorAdvance moves a cursor p.Owner holds with p.Fence to
	// p.Position; ErrConflict when the lease was lost (another dispatcher
	// took it). Advancing to the same position checks the lease.
	SinkCursorAdvance(ctx context.Context, p *SinkCursorAdvanceParams) error
	// SinkCursorRelease gives a cursor's lease back.
	SinkCursorRelease(ctx context.Context, sink string, part int, owner string, fence int64) error
	// SinkPark parks events on their sinks, in one statement.
	SinkPark(ctx context.Context, events []*SinkParkParams) error
	// SinkParked returns, of keys, those with any event parked on sink.
	SinkParked(ctx context.Context, sink string, keys []string) ([]string, error)
	// SinkParkedKeys returns every key with an event parked on sink in
	// partition part.
	SinkParkedKeys(ctx context.Context, sink string, part int) ([]string, error)
	// SinkParkedDue returns retry heads of a sink's partition whose next
	// attempt is due, earliest first, and held events with nothing parked
	// ahead of them on their key (which nothing else would release).
	SinkParkedDue(ctx context.Context, p *SinkParkedDueParams) ([]*ParkedEvent, error)
	// SinkParkedNext returns the earliest event of key parked on sink, or
	// ErrNotFound.
	SinkParkedNext(ctx context.Context, sink, orderingKey string) (*ParkedEvent, error)
	// SinkParkedUpdate records an attempt's outcome on a parked event
	// (ErrNotFound if it is not parked).
	SinkParkedUpdate(ctx context.Context, p *SinkParkedUpdateParams) error
	// SinkParkedDelete removes a parked event (delivered or skipped).
	SinkParkedDelete(ctx context.Context, sink, orderingKey string, seq int64) error
	// SinkParkedList pages through parked events matching p.Filter in
	// (event seq, sink) order.
	SinkParkedList(ctx context.Context, p *SinkParkedListParams) ([]*ParkedEvent, error)
	// SinkParkedReplay moves the dead events matching f back to retry, due
	// at now, with no attempts, and returns how many it moved.
	SinkParkedReplay(ctx context.Context, f *ParkedFilter, now time.Time) (int, error)
	// SinkStats returns the delivery figures of every sink with a cursor.
	SinkStats(ctx context.Context) ([]*SinkStats, error)

	// LeaseAcquire takes lease p.Name for p.Owner (or renews it when
	// p.Owner holds it) until p.Now+p.TTL. When another owner holds it
	// unexpired, it returns the holder's lease and ErrConflict.
	LeaseAcquire(ctx context.Context, p *LeaseAcquireParams) (*Lease, error)
	// LeaseRelease gives up a lease owner holds (nothing if it does not).
	LeaseRelease(ctx context.Context, name, owner string) error
	// LeaseList returns the unexpired leases whose names start with
	// prefix at now, by name.
	LeaseList(ctx context.Context, prefix string, now time.Time) ([]*Lease, error)

	// EventTail returns up to p.Limit events after p.After in position
	// order, every one committed and final: an event that commits later
	// always has a position after every one returned. Reading again from
	// the last position returned therefore loses nothing and repeats
	// nothing, whatever order transactions commit in.
	EventTail(ctx context.Context, p *EventTailParams) ([]*TailEvent, error)
	// EventHead returns the position of "now": tailing from it returns
	// events committed from about now on.
	EventHead(ctx context.Context) (EventPosition, error)

	ExternalCallInsert(ctx context.Context, p *ExternalCallInsertParams) (*ExternalCall, error)
	ExternalCallGet(ctx context.Context, id string) (*ExternalCall, error)
	// ExternalCallUpdate writes the mutable fields if the stored version
	// equals p.Version, and bumps it; otherwise ErrStale.
	ExternalCallUpdate(ctx context.Context, p *ExternalCallUpdateParams) (*ExternalCall, error)
	// ExternalCallListUnfinished returns pending and unknown calls last
	// updated before p.Before, oldest first.
	ExternalCallListUnfinished(ctx context.Context, p *ExternalCallListParams) ([]*ExternalCall, error)

	// BreakerGet returns a named circuit breaker, or ErrNotFound when none
	// was recorded (a closed one).
	BreakerGet(ctx context.Context, name string) (*Breaker, error)
	// BreakerList returns every recorded breaker by name.
	BreakerList(ctx context.Context) ([]*Breaker, error)
	// BreakerRecord records the outcome of a call through the breaker, in
	// one statement, whatever else records at once: a success closes it;
	// a failure counts, and opens it (OpenedAt = p.Now) at p.Threshold
	// failures in a row or when it was half-open.
	BreakerRecord(ctx context.Context, p *BreakerRecordParams) (*Breaker, error)
	// BreakerProbe moves an open breaker opened at or before p.Before, or a
	// half-open one whose probe started at or before p.Before (its prober
	// died), to half-open, and reports whether this caller did so: the
	// caller then sends the one probe.
	BreakerProbe(ctx context.Context, p *BreakerProbeParams) (bool, error)
	// BreakerReset closes a breaker and clears its count; ErrNotFound when
	// none was recorded.
	BreakerReset(ctx context.Context, name string, now time.Time) (*Breaker, error)

	// InstanceCountsAdd adds to the maintained instance counts; the engine
	// calls it in every transaction that creates an instance or changes a
	// status.
	InstanceCountsAdd(ctx context.Context, p *InstanceCountsAddParams) error
	// InstanceCounts returns the maintained counts by definition and
	// status, leaving out zeros.
	InstanceCounts(ctx context.Context) ([]*InstanceCount, error)
	// InstanceListIdle lists instances in a status not updated since a
	// time, oldest first.
	InstanceListIdle(ctx context.Context, p *InstanceListIdleParams) ([]*Instance, error)
	// ExecutionListRetrying lists activity executions waiting for another
	// attempt after a failure, in instances that still run, oldest
	// instance update first.
	ExecutionListRetrying(ctx context.Context, limit int) ([]*RetryingExecution, error)
	// UserTaskStats counts the open user tasks and finds the oldest.
	UserTaskStats(ctx context.Context) (*UserTaskStats, error)
	// AlertStateList returns the recorded alert states by name.
	AlertStateList(ctx context.Context) ([]*AlertState, error)
	// AlertStatePut records an alert's state.
	AlertStatePut(ctx context.Context, st *AlertState) error

	// InboxInsert records (Source, MessageID) as accepted. If it was
	// accepted before, it returns the first entry (with its result) and
	// ErrDuplicate, and changes nothing.
	InboxInsert(ctx context.Context, p *InboxInsertParams) (*InboxEntry, error)

	// WorkEnqueue adds a work item. An execution has at most one: when it
	// has one already, WorkEnqueue changes nothing and returns ErrDuplicate.
	WorkEnqueue(ctx context.Context, p *WorkEnqueueParams) (*WorkItem, error)
	// WorkClaim leases up to p.Limit due, unleased (or lease-expired) items
	// to p.Owner. No item is held by two owners at once.
	WorkClaim(ctx context.Context, p *WorkClaimParams) ([]*WorkItem, error)
	// WorkGet returns a work item.
	WorkGet(ctx context.Context, id string) (*WorkItem, error)
	// WorkExtend prolongs owner's lease; ErrConflict if owner lost it.
	WorkExtend(ctx context.Context, p *WorkExtendParams) (*WorkItem, error)
	// WorkComplete deletes an item owner holds; ErrConflict if owner lost it.
	WorkComplete(ctx context.Context, id, owner string) error
	// WorkRetry releases owner's lease and reschedules the item at p.RunAt
	// with attempts+1; ErrConflict if owner lost it.
	WorkRetry(ctx context.Context, p *WorkRetryParams) (*WorkItem, error)
	// WorkRelease gives back a lease unattempted (ErrConflict if owner
	// lost it).
	WorkRelease(ctx context.Context, p *WorkReleaseParams) error
	// WorkDeleteByExecution deletes the work item of an execution, leased
	// or not, and returns how many it deleted (0 or 1).
	WorkDeleteByExecution(ctx context.Context, executionID string) (int, error)
	// WorkNextRunAt returns the earliest time an item for one of handlers
	// (nil: any) becomes claimable, or nil when there is none.
	WorkNextRunAt(ctx context.Context, handlers []string) (*time.Time, error)

	MessageInsert(ctx context.Context, p *MessageInsertParams) (*Message, error)
	// MessageLock serialises, until the unit of work ends, every unit of
	// work that delivers or waits for messages of (name, correlation), so a
	// message and the receive it belongs to cannot miss each other.
	MessageLock(ctx context.Context, name, correlation string) error
	// MessageTake consumes the oldest unexpired, unconsumed message with the
	// name and correlation, or returns ErrNotFound.
	MessageTake(ctx context.Context, p *MessageTakeParams) (*Message, error)

	// InstancePurge deletes the finished instances p selects (see
	// InstancePurgeParams) with everything of theirs: executions,
	// bookmarks, work items, external calls, consumed messages and
	// execution log rows, in one transaction, and counts what it deleted.
	// Their outbox events stay until OutboxPurge takes them.
	InstancePurge(ctx context.Context, p *InstancePurgeParams) (*InstancePurgeResult, error)
	// OutboxPurge deletes up to p.Limit events that occurred before
	// p.Before and that every active sink has dealt with: each sink cursor
	// of the event's partition updated after p.Before is at or past the
	// event (a cursor not updated since, of a sink no longer configured,
	// holds nothing back), and no sink has the event parked. It returns how
	// many it deleted.
	OutboxPurge(ctx context.Context, p *PurgeParams) (int64, error)
	// InboxPurge deletes up to p.Limit inbox entries received before
	// p.Before: a message sent again with the same id after that is
	// accepted as new. It returns how many it deleted.
	InboxPurge(ctx context.Context, p *PurgeParams) (int64, error)
	// MessagePurge deletes up to p.Limit stored messages that expired
	// unconsumed before p.Before, and returns how many it deleted.
	MessagePurge(ctx context.Context, p *PurgeParams) (int64, error)
}

// Clock is the database's clock, the one time every engine sharing the
// database agrees on.
type Clock interface {
	ClockNow(ctx context.Context) (time.Time, error)
}

// Store is a database holding Waymark's state.
type Store interface {
	Executor
	Clock
	// Begin starts a unit of work. Everything done through the Tx commits
	// together or, on Rollback or a crash, leaves no trace.
	Begin(ctx context.Context) (Tx, error)
	// Close releases the database.
	Close() error
}

// Pipeliner is a Store that can run a transaction with its writes held
// back and sent together: on PostgreSQL, BEGIN, the writes and COMMIT go
// in one round trip when the unit reads nothing in between. In such a
// transaction InstanceUpdate, InstanceCheckVersion, BookmarkConsume, ExecutionInsert,
// ExecutionUpdate, WorkEnqueue, WorkComplete, LogAppend, OutboxInsertBatch
// and InstanceCountsAdd are queued: they return a nil record and a nil
// error, and their failure — a version that moved on (ErrStale), a lease
// another holds (ErrConflict), any database error — surfaces at the next
// read or at Commit, with nothing of the transaction applied. A caller that
// must know which write failed, and why, runs the unit again in an
// ordinary transaction. Reads see the queued writes (they are sent first).
// DefinitionCheckLatest is queued too, and so is InstanceInsert without an
// idempotency key, which returns the record it will insert.
type Pipeliner interface {
	BeginPipelined(ctx context.Context) (Tx, error)
}

// Tx is one unit of work.
type Tx interface {
	Executor
	// Commit makes the unit of work durable. An error wrapping
	// ErrRetryable because the connection broke leaves the outcome unknown:
	// see ErrRetryable for when running the unit again is safe.
	Commit(ctx context.Context) error
	// Rollback abandons the unit of work. It is safe after Commit.
	Rollback(ctx context.Context) error
}

// WithTx runs fn in one transaction, committing if it returns nil and rolling
// back otherwise.
func WithTx(ctx context.Context, s Store, fn func(tx Tx) error) error {
	tx, err := s.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // harmless after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// PoolStats are a store's connection pool statistics.
type PoolStats struct {
	// Open connections, of which InUse serve a query and Idle wait.
	Open  int `json:"open"`
	InUse int `json:"inUse"`
	Idle  int `json:"idle"`
	// Max is the pool's size limit (0: none).
	Max int `json:"max"`
	// Waits counts the acquisitions that had to wait for a connection, and
	// WaitDuration their total wait.
	Waits        int64         `json:"waits"`
	WaitDuration time.Duration `json:"waitDurationNs"`
}

// PoolStatter is a store with a connection pool (both drivers).
type PoolStatter interface {
	PoolStats() PoolStats
}
