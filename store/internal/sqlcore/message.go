package sqlcore

import (
	"context"

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

var _ store.Executor = (*Queries)(nil)
