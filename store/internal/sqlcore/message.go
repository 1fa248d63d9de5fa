package sqlcore

import (
	"context"
	"time"

	"github.com/waymarkdev/waymark/store"
)

func scanMessage(r Row) (*store.Message, error) {
	m := &store.Message{}
	err := r.Scan(&m.ID, &m.Name, &m.Correlation, jsonDest{&m.Payload}, &m.Source, &m.MessageID,
		timeDest{&m.ReceivedAt}, timeDest{&m.ExpiresAt}, nullTimeDest{&m.ConsumedAt}, &m.ConsumedBy)
	return m, err
}

// MessageInsert implements store.Executor.
func (q *Queries) MessageInsert(ctx context.Context, p *store.MessageInsertParams) (*store.Message, error) {
	return one(ctx, q, "insert message", "MessageInsert", scanMessage,
		p.ID, p.Name, p.Correlation, q.j(p.Payload), p.Source, p.MessageID,
		q.t(p.ReceivedAt), q.t(p.ExpiresAt))
}

// MessageTake implements store.Executor.
func (q *Queries) MessageTake(ctx context.Context, p *store.MessageTakeParams) (*store.Message, error) {
	return one(ctx, q, "take message", "MessageTake", scanMessage,
		p.Name, p.Correlation, p.ConsumedBy, q.t(p.Now))
}

// MessageLock implements store.Executor.
func (q *Queries) MessageLock(ctx context.Context, name, correlation string) error {
	if _, err := q.db.Exec(ctx, q.sql("MessageLock"), name, correlation); err != nil {
		return q.err("lock message key", err)
	}
	return nil
}

// ClockNow implements store.Executor.
func (q *Queries) ClockNow(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := q.db.QueryRow(ctx, q.sql("ClockNow")).Scan(timeDest{&now}); err != nil {
		return time.Time{}, q.err("read the database clock", err)
	}
	return now, nil
}

var _ store.Executor = (*Queries)(nil)
