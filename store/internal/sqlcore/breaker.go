package sqlcore

import (
	"context"
	"time"

	"github.com/waymarkdev/waymark/store"
)

func scanBreaker(r Row) (*store.Breaker, error) {
	b := &store.Breaker{}
	err := r.Scan(&b.Name, &b.State, &b.Failures, nullTimeDest{&b.OpenedAt}, timeDest{&b.UpdatedAt})
	return b, err
}

// BreakerGet implements store.Executor.
func (q *Queries) BreakerGet(ctx context.Context, name string) (*store.Breaker, error) {
	return one(ctx, q, "get breaker", "BreakerGet", scanBreaker, name)
}

// BreakerList implements store.Executor.
func (q *Queries) BreakerList(ctx context.Context) ([]*store.Breaker, error) {
	return list(ctx, q, "list breakers", "BreakerList", scanBreaker)
}

// BreakerRecord implements store.Executor.
func (q *Queries) BreakerRecord(ctx context.Context, p *store.BreakerRecordParams) (*store.Breaker, error) {
	return one(ctx, q, "record breaker outcome", "BreakerRecord", scanBreaker,
		p.Name, p.Success, max(p.Threshold, 1), q.t(p.Now))
}

// BreakerProbe implements store.Executor.
func (q *Queries) BreakerProbe(ctx context.Context, p *store.BreakerProbeParams) (bool, error) {
	n, err := q.db.Exec(ctx, q.sql("BreakerProbe"), p.Name, q.t(p.Now), q.t(p.Before))
	if err != nil {
		return false, q.err("probe breaker", err)
	}
	return n == 1, nil
}

// BreakerReset implements store.Executor.
func (q *Queries) BreakerReset(ctx context.Context, name string, now time.Time) (*store.Breaker, error) {
	return one(ctx, q, "reset breaker", "BreakerReset", scanBreaker, name, q.t(now))
}
