package waymark

import (
	"context"
	"log/slog"
	"time"
)

// logPartitioner is a store whose execution log is partitioned by month
// (PostgreSQL): somebody has to make each month's partition before the
// month begins.
type logPartitioner interface {
	LogPartitionsEnsure(ctx context.Context, now time.Time, monthsAhead int) (created int, err error)
}

const (
	// partitionEvery is how often the partition service looks again.
	partitionEvery = time.Hour
	// partitionRetry is the first pause after a failed pass; it doubles
	// with each failure, up to partitionRetryMax.
	partitionRetry    = 250 * time.Millisecond
	partitionRetryMax = 5 * time.Minute
)

// partitionLoop keeps the execution log's partitions made, from the current
// month to Config.LogPartitionsAhead months ahead, if the store has them: at
// start and then every hour, sooner (with a growing pause) after a failure.
// Every engine runs it; the store lets one caller at a time do the work.
func (e *Engine) partitionLoop(ctx context.Context) {
	p, ok := e.store.(logPartitioner)
	if !ok {
		return
	}
	retry := partitionRetry
	for {
		created, err := p.LogPartitionsEnsure(ctx, e.clock.Now().UTC(), e.cfg.LogPartitionsAhead)
		e.services.ran("partition")
		if ctx.Err() != nil {
			return
		}
		wait := partitionEvery
		if err != nil {
			wait, retry = retry, min(2*retry, partitionRetryMax)
			e.cfg.Logger.WarnContext(ctx, "partition: ensure log partitions", slog.Any("error", err),
				slog.Duration("retry_in", wait))
		} else {
			retry = partitionRetry
			if created > 0 {
				e.cfg.Logger.InfoContext(ctx, "partition: made log partitions", slog.Int("created", created))
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
