package store

import (
	"hash/fnv"
	"time"
)

// OutboxParts is how many partitions the outbox is split into for
// delivery. Every event of one ordering key falls in the same partition;
// each sink delivers partitions independently, a dispatcher at a time each.
// It is fixed: changing it would move ordering keys between partitions.
const OutboxParts = 16

// OutboxPart returns the partition of an ordering key.
func OutboxPart(orderingKey string) int {
	h := fnv.New32a()
	h.Write([]byte(orderingKey)) //nolint:errcheck // a hash never fails
	return int(h.Sum32() % OutboxParts)
}

// SinkCursor is how far one sink has dealt with one outbox partition:
// every event at or before Position was delivered, parked or skipped. It is
// leased to one dispatcher (Owner) at a time; Fence grows with every new
// lease, so a dispatcher that lost its lease cannot write.
type SinkCursor struct {
	Sink           string
	Part           int
	Position       EventPosition
	Owner          string
	LeaseExpiresAt *time.Time
	Fence          int64
	UpdatedAt      time.Time
}

// DeliveryAttempt is one failed attempt to deliver a parked event.
type DeliveryAttempt struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// ParkedEvent is an event a sink could not deliver in order: the failed
// head of its ordering key (retry or dead) or one held behind it.
type ParkedEvent struct {
	Sink          string
	State         DeliveryState
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	// History holds the latest failed attempts, oldest first.
	History   []DeliveryAttempt
	ParkedAt  time.Time
	UpdatedAt time.Time
	Event     *OutboxEvent
}

// Lease is the holder of a named lease: one owner at a time until
// ExpiresAt. Fence grows with every change of owner.
type Lease struct {
	Name       string
	Owner      string
	Fence      int64
	AcquiredAt time.Time
	RenewedAt  time.Time
	ExpiresAt  time.Time
}

// OutboxTailParams read up to Limit committed events of Part after After.
type OutboxTailParams struct {
	Part  int
	After EventPosition
	Limit int
}

// SinkCursorClaimParams lease the cursors of Sink to Owner until
// Now+LeaseFor: the ones Owner holds are renewed, and free or expired ones
// are taken until Owner holds Max. Cursors that do not exist yet are
// created at Start.
type SinkCursorClaimParams struct {
	Sink     string
	Owner    string
	Now      time.Time
	LeaseFor time.Duration
	Max      int
	Start    EventPosition
}

// SinkCursorAdvanceParams move a leased cursor to Position.
type SinkCursorAdvanceParams struct {
	Sink     string
	Part     int
	Owner    string
	Fence    int64
	Position EventPosition
	Now      time.Time
}

// SinkParkParams park one event on a sink.
type SinkParkParams struct {
	Sink          string
	Event         *OutboxEvent
	State         DeliveryState
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	History       []DeliveryAttempt
	Now           time.Time
}

// SinkParkedUpdateParams record the outcome of an attempt on a parked
// event (identified by Sink, OrderingKey and Seq).
type SinkParkedUpdateParams struct {
	Sink          string
	OrderingKey   string
	Seq           int64
	State         DeliveryState
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	History       []DeliveryAttempt
	Now           time.Time
}

// SinkParkedDueParams select up to Limit retry heads of Sink's Part due at
// Now.
type SinkParkedDueParams struct {
	Sink  string
	Part  int
	Now   time.Time
	Limit int
}

// ParkedFilter selects parked events. Empty fields match anything; Before
// (non-zero) matches events that occurred before it.
type ParkedFilter struct {
	Sink       string
	State      DeliveryState
	Type       string
	InstanceID string
	EventID    string
	Before     time.Time
}

// SinkParkedListParams page through parked events in (Seq, Sink) order,
// after the cursor (AfterSeq, AfterSink).
type SinkParkedListParams struct {
	Filter    ParkedFilter
	AfterSeq  int64
	AfterSink string
	Limit     int
}

// SinkStats are one sink's delivery figures.
type SinkStats struct {
	Sink string
	// Pending counts events not yet dealt with: after the sink's cursors,
	// or parked for retry or held.
	Pending int64
	// OldestPending is when the oldest of them occurred (nil: none).
	OldestPending *time.Time
	Retrying      int64
	Held          int64
	Dead          int64
}

// LeaseAcquireParams take or renew lease Name for Owner until Now+TTL.
type LeaseAcquireParams struct {
	Name  string
	Owner string
	Now   time.Time
	TTL   time.Duration
}
