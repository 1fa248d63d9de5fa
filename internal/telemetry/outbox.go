package telemetry

import (
	"context"
	"time"
)

// SinkStats is the delivery state of one outbox sink.
type SinkStats struct {
	Sink string
	// Pending is how many events wait to be delivered to the sink.
	Pending int64
	// OldestPendingAge is how long the oldest of them has waited (the lag).
	OldestPendingAge time.Duration
	// Dead is how many events gave up on the sink (dead letters).
	Dead int64
}

// OutboxStats reports the outbox per sink; the outbox dispatcher
// implements it, and the server turns it into the waymark_outbox_* gauges.
type OutboxStats interface {
	OutboxStats(ctx context.Context) ([]SinkStats, error)
}

// OutboxStatsFunc adapts a function to OutboxStats.
type OutboxStatsFunc func(ctx context.Context) ([]SinkStats, error)

// OutboxStats implements OutboxStats.
func (f OutboxStatsFunc) OutboxStats(ctx context.Context) ([]SinkStats, error) { return f(ctx) }
